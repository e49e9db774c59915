"""`memeval import`: LongMemEval and LoCoMo files as scenarios that name their `evidence`.

The datasets are not redistributed (licences); users download them. A malformed file
stops the import with one line naming the JSON path of the problem, before any file is
written.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from memeval.errors import MemevalError

#: LongMemEval question types to probe kinds.
LONGMEMEVAL_KINDS = {
    "single-session-user": "recall",
    "single-session-assistant": "recall",
    "single-session-preference": "preference",
    "temporal-reasoning": "temporal",
    "knowledge-update": "update",
    "multi-session": "aggregation",
}
#: LoCoMo QA categories to probe kinds (5, adversarial, is left out unless asked for).
LOCOMO_KINDS = {1: "multi_hop", 2: "temporal", 3: "recall", 4: "recall", 5: "abstention"}


class ImportProblem(MemevalError):
    """Malformed input, at a JSON path."""

    def __init__(self, file: str | Path, path: str, message: str):
        super().__init__(f"{file}: {path}: {message}")


def _id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:\-]", "_", str(text)) or "_"


class _Reader:
    """Typed access to parsed JSON that reports the JSON path of what is wrong."""

    def __init__(self, file: str | Path):
        self.file = file

    def get(self, obj: Any, key: str | int, path: str, kind: type | tuple[type, ...]) -> Any:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
        if isinstance(key, int):
            value = obj[key] if isinstance(obj, list) and key < len(obj) else None
        elif not isinstance(obj, dict):
            raise ImportProblem(self.file, path, f"expected an object, found {type(obj).__name__}")
        elif key not in obj:
            raise ImportProblem(self.file, where, "missing")
        else:
            value = obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ImportProblem(self.file, where, f"expected {names}, found {type(value).__name__}")
        return value

    def time(self, text: str, formats: tuple[str, ...], where: str) -> datetime:
        for fmt in formats:
            try:
                return datetime.strptime(text.strip(), fmt)
            except ValueError:
                continue
        raise ImportProblem(self.file, where, f"unreadable date {text!r}")


def _load(file: str | Path) -> Any:
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MemevalError(f"{file}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise MemevalError(f"{file}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})") from None


def longmemeval(file: str | Path) -> list[dict[str, Any]]:
    """One scenario per LongMemEval question."""
    data = _load(file)
    r = _Reader(file)
    if not isinstance(data, list):
        raise ImportProblem(file, "$", "expected a list of questions")
    out = []
    for i, q in enumerate(data):
        at = f"$[{i}]"
        qid = r.get(q, "question_id", at, (str, int))
        qtype = r.get(q, "question_type", at, str)
        abstain = str(qid).endswith("_abs")
        if qtype not in LONGMEMEVAL_KINDS:
            raise ImportProblem(file, f"{at}.question_type", f"unknown type {qtype!r} (known: "
                                f"{', '.join(LONGMEMEVAL_KINDS)})")
        ids = r.get(q, "haystack_session_ids", at, list)
        dates = r.get(q, "haystack_dates", at, list)
        sessions = r.get(q, "haystack_sessions", at, list)
        if not len(ids) == len(dates) == len(sessions):
            raise ImportProblem(file, at, "haystack_session_ids, haystack_dates and "
                                "haystack_sessions differ in length")
        answer_sessions = {str(s) for s in r.get(q, "answer_session_ids", at, list)}
        fmt = ("%Y/%m/%d (%a) %H:%M", "%Y/%m/%d %H:%M", "%Y/%m/%d")
        built = []
        evidence: list[str] = []
        for k, (sid, turns) in enumerate(zip(ids, sessions, strict=True)):
            where = f"{at}.haystack_sessions[{k}]"
            when = r.time(r.get(dates, k, f"{at}.haystack_dates", str), fmt,
                          f"{at}.haystack_dates[{k}]")
            if not isinstance(turns, list):
                raise ImportProblem(file, where, "expected a list of turns")
            session_id = _id(sid)
            spec, marked = [], []
            for j, turn in enumerate(turns):
                role = r.get(turn, "role", f"{where}[{j}]", str)
                if role not in ("user", "assistant"):
                    raise ImportProblem(file, f"{where}[{j}].role",
                                        f"expected 'user' or 'assistant', found {role!r}")
                content = r.get(turn, "content", f"{where}[{j}]", str)
                if not content.strip():
                    continue
                tid = f"{session_id}.t{j}"
                spec.append({"id": tid, role: content})
                if turn.get("has_answer") is True:
                    marked.append(tid)
            if not spec:
                continue
            if str(sid) in answer_sessions:
                # the turns that hold the answer; a session without marks is evidence whole
                evidence += marked or [t["id"] for t in spec]
            built.append((when, k, {"id": session_id, "time": when.isoformat(), "turns": spec}))
        if not built:
            raise ImportProblem(file, f"{at}.haystack_sessions", "no turn has any text")
        built.sort(key=lambda b: (b[0], b[1]))  # replay in time order
        asked = r.time(r.get(q, "question_date", at, str), fmt, f"{at}.question_date")
        probe: dict[str, Any] = {"id": _id(qid), "question": r.get(q, "question", at, str),
                                 "time": asked.isoformat()}
        if abstain:
            probe["kind"] = "abstention"
        else:
            probe["kind"] = LONGMEMEVAL_KINDS[qtype]
            probe["answers"] = [str(r.get(q, "answer", at, (str, int, float)))]
            if evidence:
                probe["evidence"] = evidence
        out.append({"memeval": 1, "id": f"longmemeval-{_id(qid)}",
                    "title": f"LongMemEval {qid} ({qtype})", "tags": ["longmemeval", qtype],
                    "sessions": [b[2] for b in built], "probes": [probe]})
    return out


def locomo(file: str | Path, adversarial: bool = False) -> list[dict[str, Any]]:
    """One scenario per LoCoMo conversation (`sample_id`)."""
    data = _load(file)
    r = _Reader(file)
    if not isinstance(data, list):
        raise ImportProblem(file, "$", "expected a list of conversations")
    out = []
    for i, sample in enumerate(data):
        at = f"$[{i}]"
        sample_id = r.get(sample, "sample_id", at, (str, int))
        conv = r.get(sample, "conversation", at, dict)
        speaker_a = r.get(conv, "speaker_a", f"{at}.conversation", str)
        speaker_b = r.get(conv, "speaker_b", f"{at}.conversation", str)
        numbers = sorted(int(m.group(1)) for key in conv
                         if (m := re.fullmatch(r"session_(\d+)", key)))
        sessions = []
        known: set[str] = set()
        for n in numbers:
            where = f"{at}.conversation.session_{n}"
            turns = r.get(conv, f"session_{n}", f"{at}.conversation", list)
            stamp = r.get(conv, f"session_{n}_date_time", f"{at}.conversation", str)
            when = r.time(stamp, ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"),
                          f"{at}.conversation.session_{n}_date_time")
            spec = []
            for j, turn in enumerate(turns):
                speaker = r.get(turn, "speaker", f"{where}[{j}]", str)
                if speaker not in (speaker_a, speaker_b):
                    raise ImportProblem(file, f"{where}[{j}].speaker", f"{speaker!r} is neither "
                                        f"speaker_a ({speaker_a}) nor speaker_b ({speaker_b})")
                dia = _id(r.get(turn, "dia_id", f"{where}[{j}]", str))
                text = r.get(turn, "text", f"{where}[{j}]", str)
                caption = turn.get("blip_caption")
                if caption:
                    text = f"{text} [shares a photo: {caption}]".strip()
                if not text.strip():
                    continue
                role = "user" if speaker == speaker_a else "assistant"
                spec.append({"id": dia, role: f"{speaker}: {text}"})
                known.add(dia)
            if spec:
                sessions.append({"id": f"session_{n}", "time": when.isoformat(), "turns": spec})
        if not sessions:
            raise ImportProblem(file, f"{at}.conversation", "no session_N with turns")
        probes = []
        dropped = 0
        for k, qa in enumerate(r.get(sample, "qa", at, list)):
            where = f"{at}.qa[{k}]"
            category = r.get(qa, "category", where, int)
            if category not in LOCOMO_KINDS:
                raise ImportProblem(file, f"{where}.category", f"unknown category {category}")
            if category == 5 and not adversarial:
                continue
            probe: dict[str, Any] = {"id": f"q{k}", "question": r.get(qa, "question", where, str),
                                     "kind": LOCOMO_KINDS[category]}
            if category != 5:
                answer = str(r.get(qa, "answer", where, (str, int, float)))
                # LoCoMo scores open-domain answers by the part before ';' (the rest is a
                # reason): that part first, which LoCoMo's token F1 (parity) reads
                first = answer.split(";")[0].strip()
                probe["answers"] = [first, answer] if category == 3 and first and first != answer \
                    else [answer]
            ids = [_id(e.strip()) for item in r.get(qa, "evidence", where, list)
                   for e in str(item).split(";") if e.strip()]
            dropped += sum(e not in known for e in ids)
            if category != 5 and (evidence := [e for e in dict.fromkeys(ids) if e in known]):
                probe["evidence"] = evidence
            probes.append(probe)
        if not probes:
            continue
        out.append({"memeval": 1, "id": f"locomo-{_id(sample_id)}",
                    "title": f"LoCoMo {sample_id}: {speaker_a} and {speaker_b}",
                    "tags": ["locomo"], "sessions": sessions, "probes": probes,
                    **({"description": f"{dropped} evidence reference(s) to turns that do not "
                        "exist were dropped."} if dropped else {})})
    return out


def write_scenarios(scenarios: list[dict[str, Any]], out: str | Path) -> dict[str, Any]:
    """Validate every scenario, then write them all; on a problem nothing is written."""
    from memeval.scenario.validate import parse_scenario

    texts = []
    kinds: Counter[str] = Counter()
    for data in scenarios:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        scenario = parse_scenario(text, f"{data['id']}.yaml")
        kinds.update(p.kind.value for p in scenario.probes)
        texts.append((f"{data['id']}.yaml", text))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts:
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)
    return {"scenarios": len(texts), "probes": sum(kinds.values()), "kinds": dict(kinds)}
