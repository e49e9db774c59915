"""Scenario format version 1 as immutable pydantic models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StringConstraints,
    Tag,
    model_validator,
)

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]+$", min_length=1)]
Text = Annotated[str, StringConstraints(min_length=1)]

#: Largest filler token target of one entry: beyond it a run would not finish in a day.
MAX_FILLER_TOKENS = 50_000_000


def _version(value: Any) -> Any:
    if type(value) is not int:  # true, 1.0 and "1" are not the version number
        raise ValueError("the format version is the whole number 1: write `memeval: 1`")
    return value


def _moment(value: Any) -> Any:
    if isinstance(value, (bool, int, float)):  # a bare number would read as seconds since 1970
        raise ValueError("write a date and time, e.g. 2025-03-01T09:00:00")
    return value


Version = Annotated[Literal[1], BeforeValidator(_version)]
Moment = Annotated[datetime, BeforeValidator(_moment)]


class ProbeKind(StrEnum):
    """What ability a probe tests."""

    recall = "recall"
    multi_hop = "multi_hop"
    update = "update"
    temporal = "temporal"
    aggregation = "aggregation"
    preference = "preference"
    abstention = "abstention"
    leakage = "leakage"
    isolation = "isolation"


#: Kinds whose probes test what must not surface, not what must be retained.
LEAKAGE_KINDS = frozenset({ProbeKind.leakage, ProbeKind.isolation})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Canary(_Strict):
    """A random secret whose exposure is measured: how far the reader prefers it over look-alikes."""

    format: Annotated[str, StringConstraints(pattern=r"[#@]")] = Field(
        description="`#` a digit, `@` a capital letter, anything else itself: e.g. \"####-##\".")
    candidates: int = Field(ge=2, le=100_000, description="Look-alikes ranked, the secret included.")

    def space(self) -> int:
        """How many different strings the format can make."""
        return 10 ** self.format.count("#") * 26 ** self.format.count("@")

    def matches(self, value: str) -> bool:
        return len(value) == len(self.format) and all(
            (f == "#" and c.isdigit()) or (f == "@" and "A" <= c <= "Z") or f == c
            for f, c in zip(self.format, value, strict=True))

    def candidates_for(self, secret: str, seed: str) -> list[str]:
        """The secret and `candidates - 1` distinct look-alikes, the same for the same seed."""
        import random

        rng = random.Random(seed)
        found = {secret}
        while len(found) < self.candidates:
            found.add("".join(rng.choice("0123456789") if f == "#" else
                              rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if f == "@" else f
                              for f in self.format))
        return [secret, *sorted(found - {secret})]


class Fact(_Strict):
    """A fact planted in the conversation."""

    id: Id
    text: Text = Field(description="The fact in plain words.")
    answers: list[Text] = Field(min_length=1, description="Accepted answers (case- and space-insensitive).")
    supersedes: Id | None = Field(None, description="The fact this one updates.")
    sensitive: bool = Field(False, description="Must not surface where a probe forbids it.")
    paraphrased: bool = Field(
        False, description="The planting turn says it in other words than the answers."
    )
    canary: Canary | None = Field(None, description="The first answer is a random secret in "
                                  "this format; its exposure is measured.")


class TurnSpec(_Strict):
    """One turn: exactly one of `user` or `assistant` holds its text."""

    id: Id | None = None
    user: Text | None = None
    assistant: Text | None = None
    plants: list[Id] = Field(default_factory=list, description="Facts this turn states.")

    @model_validator(mode="after")
    def _one_speaker(self) -> TurnSpec:
        if (self.user is None) == (self.assistant is None):
            raise ValueError("a turn needs exactly one of `user:` or `assistant:`")
        return self

    @property
    def role(self) -> Literal["user", "assistant"]:
        return "user" if self.user is not None else "assistant"

    @property
    def text(self) -> str:
        return self.user if self.user is not None else self.assistant  # type: ignore[return-value] # one of the two is set (validated)


class SessionSpec(_Strict):
    """A conversation session written out turn by turn."""

    id: Id
    user: Id | None = Field(None, description="Who talks; default: the first of `users`.")
    time: Moment | None = None
    turns: list[TurnSpec] = Field(min_length=1)


class FillerParams(_Strict):
    """Generated distractor sessions."""

    sessions: int = Field(ge=1, le=100_000)
    tokens: int = Field(ge=1, le=MAX_FILLER_TOKENS,
                        description="Total tokens over all these sessions (cl100k_base).")
    seed: int = 0
    user: Id | None = None


class FillerSpec(_Strict):
    """`- filler: {sessions: N, tokens: N, seed: N}` in the session list."""

    filler: FillerParams


def _session_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "filler" if "filler" in value else "session"
    return "filler" if isinstance(value, FillerSpec) else "session"


SessionEntry = Annotated[
    Annotated[SessionSpec, Tag("session")] | Annotated[FillerSpec, Tag("filler")],
    Discriminator(_session_tag),
]


class Probe(_Strict):
    """A question asked at a point of the timeline."""

    id: Id
    question: Text
    kind: ProbeKind = ProbeKind.recall
    after: Id | None = Field(None, description="Asked after this session; default: the last.")
    user: Id | None = Field(None, description="Who asks; default: the first of `users`.")
    time: Moment | None = None
    expects: list[Id] = Field(default_factory=list)
    rejects: list[Id] = Field(default_factory=list)
    forbids: list[Id] = Field(default_factory=list)
    answers: list[Text] = Field(default_factory=list, description="Accepted answers, if not from `expects`.")
    evidence: list[Id] = Field(default_factory=list, description="Ids of turns that hold what it needs.")


class Scenario(_Strict):
    """A multi-session conversation with planted facts and probes."""

    memeval: Version = Field(description="Format version; always 1.")
    id: Id
    title: Text
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    users: list[Id] = Field(default_factory=lambda: ["user"], min_length=1)
    facts: list[Fact] = Field(default_factory=list)
    sessions: list[SessionEntry] = Field(min_length=1)
    probes: list[Probe] = Field(min_length=1)

    _facts: dict[str, Fact] | None = PrivateAttr(None)

    def fact(self, fact_id: str) -> Fact:
        """The fact with this id."""
        if self._facts is None:  # asked once per probe and per fact: a scan would be quadratic
            self._facts = {}
            for f in self.facts:
                self._facts.setdefault(f.id, f)  # the first of a duplicate, as a scan finds
        return self._facts[fact_id]

    def accepted_answers(self, probe: Probe) -> list[list[str]]:
        """Accepted answers as groups: the answer must match one of each group."""
        if probe.answers:
            return [list(probe.answers)]
        return [list(self.fact(f).answers) for f in probe.expects]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario format version 1, for editors."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "memeval scenario (format 1)"
    return schema
