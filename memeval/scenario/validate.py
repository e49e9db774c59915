"""Load scenario files and report every authoring mistake with file:line:col and a fix."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from memeval.errors import Problem, ScenarioError
from memeval.match import contains_any
from memeval.scenario.schema import (
    LEAKAGE_KINDS,
    Fact,
    FillerParams,
    FillerSpec,
    Probe,
    ProbeKind,
    Scenario,
    SessionSpec,
    TurnSpec,
)
from memeval.scenario.yamlpos import Path_, Positions, YamlError, load_with_positions

MIN_FILLER_TOKENS_PER_SESSION = 20
SCENARIO_SUFFIXES = (".yaml", ".yml")


def _model_at(path: Path_, data: Any) -> type[BaseModel] | None:
    """The model that describes the mapping at `path` in the raw data."""
    shape = tuple("#" if isinstance(p, int) else p for p in path)
    if shape == ():
        return Scenario
    if shape == ("facts", "#"):
        return Fact
    if shape == ("probes", "#"):
        return Probe
    if shape == ("sessions", "#"):
        node = data
        for p in path:
            node = node[p]
        return FillerSpec if isinstance(node, dict) and "filler" in node else SessionSpec
    if shape == ("sessions", "#", "filler"):
        return FillerParams
    if shape == ("sessions", "#", "turns", "#"):
        return TurnSpec
    return None


def _data_path(loc: Iterable[str | int], data: Any) -> Path_:
    """Map a pydantic error location onto the raw data, dropping union tags."""
    path: list[str | int] = []
    node = data
    parts = list(loc)
    for k, part in enumerate(parts):
        if (part in {"session", "filler"} and k == 2 and parts[0] == "sessions"
                and isinstance(parts[1], int)):
            continue  # the union's tag right after a session's index, even where a key shares it
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
        elif isinstance(part, str) and part in {"session", "filler"} and isinstance(node, dict):
            continue  # discriminator tag, not a key
        else:
            path.append(part)
            break
        path.append(part)
    return tuple(path)


def _typos(errors: list[tuple[Any, Path_]], data: Any) -> dict[Path_, str]:
    """Unknown keys that look like a misspelt allowed key: path -> the key meant."""
    typos: dict[Path_, str] = {}
    for err, path in errors:
        model = _model_at(path[:-1], data) if err["type"] == "extra_forbidden" else None
        close = difflib.get_close_matches(str(path[-1]), list(model.model_fields), n=1) if model else []
        if close:
            typos[path] = close[0]
    return typos


def _without_unknown_keys(data: Any, errors: list[tuple[Any, Path_]]) -> Any:
    """A copy of the data with misspelt keys renamed and other unknown keys dropped,
    so that the cross-reference rules can still be checked."""
    fixed = copy.deepcopy(data)
    typos = _typos(errors, data)
    for err, path in errors:
        if err["type"] != "extra_forbidden":
            continue
        parent = fixed
        for part in path[:-1]:
            parent = parent[part]
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        value = parent.pop(path[-1])
        if path in typos and typos[path] not in parent:
            parent[typos[path]] = value
    return fixed


def _schema_problems(exc: ValidationError, data: Any, pos: Positions, file: str) -> list[Problem]:
    errors = [(err, _data_path(err["loc"], data)) for err in exc.errors()]
    # A misspelt key reads as "unknown key" plus "missing key": report only the typo.
    typo_for = {(path[:-1], key) for path, key in _typos(errors, data).items()}
    problems = []
    for err, path in errors:
        kind = err["type"]
        if kind == "missing" and (path[:-1], path[-1]) in typo_for:
            continue
        where = ".".join(str(p) for p in path) or "top level"
        if kind == "extra_forbidden":
            key = str(path[-1])
            model = _model_at(path[:-1], data)
            allowed = sorted(model.model_fields) if model else []
            close = difflib.get_close_matches(key, allowed, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
            line, col = pos.of_key(path)
            problems.append(Problem(file, line, col, f"unknown key '{key}'", fix))
            continue
        line, col = pos.of(path)
        if kind == "missing":
            key = str(path[-1])
            message, fix = f"missing required key '{key}'", f"add `{key}:` here"
        elif kind == "literal_error" and path == ("memeval",):
            message, fix = "unsupported format version", "set `memeval: 1`"
        elif kind == "string_pattern_mismatch":
            message = f"{where}: '{err['input']}' is not a valid id"
            fix = "use only letters, digits and _ . : -"
        elif kind == "value_error":
            message, fix = f"{where}: {err['msg'].removeprefix('Value error, ')}", "see `memeval schema`"
        else:
            message, fix = f"{where}: {err['msg']}", "see `memeval schema` for the expected form"
        problems.append(Problem(file, line, col, message, fix))
    return problems


class _Checker:
    """The cross-reference rules of the format, on a scenario that parsed."""

    def __init__(self, scenario: Scenario, pos: Positions, file: str):
        self.s, self.pos, self.file = scenario, pos, file
        self.problems: list[Problem] = []

    def add(self, path: Path_, message: str, fix: str, key: bool = False) -> None:
        line, col = self.pos.of_key(path) if key else self.pos.of(path)
        self.problems.append(Problem(self.file, line, col, message, fix))

    def run(self) -> list[Problem]:
        s = self.s
        facts = {f.id: f for f in s.facts}
        self._duplicates("fact", [(("facts", i, "id"), f.id) for i, f in enumerate(s.facts)])
        self._duplicates("probe", [(("probes", i, "id"), p.id) for i, p in enumerate(s.probes)])
        self._duplicates("user", [(("users", i), u) for i, u in enumerate(s.users)])
        sessions = [(i, e) for i, e in enumerate(s.sessions) if isinstance(e, SessionSpec)]
        self._duplicates("session", [(("sessions", i, "id"), e.id) for i, e in sessions])
        turn_ids = [
            (("sessions", i, "turns", j, "id"), t.id)
            for i, e in sessions
            for j, t in enumerate(e.turns)
            if t.id is not None
        ]
        self._duplicates("turn", turn_ids)

        session_index = {e.id: i for i, e in sessions}
        turn_index = {tid: path[1] for path, tid in turn_ids}
        planted_at: dict[str, int] = {}
        for i, e in enumerate(s.sessions):
            if isinstance(e, FillerSpec):
                self._user(("sessions", i, "filler", "user"), e.filler.user)
                if e.filler.tokens < MIN_FILLER_TOKENS_PER_SESSION * e.filler.sessions:
                    self.add(("sessions", i, "filler", "tokens"),
                             f"{e.filler.tokens} tokens are too few for {e.filler.sessions} sessions",
                             f"give at least {MIN_FILLER_TOKENS_PER_SESSION} tokens per session")
                continue
            self._user(("sessions", i, "user"), e.user)
            for j, turn in enumerate(e.turns):
                for k, fid in enumerate(turn.plants):
                    path = ("sessions", i, "turns", j, "plants", k)
                    if fid not in facts:
                        self._unknown_fact(path, fid)
                        continue
                    planted_at.setdefault(fid, i)
                    fact = facts[fid]
                    if not fact.paraphrased and not contains_any(turn.text, fact.answers):
                        self.add(path, f"turn plants '{fid}' but contains none of its answers "
                                 f"{fact.answers}",
                                 "quote an answer in the turn, or set `paraphrased: true` on the fact")
        for i, fact in enumerate(s.facts):
            canary = fact.canary
            if canary is None:
                continue
            if not canary.matches(fact.answers[0]):
                self.add(("facts", i, "answers", 0), f"canary '{fact.id}' answer "
                         f"'{fact.answers[0]}' does not fit its format '{canary.format}'",
                         "make the first answer fit the format (# digit, @ capital letter)")
            if canary.candidates > canary.space():
                self.add(("facts", i, "canary", "candidates"), f"format '{canary.format}' makes "
                         f"only {canary.space()} strings, fewer than {canary.candidates} candidates",
                         "lower `candidates` or lengthen the format")
        self._supersedes(facts)
        self._times(sessions)
        last = len(s.sessions) - 1
        for i, p in enumerate(s.probes):
            self._probe(i, p, facts, session_index, turn_index, planted_at, last)
        return self.problems

    def _duplicates(self, what: str, items: Sequence[tuple[Path_, str]]) -> None:
        seen: dict[str, Path_] = {}
        for path, value in items:
            if value in seen:
                line, _ = self.pos.of(seen[value])
                self.add(path, f"duplicate {what} id '{value}' (first at line {line})",
                         "give each one a unique id")
            else:
                seen[value] = path

    def _user(self, path: Path_, user: str | None) -> None:
        if user is not None and user not in self.s.users:
            self.add(path, f"user '{user}' is not in `users` {self.s.users}",
                     f"add '{user}' to `users:` or fix the name")

    def _unknown_fact(self, path: Path_, fid: str) -> None:
        close = difflib.get_close_matches(fid, [f.id for f in self.s.facts], n=1)
        fix = f"did you mean '{close[0]}'?" if close else "declare it under `facts:`"
        self.add(path, f"unknown fact '{fid}'", fix)

    def _supersedes(self, facts: dict[str, Fact]) -> None:
        for i, fact in enumerate(self.s.facts):
            if fact.supersedes is None:
                continue
            path = ("facts", i, "supersedes")
            if fact.supersedes not in facts:
                self._unknown_fact(path, fact.supersedes)
                continue
            chain: list[str] = [fact.id]
            current: str | None = fact.supersedes
            while current is not None and current in facts:
                if current in chain:
                    if current == fact.id:
                        self.add(path, f"supersedes cycle: {' -> '.join([*chain, current])}",
                                 "a fact may only supersede an older fact")
                    break
                chain.append(current)
                current = facts[current].supersedes

    def _times(self, sessions: list[tuple[int, SessionSpec]]) -> None:
        previous = None
        for i, e in sessions:
            if e.time is None:
                continue
            if previous is not None and _naive(e.time) < _naive(previous[1]):
                self.add(("sessions", i, "time"),
                         f"time goes backwards: {e.time} is before session '{previous[0]}' ({previous[1]})",
                         "order sessions by time or fix the date")
            previous = (e.id, e.time)

    def _probe(self, i: int, p: Probe, facts: dict[str, Fact], session_index: dict[str, int],
               turn_index: dict[str, int], planted_at: dict[str, int], last: int) -> None:
        base = ("probes", i)
        self._user((*base, "user"), p.user)
        asked_after = last
        if p.after is not None:
            if p.after not in session_index:
                close = difflib.get_close_matches(p.after, list(session_index), n=1)
                self.add((*base, "after"), f"unknown session '{p.after}'",
                         f"did you mean '{close[0]}'?" if close else "name a session id")
            else:
                asked_after = session_index[p.after]
                entry = self.s.sessions[asked_after]
                if p.time and isinstance(entry, SessionSpec) and entry.time and \
                        _naive(p.time) < _naive(entry.time):
                    self.add((*base, "time"), f"time goes backwards: the probe is dated before "
                             f"session '{p.after}'", "date the probe after the session it follows")
        for field in ("expects", "rejects", "forbids"):
            for k, fid in enumerate(getattr(p, field)):
                if fid not in facts:
                    self._unknown_fact((*base, field, k), fid)
                elif field == "expects":
                    if fid not in planted_at:
                        self.add((*base, field, k), f"fact '{fid}' is never planted",
                                 f"add `plants: [{fid}]` to the turn that states it")
                    elif planted_at[fid] > asked_after:
                        where = self.s.sessions[planted_at[fid]]
                        self.add((*base, field, k),
                                 f"probe '{p.id}' is asked before fact '{fid}' is planted "
                                 f"(in session '{getattr(where, 'id', '?')}')",
                                 "move `after:` to that session or later")
        for k, tid in enumerate(p.evidence):
            if tid not in turn_index:
                self.add((*base, "evidence", k), f"unknown turn '{tid}'",
                         "give the turn an `id:` or fix the name")
            elif turn_index[tid] > asked_after:
                self.add((*base, "evidence", k),
                         f"probe '{p.id}' is asked before its evidence turn '{tid}'",
                         "move `after:` to that session or later")
        needs_answer = p.kind not in LEAKAGE_KINDS and p.kind != ProbeKind.abstention
        if needs_answer and not (p.expects or p.answers or p.evidence):
            self.add(base, f"{p.kind.value} probe '{p.id}' has nothing to check",
                     "add `expects:` (fact ids), `answers:` or `evidence:`", key=False)
        if p.kind in LEAKAGE_KINDS and not p.forbids:
            self.add(base, f"{p.kind.value} probe '{p.id}' forbids nothing",
                     "add `forbids:` with the fact ids that must not surface")


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if getattr(value, "tzinfo", None) else value


def parse_scenario(text: str, file: str = "<string>") -> Scenario:
    """Parse and validate scenario YAML text; raise ScenarioError listing every problem."""
    try:
        data, pos = load_with_positions(text)
    except YamlError as exc:
        raise ScenarioError([Problem(file, exc.line, exc.column, exc.message, exc.fix)]) from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = _schema_problems(exc, data, pos, file)
        errors = [(err, _data_path(err["loc"], data)) for err in exc.errors()]
        try:  # report the cross-reference mistakes too, not one round at a time
            repaired = Scenario.model_validate(_without_unknown_keys(data, errors))
        except ValidationError:
            raise ScenarioError(problems) from None
        raise ScenarioError(problems + _Checker(repaired, pos, file).run()) from None
    problems = _Checker(scenario, pos, file).run()
    if problems:
        raise ScenarioError(problems)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate one scenario file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([Problem(str(path), 1, 1, f"cannot read the file: {exc.strerror}",
                                     "check the path")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioError([Problem(str(path), line, column,
                                     f"byte {raw[exc.start]:#04x} is not UTF-8 text",
                                     "save the file as UTF-8")]) from None
    return parse_scenario(text, str(path))


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into scenario files, sorted within each folder."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SCENARIO_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise ScenarioError([Problem(str(path), 1, 1, "no such file or folder",
                                         "check the path")])
    return files


def validate_paths(paths: Iterable[str | Path]) -> tuple[int, list[Problem]]:
    """Validate every scenario under `paths`; return (files checked, problems)."""
    files = scenario_files(paths)
    problems: list[Problem] = []
    for file in files:
        try:
            load_scenario(file)
        except ScenarioError as exc:
            problems.extend(exc.problems)
    return len(files), problems
