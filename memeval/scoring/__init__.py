"""Scorers: pure functions of the records; they never call the system under test."""
