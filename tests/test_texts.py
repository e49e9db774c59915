"""Long recalled texts are stored once, as content-addressed blocks, and read back whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="a dev dependency: pip install -e '.[dev]'")

from hypothesis import given
from hypothesis import strategies as st

from memeval.errors import MemevalError
from memeval.protocols import RecallItem
from memeval.records import RECORDS, ProbeRecord, RecordWriter, read_records, rewrite_records
from memeval.texts import TEXTS, read_blocks, split_blocks


@given(st.text(alphabet="ab\n\r\u2028é", max_size=400))
def test_blocks_join_to_the_text(text: str) -> None:
    assert "".join(split_blocks(text)) == text


def _history(first: int, last: int) -> list[tuple[str, str]]:
    return [(f"t{i}", f"user: turn {i} of a long conversation about tea and gardens")
            for i in range(first, last)]


def _record(probe: str, turns: list[tuple[str, str]]) -> ProbeRecord:
    return ProbeRecord(scenario="s", scenario_sha256="0" * 64, backend="full_context", reader="r",
                       probe=probe, kind="recall", user="u", question="?", accepted=[["x"]],
                       recall_text="\n".join(text for _, text in turns),
                       recall_items=[RecallItem(text=text, turn_id=tid) for tid, text in turns])


def test_a_history_recalled_at_every_probe_is_stored_about_once(tmp_path: Path) -> None:
    # 40 probes, each recalling the history so far, the oldest turns dropped past 1,500
    records = [_record(f"p{k}", _history(max(0, 50 * k - 1500), 50 * k)) for k in range(1, 41)]
    writer = RecordWriter(tmp_path)
    writer.write_many(records)
    writer.close()
    inline = sum(len(r.model_dump_json()) for r in records)
    stored = (tmp_path / RECORDS).stat().st_size + (tmp_path / TEXTS).stat().st_size
    assert stored < inline / 8
    assert read_records(tmp_path) == records
    rewrite_records(tmp_path, records[:10])  # resume rewrites the records: the texts stay readable
    assert read_records(tmp_path) == records[:10]


def test_texts_with_unusual_line_breaks_read_back_whole(tmp_path: Path) -> None:
    odd = [(f"t{i}", f"user: line {i} with \u2028, \x85 and \r\n inside") for i in range(60)]
    writer = RecordWriter(tmp_path)
    writer.write(_record("p", odd))
    writer.close()
    assert read_blocks(tmp_path) and read_records(tmp_path) == [_record("p", odd)]


def test_short_texts_stay_in_the_record(tmp_path: Path) -> None:
    with_short = _record("p", [("t0", "user: hi")])
    writer = RecordWriter(tmp_path)
    writer.write(with_short)
    writer.close()
    line = json.loads((tmp_path / RECORDS).read_text())
    assert line["recall_text"] == "user: hi" and line["recall_items"][0]["text"] == "user: hi"
    assert read_blocks(tmp_path) == {}


def test_records_wait_for_their_group_and_are_durable_once_it_commits(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path, every_n=3, every_s=3600)
    writer.write_many([_record("p1", _history(0, 100)), _record("p2", _history(0, 120))])
    assert read_records(tmp_path) == []  # a killed writer loses the group in flight, no more
    writer.write(_record("p3", _history(0, 140)))
    assert [r.probe for r in read_records(tmp_path)] == ["p1", "p2", "p3"]
    writer.close()


def test_a_torn_block_line_is_dropped_and_a_missing_block_is_named(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path)
    writer.write(_record("p1", _history(0, 100)))
    writer.close()
    texts = tmp_path / TEXTS
    with texts.open("ab") as fh:
        fh.write(b'{"id": "abc", "te')  # killed mid-write: no record refers to it yet
    assert len(read_records(tmp_path)) == 1
    RecordWriter(tmp_path).close()  # a new writer cuts the torn line off
    assert texts.read_bytes().endswith(b"\n")
    texts.write_text("")
    with pytest.raises(MemevalError, match=rf"{RECORDS}:1: refers to text block \w+, which "
                       rf"{TEXTS} lacks"):
        read_records(tmp_path)
