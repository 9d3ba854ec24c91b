"""Sentence-level edits: the PARTNER action space (paper §5.2–5.3) and clean text after an edit.

A response is a list of sentences (``core.text.split_sentences``). The state is the seeker
post and a *window* of k contiguous sentences starting at sentence j. The position action has
2k + 2 classes, in this order::

    0 .. k          insert a sentence into slot s (slot 0 before the window's first sentence,
                    slot s after its s-th sentence)
    k+1 .. 2k       replace window sentence s (s = class - k - 1)
    2k+1            stop: no edit in this window

Deletion is replacement by the empty sentence. A window shorter than k (the end of a response,
or an empty response, whose single window holds no sentences) makes some classes meaningless:
``valid_classes`` says which, and the policy masks the others out, so they are never sampled.

Text hygiene (the original code re-joined with ``'. '.join`` and doubled punctuation, §6.10):
candidates are stripped of generation artefacts, get a final period if they have no sentence
terminator, lose repeated punctuation (".." -> ".", "?." -> "?"; an ellipsis stays), and the
sentence before an inserted one gets a period if it had no terminator, so the rewritten text
never reads "Hi I'm sorry." for "Hi" + "I'm sorry.".

The rewritten *text* (``render``) is the original response with the edits applied in place: every
sentence no edit touched keeps its bytes, and so do the separators between them (paragraph and
list newlines, double spaces). A new sentence follows the one before it after a space; the only
other change is a period after a sentence that ends in a letter or digit when an edited sentence
follows on the same line. The sentence lists above (the policy's state) are joined with spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence

from core.text import join_sentences, split_sentences
from rewards.edit import EditInfo

INSERT, REPLACE, STOP = "insert", "replace", "stop"

_TERMINATOR = re.compile(r"[.!?…][\"'’”)\]]*$")
_TRAILING_EMOJI_OR_SMILEY = re.compile(r"(?:[:;]-?[)(DPp]|[\U0001F300-\U0001FAFF\u2600-\u27BF])$")


@dataclass
class Edit:
    """One edit of a response.

    ``position`` is the sentence index in the full response (before the edit) at which the
    sentence is inserted, or which sentence is replaced; for stop it is the window start.
    ``sentence`` is the cleaned candidate ("" for stop and for a deletion).
    """

    action: str
    position: int
    sentence: str
    position_class: int = -1
    window_start: int = 0
    replaced: str | None = None  # the sentence a replacement removed

    def to_json(self) -> dict:
        return {"action": self.action, "position": self.position, "sentence": self.sentence,
                "position_class": self.position_class, "window_start": self.window_start,
                "replaced": self.replaced}


def num_classes(k: int) -> int:
    return 2 * k + 2


def position_classes(k: int) -> list[tuple[str, int | None]]:
    """The 2k+2 position classes as (action, slot): k+1 inserts, k replaces, stop."""
    return [(INSERT, s) for s in range(k + 1)] + [(REPLACE, s) for s in range(k)] + [(STOP, None)]


def stop_class(k: int) -> int:
    return 2 * k + 1


def insert_class(slot: int, k: int) -> int:
    if not 0 <= slot <= k:
        raise ValueError(f"insert slot {slot} outside 0..{k}")
    return slot


def replace_class(slot: int, k: int) -> int:
    if not 0 <= slot < k:
        raise ValueError(f"replace slot {slot} outside 0..{k - 1}")
    return k + 1 + slot


def decode_class(position_class: int, k: int) -> tuple[str, int | None]:
    if not 0 <= position_class < num_classes(k):
        raise ValueError(f"position class {position_class} outside 0..{num_classes(k) - 1} (k={k})")
    return position_classes(k)[position_class]


def valid_classes(window_len: int, k: int) -> list[bool]:
    """Which classes make sense for a window of ``window_len`` (≤ k) sentences."""
    n = min(window_len, k)
    return [slot <= n if action == INSERT else slot < n if action == REPLACE else True
            for action, slot in position_classes(k)]


def window_of(sentences: list[str], start: int, k: int) -> list[str]:
    return list(sentences[start:start + k])


def window_starts(n_sentences: int, k: int) -> list[int]:
    """Starts j = 0, k, 2k, ... covering the response; an empty response has one empty window."""
    return list(range(0, max(n_sentences, 1), k))


def has_terminator(sentence: str) -> bool:
    s = sentence.rstrip()
    return bool(_TERMINATOR.search(s) or _TRAILING_EMOJI_OR_SMILEY.search(s))


def clean_sentence(text: str) -> str:
    """Normalise a generated candidate: one line, single spaces, no doubled punctuation, a terminator.

    Returns "" when nothing word-like is left (a deletion).
    """
    s = " ".join((text or "").split())
    s = re.sub(r"^[\s.,;:!?\-–—]+", "", s)  # stray leading punctuation from generation
    if not re.search(r"\w", s):
        return ""
    s = re.sub(r"(?<!\.)\.\.(?!\.)", ".", s)   # "..": doubled period (an ellipsis "..." stays)
    s = re.sub(r"([!?])\.+", r"\1", s)          # "?." / "!."
    s = re.sub(r",\s*([.!?])", r"\1", s)        # ",." at the end of a clause
    s = re.sub(r"\s+([.,!?;:])(?=\s|$)", r"\1", s)  # "sorry ." -> "sorry." (not the smiley "Hugs :)")
    s = re.sub(r"([,;:])\1+", r"\1", s)
    s = s.rstrip(" ,;:-–—")
    if not has_terminator(s):
        s += "."
    return s


def _close(sentence: str) -> str:
    """A sentence followed by another one needs a terminator."""
    s = sentence.rstrip()
    if not s or has_terminator(s):
        return s
    return s.rstrip(",;:-–— ") + "."


def replay_edit(sentences: list[str], action: str, position: int, sentence: str) -> int | None:
    """Apply one edit to a response's sentences, in place: the one replay rule of the toolkit.

    ``insert`` puts ``sentence`` in at ``position`` (clamped to the response; an empty one changes
    nothing); ``replace`` makes sentence ``position`` ``sentence``, and "" deletes it (paper §5.3);
    a replacement outside the response changes nothing. Returns the index of the written sentence,
    or None when none was written (a deletion, a no-op).
    """
    if action == INSERT:
        if not sentence:
            return None
        position = max(0, min(position, len(sentences)))
        sentences.insert(position, sentence)
        return position
    if action == REPLACE and 0 <= position < len(sentences):
        if sentence:
            sentences[position] = sentence
            return position
        del sentences[position]
    return None


def apply_edit(sentences: list[str], window_start: int, k: int, position_class: int,
               sentence: str) -> tuple[list[str], Edit]:
    """Apply one policy action to a response given as sentences; returns (new sentences, Edit).

    The input list is not modified. Raises ValueError for a class that is not valid for the
    window (e.g. replacing the second sentence of a one-sentence window).
    """
    window = window_of(sentences, window_start, k)
    if not valid_classes(len(window), k)[position_class]:
        raise ValueError(f"position class {position_class} is not valid for a window of {len(window)} "
                         f"sentence(s) (k={k})")
    action, slot = decode_class(position_class, k)
    out = list(sentences)
    if action == STOP:
        return out, Edit(STOP, window_start, "", position_class, window_start)
    cand = clean_sentence(sentence)
    at = window_start + slot
    replaced = out[at] if action == REPLACE else None
    if cand and at > 0:
        out[at - 1] = _close(out[at - 1])
    replay_edit(out, action, at, cand)
    return out, Edit(action, at, cand, position_class, window_start, replaced=replaced)


def apply_edits(response: str, edits: Sequence[dict]) -> str:
    """The response after a partner-rewrite ``edits`` list (``{"action", "position", "sentence"}``,
    each position in the response as it stood before that edit), made in place: the text outside the
    edited sentences is kept byte for byte (``render``)."""
    return render(response, [{**e, "sentence": (e.get("sentence") or "").strip()} for e in edits])


def other_sentences(sentences: list[str], replaced: int | None = None) -> list[str]:
    """The sentences a new one goes in beside: all of them, less the one it replaces (if any)."""
    return [s for i, s in enumerate(sentences) if i != replaced]


def written_sentences(response: str, edits: Sequence[dict]) -> Iterator[tuple[str, list[str]]]:
    """(sentence, the response's other sentences when it was written) for every written sentence of
    a partner-rewrite ``edits`` list, replaying the edits in order."""
    sents = split_sentences(response)
    for e in edits:
        sentence = (e.get("sentence") or "").strip()
        if sentence:
            yield sentence, other_sentences(sents, int(e["position"]) if e["action"] == REPLACE else None)
        replay_edit(sents, e["action"], int(e["position"]), sentence)


def _spans(text: str, sentences: list[str]) -> list[tuple[int, int]] | None:
    """Where each of ``split_sentences(text)`` lies in ``text`` (it normalises whitespace inside a
    sentence, so match word by word); None if they cannot all be found in order."""
    spans, at = [], 0
    for sent in sentences:
        pattern = r"\s*".join(re.escape(tok) for tok in sent.split())
        m = re.compile(r"\s*(" + pattern + ")").match(text, at)
        if m is None:
            return None
        spans.append(m.span(1))
        at = m.end(1)
    return spans


def _field(edit, name: str):
    return edit[name] if isinstance(edit, dict) else getattr(edit, name)


def render(original: str, edits: list) -> str:
    """The original response with ``edits`` (``Edit`` objects or ``{"action", "position",
    "sentence"}`` dicts, positions as in ``apply_edit``, in the order applied) made in place; see the
    module doc for what is kept byte for byte."""
    sentences = split_sentences(original)
    spans = _spans(original, sentences)
    if spans is None:  # cannot happen for split_sentences' own output; fall back to the plain join
        out = list(sentences)
        for e in edits:
            replay_edit(out, _field(e, "action"), int(_field(e, "position")), _field(e, "sentence") or "")
        return join(out)
    # items: [text, the original sentence index it occupies (None for an inserted sentence), edited]
    items: list[list] = [[original[a:b], i, False] for i, (a, b) in enumerate(spans)]
    for e in edits:
        action, pos, sent = _field(e, "action"), int(_field(e, "position")), _field(e, "sentence") or ""
        occupied = items[pos][1] if action == REPLACE and 0 <= pos < len(items) else None
        replay_edit(items, action, pos, [sent, occupied, True] if sent else None)
    if not spans or not items:
        return join([t for t, _, _ in items])

    def gap(j: int) -> str:  # the original text between sentence j-1 and sentence j
        return original[spans[j - 1][1]:spans[j][0]]

    pieces: list[str] = []
    last = -1  # the original index of the last occupied item so far
    for text, occ, edited in items:
        if pieces:
            if occ is None:
                sep = " "
            else:
                # the separators the item now spans (after deletions): keep the one that breaks most
                seps = [gap(j) for j in range(max(last + 1, 1), occ + 1)] or [" "]
                sep = max(reversed(seps), key=lambda g: g.count("\n")) if occ > last + 1 else seps[-1]
            if edited and "\n" not in sep and re.search(r"\w$", pieces[-1]) and not has_terminator(pieces[-1]):
                pieces[-1] += "."
            pieces.append(sep)
        pieces.append(text)
        if occ is not None:
            last = occ
    lead, tail = original[:spans[0][0]], original[spans[-1][1]:]
    return lead + "".join(pieces) + tail


def join(sentences: list[str]) -> str:
    return join_sentences(sentences)


def to_edit_info(window: list[str], edit: Edit):
    """The reward engineer's ``rewards.edit.EditInfo`` for one edit made on ``window``.

    ``window`` is the window's sentences before the edit. ``replaced`` is the index of the
    replaced sentence in the window (None for insert and stop).
    """
    replaced = edit.position - edit.window_start if edit.action == REPLACE else None
    return EditInfo(candidate=edit.sentence, window=list(window), replaced=replaced, action=edit.action)
