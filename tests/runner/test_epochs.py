"""--epochs: each cell repeated under seeds derived from the run's, kept apart by resume and
by the call cache."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import ClassVar

import pytest

import memeval
from memeval.errors import MemevalError
from memeval.protocols import Answer, CellContext, Usage
from memeval.records import Manifest, RunConfig, epoch_seed, read_records, rewrite_records
from memeval.runner import plan_run
from memeval.runner.service import ReaderService

from ..conftest import SCENARIOS
from ..helpers import EchoReader, FlakyBackend

PETS = SCENARIOS / "quick" / "pets-and-moves.yaml"


def test_epoch_zero_keeps_the_run_seed_and_later_epochs_hash_it() -> None:
    assert epoch_seed(7, 0) == 7
    # epoch e >= 1: the first 8 bytes of sha256("memeval-epoch:{seed}:{e}"), big-endian, mod 2**31
    digest = hashlib.sha256(b"memeval-epoch:7:2").digest()
    assert epoch_seed(7, 2) == int.from_bytes(digest[:8], "big") % 2**31
    seeds = [epoch_seed(7, e) for e in range(6)]
    assert len(set(seeds)) == 6  # every epoch its own seed
    assert seeds == [epoch_seed(7, e) for e in range(6)]  # the same again
    assert [epoch_seed(8, e) for e in range(1, 6)] != seeds[1:]  # another run seed, others
    assert all(0 <= s < 2**31 for s in seeds)


def test_the_plan_has_a_cell_per_epoch_with_its_seed_and_folder(tmp_path: Path) -> None:
    config = RunConfig(backends=["oracle"], reader="extractive", out=tmp_path, control=False,
                       seed=3, epochs=3)
    cells = plan_run([PETS], config).cells()
    assert [c.epoch for c in cells] == [0, 1, 2]
    assert [c.seed for c in cells] == [3, epoch_seed(3, 1), epoch_seed(3, 2)]
    assert len({c.workdir for c in cells}) == 3
    assert [c.seed for c in plan_run([PETS], config).cells()] == [c.seed for c in cells]
    # one epoch: the cells it always had (the run's seed, the folder without a suffix)
    (one,) = plan_run([PETS], config.model_copy(update={"epochs": 1})).cells()
    assert (one.seed, one.epoch) == (3, 0) and one.workdir.endswith("pets-and-moves--oracle")


class SeedsSeen(FlakyBackend):
    """Remembers the seed of every cell it is bound to."""

    seen: ClassVar[list[int]] = []

    def bind(self, context: CellContext) -> None:
        SeedsSeen.seen.append(context.seed)


def test_each_epoch_s_backend_gets_its_seed_and_records_say_the_epoch(tmp_path: Path) -> None:
    SeedsSeen.seen = []
    result = memeval.run(PETS, backends=[SeedsSeen], reader="extractive", out=tmp_path / "r",
                         control=False, report=False, cache=False, seed=11, epochs=3)
    assert SeedsSeen.seen == [11, epoch_seed(11, 1), epoch_seed(11, 2)]
    records = read_records(result.run_dir)
    probes = {r.probe for r in records}
    assert sorted((r.probe, r.epoch) for r in records) == sorted(
        (p, e) for p in probes for e in range(3))
    assert len({r.key for r in records}) == len(records)  # epochs are separate records
    assert memeval.RunResult(result.run_dir).manifest.config.epochs == 3


def test_resume_asks_only_the_missing_epoch(tmp_path: Path) -> None:
    out = tmp_path / "r"
    reader = EchoReader()
    memeval.run(PETS, backends=["oracle"], reader=reader, out=out, control=False, report=False,
                cache=False, epochs=2)
    records = read_records(out)
    per_epoch = len(records) // 2
    assert reader.calls == 2 * per_epoch
    rewrite_records(out, [r for r in records if r.epoch == 0])  # as if killed after epoch 0
    again = EchoReader()
    memeval.run(PETS, backends=["oracle"], reader=again, out=out, control=False, report=False,
                cache=False, epochs=2, resume=True)
    assert again.calls == per_epoch  # epoch 1 only: epoch 0's records are not its records
    resumed = read_records(out)
    assert sorted(r.key for r in resumed) == sorted(r.key for r in records)


def test_resume_refuses_other_epochs_and_old_manifests_read_as_one(tmp_path: Path) -> None:
    out = tmp_path / "r"
    memeval.run(PETS, backends=["oracle"], reader="extractive", out=out, control=False,
                report=False, epochs=2)
    with pytest.raises(MemevalError, match="epochs"):
        memeval.run(PETS, backends=["oracle"], reader="extractive", out=out, control=False,
                    report=False, epochs=3, resume=True)
    old = Manifest.model_validate_json((Path(__file__).parents[1] / "records_v01" /
                                        "manifest.json").read_text())
    assert old.config.epochs == 1 and old.fingerprint()["epochs"] == 1
    assert all(r.epoch == 0 for r in read_records(Path(__file__).parents[1] / "records_v01"))


class Sampler(EchoReader):
    """Samples: its answer is drawn from the seed it was given and the question."""

    def __init__(self) -> None:
        super().__init__()
        self.seed = 0

    def set_seed(self, seed: int) -> bool:
        self.seed = seed
        return True

    def answer(self, question: str, context: str) -> Answer:
        self.calls += 1
        draw = random.Random(f"{self.seed}:{question}").randrange(10**9)
        return Answer(text=f"sample {draw}", usage=Usage(input_tokens=1, output_tokens=1))

    def identity(self) -> dict[str, object]:
        return {"reader": "sampler"}


def test_the_call_cache_keeps_a_sampling_reader_s_epochs_apart(tmp_path: Path) -> None:
    first = memeval.run(PETS, backends=["oracle"], reader=Sampler(), out=tmp_path / "a",
                        control=False, report=False, epochs=3)
    answers = {}
    for r in read_records(first.run_dir):
        answers.setdefault(r.probe, {})[r.epoch] = r.answer
        assert not r.cached  # a cached epoch 0 must not answer for epochs 1 and 2
    assert all(len(set(by_epoch.values())) == 3 for by_epoch in answers.values())
    # the same run again: every answer from the cache, each epoch its own
    again = Sampler()
    second = memeval.run(PETS, backends=["oracle"], reader=again, out=tmp_path / "b",
                         control=False, report=False, epochs=3)
    assert again.calls == 0
    assert {(r.probe, r.epoch): r.answer for r in read_records(second.run_dir)} == {
        (p, e): a for p, by_epoch in answers.items() for e, a in by_epoch.items()}


class Greedy(EchoReader):
    """No set_seed: its answers do not depend on a seed (its own cache entries: the session's
    call cache is shared with other tests of EchoReader)."""

    def identity(self) -> dict[str, object]:
        return {"reader": "echo-greedy-epochs"}


def test_a_greedy_reader_s_epochs_share_the_call_cache(tmp_path: Path) -> None:
    reader = Greedy()
    result = memeval.run(PETS, backends=["oracle"], reader=reader, out=tmp_path / "r",
                         control=False, report=False, epochs=2)
    done = read_records(result.run_dir)
    assert not any(r.cached for r in done if r.epoch == 0)
    later = [r for r in done if r.epoch == 1 and r.error is None]
    assert later and all(r.cached for r in later)


def test_the_service_keys_a_sampling_reader_s_calls_by_seed() -> None:
    class Cache:
        def __init__(self) -> None:
            self.store: dict[str, Answer] = {}

        def get(self, key: str) -> Answer | None:
            return self.store.get(key)

        def put(self, key: str, answer: Answer) -> None:
            self.store[key] = answer

    cache = Cache()
    reader = Sampler()
    answers = []
    for seed in (1, 2, 1):
        reader.set_seed(seed)
        (outcome,) = ReaderService(reader, cache, seed=seed).answer_many([("q?", "ctx")])
        answers.append((outcome.answer.text if outcome.answer else None, outcome.cached))
    assert len(cache.store) == 2 and reader.calls == 2  # a key per seed; seed 1 hit again
    assert answers[0] == (answers[2][0], False) and answers[2][1] and answers[1][0] != answers[0][0]
    # without a seed (a greedy reader) the calls of every epoch share one key
    for _ in range(2):
        ReaderService(reader, cache).answer_many([("q?", "ctx")])
    assert len(cache.store) == 3 and reader.calls == 3
