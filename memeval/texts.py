"""Long recalled texts stored once: content-addressed blocks beside the records.

A backend that keeps everything recalls nearly the same history at every probe;
written into every record, that history grows the records with the square of the
run (a 300k-token run under a 1M-token reader wrote 365 MB). Here a long text is
cut into blocks at line boundaries chosen by the lines' own content, so the history
two probes share is the same blocks even when one of them has dropped its oldest
turns. Each block is stored once in `texts.jsonl`, keyed by its hash, and a record
lists the ids of its blocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

from memeval.errors import MemevalError

TEXTS = "texts.jsonl"
#: Texts shorter than this stay in the record: a list of block ids would save nothing.
INLINE_CHARS = 1024
_BOUNDARY = 31  # a line whose CRC has these low bits zero ends a block: ~32 lines a block
_MAX_BLOCK = 64 * 1024


def split_blocks(text: str) -> list[str]:
    """`text` cut after lines chosen by their content; joined again they are `text`."""
    blocks: list[str] = []
    start = size = 0
    at = 0
    while at < len(text):
        end = text.find("\n", at)
        end = len(text) if end < 0 else end + 1
        line = text[at:end]
        size += len(line)
        at = end
        if zlib.crc32(line.encode()) & _BOUNDARY == 0 or size >= _MAX_BLOCK or at == len(text):
            blocks.append(text[start:at])
            start, size = at, 0
    return blocks


def block_id(block: str) -> str:
    return hashlib.blake2b(block.encode(), digest_size=12).hexdigest()


def read_blocks(run_dir: Path, repair: bool = False) -> dict[str, str]:
    """The blocks stored in `run_dir`; a torn last line (a killed writer) is dropped, or cut off
    with `repair` (no record refers to it: records are written after their blocks are synced)."""
    path = Path(run_dir) / TEXTS
    if not path.exists():
        return {}
    raw = path.read_bytes()
    blocks: dict[str, str] = {}
    good_end = 0
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        if not line.endswith(b"\n"):
            break
        try:
            entry = json.loads(line)
            blocks[entry["id"]] = entry["text"]
        except (ValueError, KeyError, TypeError):
            raise MemevalError(f"{path}:{number}: not a text block; the file was edited by hand "
                               "or is from another tool") from None
        good_end += len(line)
    if repair and good_end != len(raw):
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return blocks


def join_blocks(ids: list[str], blocks: dict[str, str], where: str) -> str:
    """The text the block `ids` make, from `blocks` (as `read_blocks` gives them)."""
    try:
        return "".join(blocks[i] for i in ids)
    except KeyError as exc:
        raise MemevalError(f"{where}: refers to text block {exc.args[0]}, which {TEXTS} lacks; "
                           f"copy {TEXTS} along with records.jsonl") from None


class BlockWriter:
    """Appends the blocks not yet stored; `sync()` makes them durable."""

    def __init__(self, run_dir: Path):
        self._known = set(read_blocks(run_dir, repair=True))
        self._fh = (Path(run_dir) / TEXTS).open("ab")
        self._pending: list[str] = []

    def put(self, text: str) -> list[str]:
        """Store `text` (its new blocks once synced) and return its block ids."""
        ids = []
        for block in split_blocks(text):
            bid = block_id(block)
            if bid not in self._known:
                self._known.add(bid)
                self._pending.append(json.dumps({"id": bid, "text": block}, ensure_ascii=False))
            ids.append(bid)
        return ids

    def sync(self) -> None:
        if self._pending:
            self._fh.write("".join(line + "\n" for line in self._pending).encode())
            self._pending = []
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self.sync()
        self._fh.close()
