"""The Ray executor: each cell a Ray task; the driver stays the one writer of records.jsonl.

A task gets its cell as JSON (the scenario travels by content, hash-checked, so
workers need no shared disk), builds its adapters from their specs once per
worker process, and returns the cell's records when the cell is done; a task
that dies with its worker or node is run again elsewhere by Ray, and nothing
of its partial work reaches the run. Model calls on every worker hit and fill
the driver's call cache through a small cache server (a Ray actor pinned to
the driver's node).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memeval.cache import CallCache
from memeval.errors import MemevalError
from memeval.protocols import Answer
from memeval.records import Cell, ProbeRecord
from memeval.registry import parse_options

#: Options of `--executor ray:...`, and what they become.
RAY_OPTIONS = ("address", "num_cpus", "num_gpus", "memory", "max_retries")


@dataclass(frozen=True)
class RayOptions:
    """Where the cluster is and what each cell asks of it.

    Attributes:
        address: None starts a local Ray for this run; "auto" joins the cluster this
            machine belongs to; "ray://host:port" connects as a client.
        num_cpus: CPUs reserved per cell.
        num_gpus: GPUs (may be fractional) per cell.
        memory: Bytes of memory reserved per cell (None: no reservation).
        max_retries: Times a cell is run again after its worker or node died.
    """

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory: int | None = None
    max_retries: int = 3


def parse_executor(spec: str) -> RayOptions | None:
    """None for `local`; RayOptions for `ray[:opt=value,...]`; one line for anything else."""
    head, _, rest = spec.partition(":")
    if head == "local" and not rest:
        return None
    if head != "ray":
        raise MemevalError(f"unknown executor '{spec}' (use local, or ray[:address=auto,"
                           "num_cpus=1,num_gpus=0,memory=BYTES])")
    options = parse_options(rest, spec)
    unknown = [k for k in options if k not in RAY_OPTIONS]
    if unknown:
        raise MemevalError(f"executor '{spec}' has no option '{unknown[0]}' "
                           f"(options: {', '.join(RAY_OPTIONS)})")
    try:
        return RayOptions(**options)
    except TypeError as exc:
        raise MemevalError(f"executor '{spec}': {exc}") from None


def require_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise MemevalError("--executor ray needs Ray: pip install 'memeval[ray]'") from None
    return ray


class _CacheServer:
    """The driver's call cache, served to the workers (run as a Ray actor)."""

    def __init__(self, path: str):
        self._cache = CallCache(Path(path))

    def get(self, key: str) -> str | None:
        hit = self._cache.get(key)
        return None if hit is None else hit.model_dump_json()

    def put(self, key: str, answer: str) -> None:
        self._cache.put(key, Answer.model_validate_json(answer))


class RemoteCache:
    """A worker's view of the cache server: the `AnswerCache` the call service uses."""

    def __init__(self, server: Any):
        self._server = server

    def get(self, key: str) -> Answer | None:
        import ray

        found = ray.get(self._server.get.remote(key))
        return None if found is None else Answer.model_validate_json(found)

    def put(self, key: str, answer: Answer) -> None:
        import ray

        ray.get(self._server.put.remote(key, answer.model_dump_json()))


def run_cell_task(cell_json: str, server: Any) -> list[str]:
    """The body of a Ray task: one cell, its records as JSON. The backend's files go to a
    folder of the worker's own (the driver's run directory may not exist there)."""
    import tempfile

    from memeval.runner.cell import CellRuntime, iter_cell
    from memeval.runner.memory import few_collections

    cell = Cell.model_validate_json(cell_json)
    runtime = CellRuntime.for_cell(cell, cache=RemoteCache(server) if server is not None else None)
    with tempfile.TemporaryDirectory(prefix="memeval-cell-") as workdir:
        here = cell.model_copy(update={"workdir": workdir})
        with few_collections():
            return [record.model_dump_json() for record in iter_cell(here, runtime)]


def run_on_ray(cells: list[Cell], options: RayOptions, cache_path: Path | None
               ) -> Iterator[tuple[Cell, list[ProbeRecord]]]:
    """Run `cells` as Ray tasks; yield each cell as it finishes, with its records (sent by
    the worker as JSON lines)."""
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR", configure_logging=False)
    try:
        server = None
        if cache_path is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = ray.get_runtime_context().get_node_id()
            # on the driver's machine, beside its cache file; restarted there if it dies
            server = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(
                _CacheServer).options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node_id=here, soft=True)).remote(str(cache_path))
        task = ray.remote(run_cell_task).options(
            num_cpus=options.num_cpus, num_gpus=options.num_gpus, memory=options.memory,
            max_retries=options.max_retries, retry_exceptions=False)
        pending = {task.remote(cell.model_dump_json(), server): cell for cell in cells}
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(done)
            try:
                lines = ray.get(done)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause
                if isinstance(cause, MemevalError):
                    raise MemevalError(f"cell {cell.name}: {cause}") from None
                raise MemevalError(f"cell {cell.name} failed on its worker: "
                                   f"{type(cause).__name__}: {cause}") from None
            except ray.exceptions.RayError as exc:  # its worker or node died, retries spent
                raise MemevalError(f"cell {cell.name} was lost {options.max_retries + 1} times "
                                   f"({type(exc).__name__}); the records so far are kept: "
                                   "continue with --resume") from None
            yield cell, [ProbeRecord.model_validate_json(line) for line in lines]
    finally:
        if started:
            ray.shutdown()
