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
