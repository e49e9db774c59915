"""A model-free reader: answers with the recalled line that best matches the question.

Deterministic and instant. Use it to test a backend's plumbing or to get a
quick answer-level signal without a model; it is not a language model.
"""

from __future__ import annotations

import re

from memeval.protocols import Answer, Reader, Usage

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "am", "do", "does", "did", "i",
    "my", "me", "you", "your", "we", "our", "to", "of", "in", "on", "at", "for", "and", "or",
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "it", "its", "this",
    "that", "with", "from", "about", "now", "tell", "please", "can", "could", "would", "should",
    "have", "has", "had",
})
_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)?(user|assistant):\s*")


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


class ExtractiveReader(Reader):
    """Returns the recalled line sharing most words with the question, or "I don't know."."""

    context_tokens = 1_000_000

    def answer(self, question: str, context: str) -> Answer:
        asked = _words(question)
        best, best_overlap = "", 0
        for line in context.splitlines():
            overlap = len(asked & _words(line))
            # ">=" so that on a tie the most recent line wins: updates come later
            if overlap and overlap >= best_overlap:
                best, best_overlap = line, overlap
        text = _PREFIX.sub("", best).strip() if best else "I don't know."
        return Answer(text=text, usage=Usage(input_tokens=self.count_tokens(context + question),
                                             output_tokens=self.count_tokens(text)))

    def identity(self) -> dict[str, object]:
        return {"reader": "extractive", "version": 1}
