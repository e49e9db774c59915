"""Load scenario files and report every authoring mistake with file:line:col and a fix.

One module on purpose: the schema messages, the salvage of valid items from a file that
fails as a whole, and the cross-reference rules together make the one-pass report (every
problem of a file, sorted, without cascades); split apart, each would need the others'
positions and broken-item sets.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

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
    SessionEntry,
    SessionSpec,
    TurnSpec,
)
from memeval.scenario.yamlpos import Path_, Positions, YamlError, load_with_positions

MIN_FILLER_TOKENS_PER_SESSION = 20
SCENARIO_SUFFIXES = (".yaml", ".yml")

#: An unquoted scalar where a line's rest starts, after any anchor or tag: up to a flow
#: indicator or a comment, which no date, number or boolean holds.
_PLAIN_SCALAR = re.compile(r"(?:[!&]\S*\s+)*(?P<scalar>[^\s\[\]{},#'\"|>*!&][^\[\]{},#]*)")

_T = TypeVar("_T")
_SESSION_ENTRY: TypeAdapter[SessionSpec | FillerSpec] = TypeAdapter(SessionEntry)


def _is_filler(entry: Any) -> bool:
    """Whether a session entry as written is a filler entry, as the schema's union tells them."""
    return isinstance(entry, dict) and "filler" in entry


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
        return FillerSpec if _is_filler(node) else SessionSpec
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


def _choices(path: Path_, data: Any) -> list[str]:
    """The values the field at `path` allows where it is an enum or a literal; else none."""
    model = _model_at(path[:-1], data) if path else None
    field = model.model_fields.get(str(path[-1])) if model else None
    if field is None:
        return []
    for option in (field.annotation, *get_args(field.annotation)):  # the enum of `X | None` too
        if isinstance(option, type) and issubclass(option, Enum):
            return [str(member.value) for member in option]
        if get_origin(option) is Literal:
            return [str(value) for value in get_args(option)]
    return []


def _read_as(value: Any) -> str | None:
    """What YAML read an unquoted scalar as, in words, where that is not text."""
    if isinstance(value, bool):  # before int: a bool is an int
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime):  # before date: a datetime is a date
        return "a date and time"
    if isinstance(value, date):
        return "a date"
    return None


def _as_written(lines: list[str], line: int, column: int, value: Any) -> str:
    """The scalar at (line, column) as the file writes it: YAML has read `0612` as 394 and
    `yes` as True, so the value itself would not show what to quote."""
    rest = lines[line - 1][column - 1:] if 0 < line <= len(lines) else ""
    found = _PLAIN_SCALAR.match(rest)
    written = found["scalar"].rstrip() if found else ""
    try:  # trust it only if it reads back as the same value
        if written and repr(yaml.safe_load(written)) == repr(value):
            return written
    except (yaml.YAMLError, ValueError):
        pass
    return str(value)


def _schema_problems(errors: list[tuple[Any, Path_]], data: Any, pos: Positions, file: str,
                     text: str) -> list[Problem]:
    # A misspelt key reads as "unknown key" plus "missing key": report only the typo.
    typo_for = {(path[:-1], key) for path, key in _typos(errors, data).items()}
    lines = text.splitlines()  # the line breaks YAML counts: it refuses the others splitlines knows
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
        elif kind in {"enum", "literal_error"} and isinstance(err["input"], str) and \
                (choices := _choices(path, data)):
            close = difflib.get_close_matches(err["input"], choices, n=1)
            message = f"{where}: '{err['input']}' is not one of {', '.join(choices)}"
            fix = f"did you mean '{close[0]}'?" if close else "use one of them"
        elif kind == "string_type" and (read_as := _read_as(err["input"])):
            written = _as_written(lines, line, col, err["input"])
            message, fix = f"{where}: YAML reads {written} as {read_as}, not text", f"quote it: '{written}'"
        elif kind == "string_pattern_mismatch":
            message = f"{where}: '{err['input']}' is not a valid id"
            fix = "use only letters, digits and _ . : -"
        elif kind == "value_error":
            message, fix = f"{where}: {err['msg'].removeprefix('Value error, ')}", "see `memeval schema`"
        else:
            message, fix = f"{where}: {err['msg']}", "see `memeval schema` for the expected form"
        problems.append(Problem(file, line, col, message, fix))
    return problems


def _valid_items(items: Any, validate: Callable[[Any], _T]) -> dict[int, _T]:
    """The items of a list in the raw data that are valid on their own, by index."""
    valid: dict[int, _T] = {}
    for i, item in enumerate(items if isinstance(items, list) else []):
        try:
            valid[i] = validate(item)
        except ValidationError:
            continue  # its schema errors are reported from the whole scenario's validation
    return valid


@dataclass(frozen=True)
class _Parts:
    """The facts, session entries, turns and probes that are valid, by their index in the file."""

    facts: dict[int, Fact]
    sessions: dict[int, SessionSpec | FillerSpec]
    turns: dict[tuple[int, int], TurnSpec]
    probes: dict[int, Probe]

    @classmethod
    def of(cls, scenario: Scenario) -> _Parts:
        """Every item of a scenario that is valid as a whole."""
        sessions = dict(enumerate(scenario.sessions))
        turns = {(i, j): turn for i, entry in sessions.items() if isinstance(entry, SessionSpec)
                 for j, turn in enumerate(entry.turns)}
        return cls(dict(enumerate(scenario.facts)), sessions, turns, dict(enumerate(scenario.probes)))

    @classmethod
    def salvaged(cls, data: dict[str, Any]) -> _Parts:
        """Each item validated on its own, turns too, where the scenario is not valid as a whole."""
        entries = data.get("sessions")
        turns: dict[tuple[int, int], TurnSpec] = {}
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, dict) and not _is_filler(entry):  # a broken session's turns too
                valid = _valid_items(entry.get("turns"), TurnSpec.model_validate)
                turns.update(((i, j), turn) for j, turn in valid.items())
        return cls(_valid_items(data.get("facts"), Fact.model_validate),
                   _valid_items(entries, _SESSION_ENTRY.validate_python), turns,
                   _valid_items(data.get("probes"), Probe.model_validate))


class _Checker:
    """The cross-reference rules of the format, on what of a scenario can be read.

    Names are looked up among the ids as the file writes them, so that a reference to an item
    whose own definition has a schema error is not reported again as unknown; the rules that
    read an item's content (answers, times, kind) see only the items that are valid.
    """

    def __init__(self, data: dict[str, Any], parts: _Parts, broken: set[Path_], pos: Positions,
                 file: str):
        self.data, self.parts, self.broken, self.pos, self.file = data, parts, broken, pos, file
        self.problems: list[Problem] = []
        self.users = self._users()
        entries = self._indices(("sessions",))
        self.last_session = len(entries) - 1
        self.fillers = [i for i in entries if _is_filler(self._raw(("sessions", i)))]
        self.sessions = [i for i in entries if not _is_filler(self._raw(("sessions", i)))]
        self.fact_ids = self._readable(("facts", i, "id") for i in self._indices(("facts",)))
        self.probe_ids = self._readable(("probes", i, "id") for i in self._indices(("probes",)))
        self.session_ids = self._readable(("sessions", i, "id") for i in self.sessions)
        self.turn_ids = self._readable(("sessions", i, "turns", j, "id") for i in self.sessions
                                       for j in self._indices(("sessions", i, "turns")))
        self.known_facts = {fid for _, fid in self.fact_ids}
        self.session_index = {sid: i for i in self.sessions
                              if (sid := self._string(("sessions", i, "id"))) is not None}
        self.turn_index = {tid: i for i in self.sessions for j in self._indices(("sessions", i, "turns"))
                           if (tid := self._string(("sessions", i, "turns", j, "id"))) is not None}

    def _raw(self, path: Path_) -> Any:
        """The value at `path` as the file writes it; None where there is none."""
        node: Any = self.data
        for part in path:
            if isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return None
        return node

    def _indices(self, path: Path_) -> range:
        """The indices of the list at `path`; none where it is not a list."""
        value = self._raw(path)
        return range(len(value) if isinstance(value, list) else 0)

    def _string(self, path: Path_) -> str | None:
        """The string at `path`, unless there is none or it has a schema error of its own."""
        value = self._raw(path)
        return value if isinstance(value, str) and path not in self.broken else None

    def _readable(self, paths: Iterable[Path_]) -> list[tuple[Path_, str]]:
        """(path, string) of each of `paths` that holds a readable string."""
        found = []
        for path in paths:
            value = self._string(path)
            if value is not None:
                found.append((path, value))
        return found

    def _strings(self, path: Path_) -> list[tuple[Path_, str]]:
        """(path, string) of each readable string in the list at `path`."""
        return self._readable((*path, k) for k in self._indices(path))

    def _listed(self, key: str) -> bool:
        """Whether the list under `key` can be read, so that a name missing from it is unknown
        (an optional list left out is an empty one)."""
        if key not in self.data:
            return not Scenario.model_fields[key].is_required()
        return isinstance(self.data[key], list)

    def _users(self) -> list[str] | None:
        """The users the file names; None where `users:` itself is broken, so that no user can
        be told to be missing from it."""
        if "users" not in self.data:
            return list(Scenario.model_fields["users"].get_default(call_default_factory=True))
        if not isinstance(self.data["users"], list) or ("users",) in self.broken:
            return None
        return [user for _, user in self._strings(("users",))]

    def add(self, path: Path_, message: str, fix: str, key: bool = False) -> None:
        line, col = self.pos.of_key(path) if key else self.pos.of(path)
        self.problems.append(Problem(self.file, line, col, message, fix))

    def run(self) -> list[Problem]:
        self._duplicates("fact", self.fact_ids)
        self._duplicates("probe", self.probe_ids)
        self._duplicates("user", self._strings(("users",)))
        self._duplicates("session", self.session_ids)
        self._duplicates("turn", self.turn_ids)
        for i in self.fillers:
            self._user(("sessions", i, "filler", "user"))
        for i in self.sessions:
            self._user(("sessions", i, "user"))
        planted_at = self._plants()
        self._fillers()
        self._canaries()
        self._supersedes()
        self._times()
        for i in self._indices(("probes",)):
            self._probe_references(i, planted_at)
        for i, probe in self.parts.probes.items():
            self._probe(i, probe)
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

    def _user(self, path: Path_) -> None:
        user = self._string(path)
        if user is not None and self.users is not None and user not in self.users:
            self.add(path, f"user '{user}' is not in `users` {self.users}",
                     f"add '{user}' to `users:` or fix the name")

    def _unknown_fact(self, path: Path_, fid: str) -> None:
        if not self._listed("facts"):
            return
        close = difflib.get_close_matches(fid, [known for _, known in self.fact_ids], n=1)
        fix = f"did you mean '{close[0]}'?" if close else "declare it under `facts:`"
        self.add(path, f"unknown fact '{fid}'", fix)

    def _plants(self) -> dict[str, int] | None:
        """The session each fact is first planted in, checking what each turn plants; None where
        a schema error hides some turn's `plants:`, so that "never planted" cannot be told."""
        facts = {f.id: f for f in self.parts.facts.values()}
        planted_at: dict[str, int] = {}
        readable = self._listed("sessions")
        for i in self.sessions:
            turns = ("sessions", i, "turns")
            readable &= isinstance(self._raw(turns), list)
            for j in self._indices(turns):
                written, plants = self._raw((*turns, j, "plants")), self._strings((*turns, j, "plants"))
                readable &= written is None or (isinstance(written, list) and len(written) == len(plants))
                turn = self.parts.turns.get((i, j))
                for path, fid in plants:
                    if fid not in self.known_facts:
                        self._unknown_fact(path, fid)
                        continue
                    planted_at.setdefault(fid, i)
                    fact = facts.get(fid)
                    if turn is None or fact is None or fact.paraphrased:
                        continue
                    if not contains_any(turn.text, fact.answers):
                        self.add(path, f"turn plants '{fid}' but contains none of its answers "
                                 f"{fact.answers}",
                                 "quote an answer in the turn, or set `paraphrased: true` on the fact")
        return planted_at if readable else None

    def _fillers(self) -> None:
        for i, entry in self.parts.sessions.items():
            filler = entry.filler if isinstance(entry, FillerSpec) else None
            if filler and filler.tokens < MIN_FILLER_TOKENS_PER_SESSION * filler.sessions:
                self.add(("sessions", i, "filler", "tokens"),
                         f"{filler.tokens} tokens are too few for {filler.sessions} sessions",
                         f"give at least {MIN_FILLER_TOKENS_PER_SESSION} tokens per session")

    def _canaries(self) -> None:
        for i, fact in self.parts.facts.items():
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

    def _supersedes(self) -> None:
        older = {fid: self._string(("facts", path[1], "supersedes")) for path, fid in self.fact_ids}
        for i in self._indices(("facts",)):
            path = ("facts", i, "supersedes")
            supersedes, fid = self._string(path), self._string(("facts", i, "id"))
            if supersedes is None:
                continue
            if supersedes not in self.known_facts:
                self._unknown_fact(path, supersedes)
                continue
            if fid is None:
                continue  # a fact that cannot be named cannot be in a cycle
            chain: list[str] = [fid]
            current: str | None = supersedes
            while current is not None and current in older:
                if current in chain:
                    if current == fid:
                        self.add(path, f"supersedes cycle: {' -> '.join([*chain, current])}",
                                 "a fact may only supersede an older fact")
                    break
                chain.append(current)
                current = older[current]

    def _times(self) -> None:
        previous = None
        for i, e in self.parts.sessions.items():
            if not isinstance(e, SessionSpec) or e.time is None:
                continue
            if previous is not None and _naive(e.time) < _naive(previous[1]):
                self.add(("sessions", i, "time"),
                         f"time goes backwards: {e.time} is before session '{previous[0]}' ({previous[1]})",
                         "order sessions by time or fix the date")
            previous = (e.id, e.time)

    def _probe_references(self, i: int, planted_at: dict[str, int] | None) -> None:
        """The names a probe uses, and whether what it needs comes before it is asked."""
        base = ("probes", i)
        probe = self._string((*base, "id")) or "?"
        self._user((*base, "user"))
        asked_after = self.last_session  # also where `after:` cannot be read: nothing comes later
        after = self._string((*base, "after"))
        if after in self.session_index:
            asked_after = self.session_index[after]
        elif after is not None and self._listed("sessions"):
            close = difflib.get_close_matches(after, list(self.session_index), n=1)
            self.add((*base, "after"), f"unknown session '{after}'",
                     f"did you mean '{close[0]}'?" if close else "name a session id")
        for field in ("expects", "rejects", "forbids"):
            for path, fid in self._strings((*base, field)):
                if fid not in self.known_facts:
                    self._unknown_fact(path, fid)
                elif field == "expects" and planted_at is not None:
                    if fid not in planted_at:
                        self.add(path, f"fact '{fid}' is never planted",
                                 f"add `plants: [{fid}]` to the turn that states it")
                    elif planted_at[fid] > asked_after:
                        where = self._string(("sessions", planted_at[fid], "id")) or "?"
                        self.add(path, f"probe '{probe}' is asked before fact '{fid}' is planted "
                                 f"(in session '{where}')", "move `after:` to that session or later")
        for path, tid in self._strings((*base, "evidence")):
            if tid in self.turn_index and self.turn_index[tid] > asked_after:
                self.add(path, f"probe '{probe}' is asked before its evidence turn '{tid}'",
                         "move `after:` to that session or later")
            elif tid not in self.turn_index and self._listed("sessions"):
                self.add(path, f"unknown turn '{tid}'", "give the turn an `id:` or fix the name")

    def _probe(self, i: int, p: Probe) -> None:
        """The rules on a valid probe's own content: its time, and what its kind needs."""
        base = ("probes", i)
        after = self.session_index.get(p.after) if p.after is not None else None
        entry = self.parts.sessions.get(after) if after is not None else None
        if p.time and isinstance(entry, SessionSpec) and entry.time and \
                _naive(p.time) < _naive(entry.time):
            self.add((*base, "time"), f"time goes backwards: the probe is dated before "
                     f"session '{p.after}'", "date the probe after the session it follows")
        needs_answer = p.kind not in LEAKAGE_KINDS and p.kind != ProbeKind.abstention
        if needs_answer and not (p.expects or p.answers or p.evidence):
            self.add(base, f"{p.kind.value} probe '{p.id}' has nothing to check",
                     "add `expects:` (fact ids), `answers:` or `evidence:`")
        if p.kind in LEAKAGE_KINDS and not p.forbids:
            self.add(base, f"{p.kind.value} probe '{p.id}' forbids nothing",
                     "add `forbids:` with the fact ids that must not surface")


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if getattr(value, "tzinfo", None) else value


def _by_place(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column))


def parse_scenario(text: str, file: str = "<string>") -> Scenario:
    """Parse and validate scenario YAML text; raise ScenarioError listing every problem."""
    try:
        data, pos = load_with_positions(text)
    except YamlError as exc:
        raise ScenarioError([Problem(file, exc.line, exc.column, exc.message, exc.fix)]) from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = [(err, _data_path(err["loc"], data)) for err in exc.errors()]
        # Check the cross-references too, on what is readable, not one round at a time. A value
        # with an error of its own is not looked up (its error says enough); a missing or unknown
        # key holds no value to distrust, and a misspelt one is read under the key it means.
        broken = {path for err, path in errors if err["type"] not in {"missing", "extra_forbidden"}}
        repaired = _without_unknown_keys(data, errors)
        problems = _schema_problems(errors, data, pos, file, text) + \
            _Checker(repaired, _Parts.salvaged(repaired), broken, pos, file).run()
        raise ScenarioError(_by_place(problems)) from None
    problems = _Checker(data, _Parts.of(scenario), set(), pos, file).run()
    if problems:
        raise ScenarioError(_by_place(problems))
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
