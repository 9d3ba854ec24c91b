"""Rewrite-time guards: generated sentences that must never reach a seeker.

Three failure kinds, all seen in the shipped agents' test-split rewrites (see the PARTNER model card):

- **seeker copy**: the sentence repeats the seeker's own words as the supporter's ("I'm planning on
  killing myself and ..."). The empathy classifier scores such first-person emotional statements as
  emotional reactions, so the reward stack does not punish them; the warm start learnt it and RL
  only reduced it. Measured by the share of the sentence's word trigrams that also occur in the
  seeker post.
- **response copy**: the sentence repeats another sentence of the response it is written into
  (inserting "I feel the same way." in front of "I feel the same way. I'm angry ...", or its own
  "I'm sorry to hear that." a second time): 25 % of the raw 50-step agent's written sentences on
  the test split. It adds nothing; the classifier may still score it. Measured by the share of the sentence's word trigrams that occur in the response's
  other sentences (a replaced sentence does not count: rewording it is an edit, not a copy).
- **degenerate repetition**: greedy decoding loops ("I'm sorry, I'm sorry, I'm sorry, ..."). Measured
  by the share of the sentence's word trigrams that repeat an earlier trigram of the same sentence.

A sentence at or over a threshold is rejected and the step becomes *stop* (the response is left as it
was in that window). Tokens are lower-cased words (punctuation dropped), so "I'm sorry, I'm sorry" is
a repetition. Sentences shorter than three words have no trigrams and always pass.

The guards act on rewriting only (``partner-rewrite``, ``rewrite.max_seeker_copy``,
``rewrite.max_response_copy`` and ``rewrite.max_repetition``; 0 switches one off); RL training sees
the raw policy, so the logged rewards are the agent's own. ``partner-eval rewrites`` reports the same
three shares for any output.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from partner.metrics import ngrams

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _trigrams(text: str) -> list[tuple[str, ...]]:
    return ngrams(words(text), 3)


def seeker_copy(sentence: str, seeker: str) -> float:
    """Share of the sentence's word trigrams that occur in ``seeker`` (0.0 under three words); also the
    response-copy share, with the response's other sentences as ``seeker``."""
    grams = _trigrams(sentence)
    if not grams:
        return 0.0
    theirs = set(_trigrams(seeker))
    return sum(g in theirs for g in grams) / len(grams)


def self_repetition(sentence: str) -> float:
    """Share of the sentence's word trigrams that repeat an earlier one (0.0 under three words)."""
    grams = _trigrams(sentence)
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


@dataclass
class SentenceGuard:
    """Rejects a generated sentence that copies the seeker or repeats itself; counts what it rejected."""

    max_seeker_copy: float = 0.5   # reject at >= this share of trigrams from the seeker post; 0 = off
    max_repetition: float = 0.3    # reject at >= this share of repeated trigrams; 0 = off
    max_response_copy: float = 0.5  # reject at >= this share of trigrams from the response's other sentences
    rejected: Counter = field(default_factory=Counter)

    def copies(self, seeker: str, sentence: str) -> bool:
        return bool(self.max_seeker_copy) and seeker_copy(sentence, seeker) >= self.max_seeker_copy

    def duplicates(self, others: list[str], sentence: str) -> bool:
        """Does the sentence repeat the response's other sentences (``others``)?"""
        return (bool(self.max_response_copy) and bool(others)
                and seeker_copy(sentence, " ".join(others)) >= self.max_response_copy)

    def repeats(self, sentence: str) -> bool:
        return bool(self.max_repetition) and self_repetition(sentence) >= self.max_repetition

    def check(self, seeker: str, sentence: str, others: list[str] | None = None) -> str | None:
        """None if the sentence may be used, else the reason ("seeker_copy", "response_copy" or
        "repetition"). ``others``: the sentences of the response it goes into, a replaced one left out."""
        if self.copies(seeker, sentence):
            reason = "seeker_copy"
        elif others and self.duplicates(others, sentence):
            reason = "response_copy"
        elif self.repeats(sentence):
            reason = "repetition"
        else:
            return None
        self.rejected[reason] += 1
        return reason

    @property
    def active(self) -> bool:
        return bool(self.max_seeker_copy or self.max_repetition or self.max_response_copy)

    @classmethod
    def from_config(cls, rewrite_cfg) -> "SentenceGuard":
        return cls(float(rewrite_cfg.max_seeker_copy), float(rewrite_cfg.max_repetition),
                   float(rewrite_cfg.max_response_copy))


def other_sentences(sentences: list[str], replaced: int | None = None) -> list[str]:
    """The sentences a new one goes in beside: all of them, less the one it replaces (if any)."""
    return [s for i, s in enumerate(sentences) if i != replaced]


def replay(response: str, edits: list[dict]):
    """(sentence, the response's other sentences when it was written) for every written sentence of a
    partner-rewrite ``edits`` list, replaying the edits in order (``partner.rewriters.apply_edit``)."""
    from classifiers.text import split_sentences
    from partner.rewriters import apply_edit

    sents = split_sentences(response)
    for e in edits:
        if e.get("sentence"):
            yield e["sentence"], other_sentences(sents, int(e["position"]) if e["action"] == "replace" else None)
        apply_edit(sents, e)
