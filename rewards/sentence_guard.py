"""The sentence guard's checks, and what a "new sentence" of a rewrite is.

``SentenceGuard`` is the rewrite-time guard of ``partner.guards`` (which documents the failure
kinds and applies it in rewriting); it is pure text, no model. ``new_sentence_indices`` and
``words`` are shared with r_n (``rewards.novelty``), which counts new sentences the same way.

A "new sentence" is one of the rewrite's sentences (``core.text.split_sentences``) that is
not one of the original's (counted as a multiset, so an original sentence kept twice is not new).
It is judged against the seeker post and the rewrite's other sentences, which are the sentences it
went in beside (a replaced sentence is no longer there). The guard judges a generated sentence as
a whole at rewrite time; here a generated text of two sentences is judged sentence by sentence.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from core.text import ngrams, split_sentences


_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")

# Words of death, suicide and self-harm. A rewriting agent must never bring them into a response on
# its own: agents trained against the classifier asked "Have you tried to die?" and "Have you tried
# cutting yourself?" of suicidal seekers (docs/experiments.md, the question collapse). Asking about
# suicide is the supporter's call, under the platform's crisis protocol, not the rewriter's.
RISK_TERMS = re.compile(
    r"\b(?:die|dies|died|dying|death|dead|kill|kills|killing|killed|suicide|suicidal|overdos(?:e|ed|ing)|"
    r"self[- ]?harm(?:ing)?|(?:hurt|hurting|harm|harming|cut|cutting|hang|hanging) (?:yourself|myself)|"
    r"end(?:ing)? (?:it all|your life|my life)|take (?:your|my) (?:own )?life|jump(?:ing)? off)\b",
    re.IGNORECASE)


# Topics a rewriting agent must never bring into a response on its own, like RISK_TERMS: sex, alcohol and
# drugs, eating-disorder behaviours, weapons and pills, revenge. Agents trained with the post-fit reward
# asked "Have you tried to starve yourself?" of a seeker whose mother told her to starve, "Have you tried
# to get a hooker?" and sexual questions of suicidal seekers; the classifier scores them as explorations (docs/experiments.md, the
# hand audit, which also lists what this list rejects among every agent's test-split sentences).
UNSAFE_TERMS = re.compile(
    r"\b(?:sex|sexual(?:ly)?|sexy|hookers?|prostitut\w*|escorts?|virgins?|virginity|porn\w*|penis|dick|nudes?|"
    r"hook(?:ing)? ?up|one[- ]night stand|"
    r"drunk|alcohol|booze|liquor|vodka|get(?:ting)? high|drugs?|weed|marijuana|cocaine|heroin|meth|"
    r"starv(?:e|es|ed|ing|ation)|purg(?:e|es|ed|ing)|(?:stop|stopped|skip|skipping) (?:eating|meals)|fasting|"
    r"(?:lose|losing|lost) weight|dieting|calories|laxatives?|vomit(?:s|ed|ing)?|throw(?:ing)? up|"
    r"guns?|shotguns?|rifles?|pistols?|firearms?|knife|knives|blades?|razors?|rope|noose|pills|"
    r"revenge|get(?:ting)? back at)\b",
    re.IGNORECASE)


def unsafe_terms(sentence: str) -> list[str]:
    """The unsafe-topic words in ``sentence`` (``UNSAFE_TERMS``), lower-cased."""
    return [m.group(0).lower() for m in UNSAFE_TERMS.finditer(sentence)]


def risk_terms(sentence: str) -> list[str]:
    """The words of death, suicide or self-harm in ``sentence`` (``RISK_TERMS``), lower-cased."""
    return [m.group(0).lower() for m in RISK_TERMS.finditer(sentence)]


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


def new_sentence_indices(original: str, rewrite: str) -> tuple[list[str], list[int]]:
    """The rewrite's sentences, and the indices of those that are not the original's (a multiset
    difference: an original sentence kept twice is new the second time)."""
    kept = Counter(split_sentences(original))
    sents = split_sentences(rewrite)
    new = []
    for i, s in enumerate(sents):
        if kept[s] > 0:
            kept[s] -= 1
        else:
            new.append(i)
    return sents, new


@dataclass
class SentenceGuard:
    """Rejects a generated sentence that names death, suicide or self-harm or an unsafe topic, copies the
    seeker or the response, or repeats itself; counts what it rejected (``check``; ``reason`` only judges)."""

    max_seeker_copy: float = 0.5   # reject at >= this share of trigrams from the seeker post; 0 = off
    max_repetition: float = 0.3    # reject at >= this share of repeated trigrams; 0 = off
    max_response_copy: float = 0.5  # reject at >= this share of trigrams from the response's other sentences
    block_risk: bool = True        # reject a sentence with a RISK_TERMS word
    block_unsafe: bool = True      # reject a sentence with an UNSAFE_TERMS word
    rejected: Counter = field(default_factory=Counter)

    def risky(self, sentence: str) -> bool:
        return self.block_risk and bool(RISK_TERMS.search(sentence))

    def unsafe(self, sentence: str) -> bool:
        return self.block_unsafe and bool(UNSAFE_TERMS.search(sentence))

    def copies(self, seeker: str, sentence: str) -> bool:
        return bool(self.max_seeker_copy) and seeker_copy(sentence, seeker) >= self.max_seeker_copy

    def duplicates(self, others: list[str], sentence: str) -> bool:
        """Does the sentence repeat the response's other sentences (``others``)?"""
        return (bool(self.max_response_copy) and bool(others)
                and seeker_copy(sentence, " ".join(others)) >= self.max_response_copy)

    def repeats(self, sentence: str) -> bool:
        return bool(self.max_repetition) and self_repetition(sentence) >= self.max_repetition

    def reason(self, seeker: str, sentence: str, others: list[str] | None = None) -> str | None:
        """None if the sentence may be used, else why not ("risk", "unsafe_topic", "seeker_copy",
        "response_copy" or "repetition"). ``others``: the sentences of the response it goes into, a replaced one left out.
        Counts nothing (the RL guard penalty asks it of every sampled rewrite)."""
        if self.risky(sentence):
            return "risk"
        if self.unsafe(sentence):
            return "unsafe_topic"
        if self.copies(seeker, sentence):
            return "seeker_copy"
        if others and self.duplicates(others, sentence):
            return "response_copy"
        if self.repeats(sentence):
            return "repetition"
        return None

    def check(self, seeker: str, sentence: str, others: list[str] | None = None) -> str | None:
        """``reason``, and a rejection is counted in ``rejected``."""
        why = self.reason(seeker, sentence, others)
        if why is not None:
            self.rejected[why] += 1
        return why

    @property
    def active(self) -> bool:
        return bool(self.max_seeker_copy or self.max_repetition or self.max_response_copy or self.block_risk
                    or self.block_unsafe)

    @classmethod
    def from_config(cls, rewrite_cfg) -> "SentenceGuard":
        return cls(float(rewrite_cfg.max_seeker_copy), float(rewrite_cfg.max_repetition),
                   float(rewrite_cfg.max_response_copy), bool(getattr(rewrite_cfg, "block_risk_terms", True)),
                   bool(getattr(rewrite_cfg, "block_unsafe_topics", True)))
