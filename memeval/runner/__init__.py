"""Running an evaluation: plan it, replay each cell, answer through the call service, record.

- `plan`: scenarios and adapters resolved once, the run cut into JSON cells;
- `cell`: one cell run alone, in any process (`execute_cell`);
- `replay`: a scenario's timeline replayed into a backend, every call timed;
- `service`: the call cache, retries and concurrency around a reader;
- `extras`: canary exposure, effective state size, the judge's replies;
- `execute`: the local executor, the one writer of records.jsonl.
"""

from memeval.runner.cell import CellRuntime, execute_cell, iter_cell
from memeval.runner.execute import execute
from memeval.runner.plan import RunPlan, plan_run
from memeval.runner.service import CallPolicy, ReaderService

__all__ = ["CallPolicy", "CellRuntime", "ReaderService", "RunPlan", "execute", "execute_cell",
           "iter_cell", "plan_run"]
