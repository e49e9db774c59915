"""`memeval.run(...)`: plan, execute, score and report in one call."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from memeval.errors import MemevalError
from memeval.records import RunConfig
from memeval.results import RunResult
from memeval.runner import RunPlan, execute, plan_run
from memeval.scenario.schema import Scenario

Scenarios = str | Path | Scenario | Iterable[str | Path | Scenario]


def make_config(options: dict[str, Any]) -> RunConfig:
    """A RunConfig from keyword options; a bad option is one line naming it."""
    try:
        return RunConfig(**options)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or "options"
        known = ", ".join(RunConfig.model_fields)
        hint = f" (options: {known})" if error["type"] == "extra_forbidden" else ""
        raise MemevalError(f"run option '{name}': {error['msg']}{hint}") from None


def execute_plan(plan: RunPlan, command: list[str],
                 progress: Callable[[str, int], None] | None = None) -> RunResult:
    """Run a plan's cells, score them and write the report; return the run's result."""
    execute(plan, command, progress)
    if plan.config.report:
        from memeval.report import write_report

        write_report(plan.out)
    return RunResult(plan.out)


def run(scenarios: Scenarios, config: RunConfig | None = None, **options: Any) -> RunResult:
    if isinstance(scenarios, (str, Path, Scenario)):
        scenarios = [scenarios]
    if config is not None and options:
        config = make_config({**config.model_dump(), **options})
    plan = plan_run(scenarios, config or make_config(options))
    return execute_plan(plan, ["memeval.run"])


run.__doc__ = f"""Evaluate memory backends on scenarios and return the run's result.

Args:
    scenarios: Scenario files, folders of them, or loaded `Scenario` objects.
    config: A `RunConfig`; keyword options override its fields.
{RunConfig.describe()}

Returns:
    A `RunResult`: typed scores (`cells`, `cell(name)`), `records()` and `scores()` as
    pandas DataFrames, plots and the report.
"""
