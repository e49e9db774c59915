"""Scenario format v1: schema, position-aware loading, validation, filler, timeline."""

from memeval.scenario.schema import Fact, Probe, ProbeKind, Scenario, json_schema
from memeval.scenario.validate import load_scenario, parse_scenario, scenario_files, validate_paths

__all__ = [
    "Fact",
    "Probe",
    "ProbeKind",
    "Scenario",
    "json_schema",
    "load_scenario",
    "parse_scenario",
    "scenario_files",
    "validate_paths",
]
