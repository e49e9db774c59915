from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import ROOT


def test_import_memeval_loads_no_heavy_dependency() -> None:
    code = ("import sys, memeval; memeval.MemoryBackend; "
            "print(sorted(m for m in ('torch', 'transformers', 'chromadb', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adapters_import_as_memeval_adapters() -> None:
    from memeval.adapters.backends.full_context import FullContext
    from memeval.registry import known_adapters

    assert FullContext.__module__ == "memeval.adapters.backends.full_context"
    assert {"full_context", "no_memory", "oracle", "embedded", "extractive"} <= set(known_adapters())


def test_wheel_ships_adapters_inside_memeval(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("memeval-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "memeval/adapters/backends/oracle.py" in names
    assert "memeval/adapters/readers/embedded.py" in names
    assert not any(n.startswith("adapters/") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[memeval.adapters]" in entry_points and "[console_scripts]" in entry_points
