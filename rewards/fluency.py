"""r_f: fluency, exp(−mean token NLL) of R̂ under a frozen reference LM (paper §5.5, Eq. 2).

The paper writes p_LM(R̂)^(1/N) with N the number of *words*; an LM scores BPE tokens, so dividing
the token log-likelihood by a word count mixes units and rewards tokenisation quirks. We normalise
by the number of scored **tokens**: r_f = exp((1/T)·Σ_t log p(x_t | x_<t)) ∈ (0, 1], the inverse
token perplexity. The text is scored after the LM's document-start token (so its first token is
scored too), cut to ``max_tokens``; padding never enters the score; an empty text is scored as the
end-of-text token alone (p of saying nothing, which is small). The authors' code added *positive*
perplexity with weight 0.001 (a sign bug) and counted padding; neither happens here.
"""

from __future__ import annotations

import math

from classifiers.reverse import encode_unconditional

from .cache import LRUCache
from .edit import check_batch


class FluencyReward:
    name = "fluency"

    def __init__(self, lm, max_tokens: int = 128, batch_size: int = 16, cache_size: int = 20_000):
        """``lm``: a rewards.lm.FrozenLM (the reference LM; its reverse adapter, if any, is switched off)."""
        self.lm = lm
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.cache = LRUCache(cache_size)

    def _compute(self, texts):
        tok = self.lm.tok
        enc = [encode_unconditional(tok, t, self.max_tokens) for t in texts]
        scores = self.lm.target_logprobs(enc, adapter=False, batch_size=self.batch_size)
        return [math.exp(s / n) for s, n in scores]

    def scores(self, texts: list[str]) -> list[float]:
        return self.cache.get_many(list(texts), self._compute)

    def __call__(self, seekers, originals, rewrites, edits=None) -> list[float]:
        check_batch(seekers, originals, rewrites, edits)
        return self.scores(rewrites)
