"""Readers shipped with memeval."""

from __future__ import annotations

import hashlib

# Chosen on the bundled library with the oracle's notes (the reader's own ceiling): one
# example per probe kind, copying names and codes whole, dates from the note's stamp. The
# old prompt's two "I don't know" examples taught refusal (0.45 of answerable probes right,
# against 0.71 now). This one shows no refusal (its first line still asks for one), so
# abstention probes and the no-memory control guess more often.
FEW_SHOT = """Answer the question in a few words, using only the notes. Each note starts with its date.
If the notes do not say, answer "I don't know".

Notes:
[2023-01-03 10:00]
user: My sister Ada just started her job at the post office.
Question: Where does my sister work?
Answer: At the post office.

Notes:
[2023-03-02 09:00]
user: My gym locker is number 12.
[2023-04-20 17:45]
user: They moved me to locker 31 today.
Question: What is my locker number now?
Answer: 31.

Notes:
[2023-05-14 08:00]
user: Swam 2 km this morning.
[2023-05-16 07:30]
user: Another swim today, 3 km.
Question: How many kilometres did I swim in total?
Answer: 2 + 3 = 5 km.

Notes:
[2023-06-09 19:00]
user: I can't stand spicy food, mild dishes only for me.
Question: Which sauce should I order with my fries?
Answer: A mild sauce, since you avoid spicy food.

Notes:
[2023-07-21 16:00]
user: Just got to Brellin, the station was packed.
Question: On which date did I arrive in Brellin? Answer as YYYY-MM-DD.
Answer: 2023-07-21.

Notes:
[2023-08-02 12:00]
user: My aunt Roswyn is coming over on Sunday.
[2023-08-05 20:15]
user: Roswyn told us all about her pottery studio, she teaches there.
Question: What does my aunt do for a living?
Answer: She teaches at a pottery studio.

Notes:
[2023-09-10 11:00]
user: Our new neighbour, Tomasz Wrenfield, brought over a cake.
Question: Who is my new neighbour?
Answer: Tomasz Wrenfield.

Notes:
[2023-10-01 14:00]
user: Renewed my library card, the number is LB-40917.
Question: What is my library card number?
Answer: LB-40917.

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


def stop_strings(lines: int = 1) -> list[str]:
    """Where a server or `generate` should stop a base model's answer of up to `lines` lines
    (`answer_lines` then cuts the rest)."""
    return ["\n"] if lines <= 1 else ["\n\n", *(f"\n{start}" for start in _NEXT_BLOCK)]


def answer_ended(text: str, lines: int = 1) -> bool:
    """Whether a base model's text so far holds a whole answer of up to `lines` lines."""
    if lines <= 1:
        return "\n" in text
    body = text.lstrip()
    return (body.count("\n") >= lines or "\n\n" in body
            or any(f"\n{start}" in body for start in _NEXT_BLOCK))
