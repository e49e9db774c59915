"""Readers shipped with memeval."""

from __future__ import annotations

import hashlib

FEW_SHOT = """Answer the question in a few words, using only the notes.
If the notes do not say, answer "I don't know".

Notes:
[2024-01-03 10:00]
user: My sister Odalie just started her job at the Vantor bakery.
Question: Where does my sister work?
Answer: At the Vantor bakery.

Notes:
[2024-02-11 18:30]
user: We finally repainted the hallway a deep teal.
Question: What is my brother's name?
Answer: I don't know.

Notes:
[2024-03-02 09:00]
user: My gym locker is number 12.
[2024-04-20 17:45]
user: They moved me to locker 31 today.
Question: What is my locker number now?
Answer: 31.

Notes:
(none)
Question: What is my favourite colour?
Answer: I don't know.

"""


#: Changes whenever the prompt does, so cached answers to an old prompt are not reused.
PROMPT_ID = hashlib.sha256(FEW_SHOT.encode()).hexdigest()[:12]


def build_prompt(question: str, context: str) -> str:
    """The few-shot prompt for base models: one line of answer after `Answer:`."""
    notes = context.strip() or "(none)"
    return f"{FEW_SHOT}Notes:\n{notes}\nQuestion: {question.strip()}\nAnswer:"


def first_line(text: str) -> str:
    """A base model's answer: what it wrote before the first newline."""
    return text.strip().split("\n", 1)[0].strip()


#: Where a base model that keeps writing after its answer starts another few-shot block.
_NEXT_BLOCK = ("Notes:", "Question:", "Answer:")


def answer_lines(text: str, lines: int = 1) -> str:
    """A base model's answer of up to `lines` lines: it ends early at a blank line or where
    the model starts another few-shot block."""
    if lines <= 1:
        return first_line(text)
    kept: list[str] = []
    for line in text.strip().split("\n"):
        line = line.strip()
        if not line or line.startswith(_NEXT_BLOCK) or len(kept) == lines:
            break
        kept.append(line)
    return "\n".join(kept)


def answer_ended(text: str, lines: int = 1) -> bool:
    """Whether a base model's text so far holds a whole answer of up to `lines` lines."""
    if lines <= 1:
        return "\n" in text
    body = text.lstrip()
    return (body.count("\n") >= lines or "\n\n" in body
            or any(f"\n{start}" in body for start in _NEXT_BLOCK))
