"""`python -m memeval.runner CELL.json`: run one cell, print its records as JSON lines."""

from memeval.runner.cell import main

raise SystemExit(main())
