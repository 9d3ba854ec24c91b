"""Guessed tokens for speculative greedy decoding, taken from the sentences the policy already wrote.

A trained PARTNER agent writes few distinct sentences ("I'm sorry to hear that you're feeling this
way." and a handful of variants make up most of its greedy edits), so the tokens it wrote after the
same few tokens before are a good guess of what it writes next. ``act`` feeds such a guess after
the token it has just chosen, runs them all in one pass, keeps the guessed tokens up to the first
one the model would not have chosen greedily, and adds the model's own next token: the sentence is
the one plain greedy decoding writes (up to float rounding: several tokens per pass are different
matrix shapes), in fewer passes. A pass of a few tokens per row costs much less than that many
passes of one (the weights are read once per pass), which is what makes a right guess pay.

The table starts empty and learns online, so the first batch of a job runs as plain greedy
decoding and later batches guess from it; it is bounded and kept only in memory.
"""

from __future__ import annotations

from collections import Counter


class NgramGuesses:
    """Next-token counts after each context of ``min_context``..``context`` tokens."""

    def __init__(self, context: int = 3, min_context: int = 2, max_contexts: int = 200_000):
        if not 1 <= min_context <= context:
            raise ValueError(f"need 1 <= min_context <= context, not {min_context} and {context}")
        self.context = context
        self.min_context = min_context
        self.max_contexts = max_contexts
        self._next: dict[tuple[int, ...], Counter] = {}

    def __len__(self) -> int:
        return len(self._next)

    def add(self, ids: list[int]) -> None:
        """Learn one written sequence (a sentence with the end of the prompt before it)."""
        if len(self._next) > self.max_contexts:  # a long job's table: start again rather than grow
            self._next.clear()
        for i in range(self.min_context, len(ids)):
            for n in range(self.min_context, min(self.context, i) + 1):
                self._next.setdefault(tuple(ids[i - n:i]), Counter())[ids[i]] += 1

    def _guess(self, ctx: list[int]) -> int | None:
        for n in range(min(self.context, len(ctx)), self.min_context - 1, -1):
            counts = self._next.get(tuple(ctx[-n:]))
            if counts:
                return counts.most_common(1)[0][0]
        return None

    def guess(self, context: list[int], k: int) -> list[int]:
        """Up to ``k`` guessed tokens to follow ``context``, each guess extending it."""
        ctx = list(context[-self.context:])
        out: list[int] = []
        while len(out) < k:
            nxt = self._guess(ctx)
            if nxt is None:
                break
            out.append(nxt)
            ctx = (ctx + [nxt])[-self.context:]
        return out
