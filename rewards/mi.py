"""r_m: mutual information for specificity (paper §5.5, Eq. 4).

r_m = λ·mean_t log p→(R̂ | S) + (1 − λ)·mean_t log p←(S | R̂)

p→ is the policy's backbone LM, frozen (the reward is a constant for the policy gradient); p← is
the reverse model (the same backbone plus the LoRA adapter of ``partner-train reverse``). Both are
**per-token means** of log-probabilities: the paper does not say, and summed log-probs (−50 to
−300) times w_m = 0.1 would swamp the other terms; a mean keeps r_m around −1 to −5 and does not
favour short texts. Prompt formats: classifiers/reverse.py (forward ``Post: S\\nReply: R̂``,
reverse ``Reply: R̂\\nPost: S``).
"""

from __future__ import annotations

from classifiers.reverse import encode_conditional, FORWARD_LABELS, REVERSE_LABELS

from .cache import LRUCache
from .edit import Scores, check_batch


class MutualInformationReward:
    name = "mi"

    def __init__(self, forward_lm, reverse_lm, lambda_mi: float = 0.5, max_seeker_tokens: int = 64,
                 max_response_tokens: int = 128, batch_size: int = 16, cache_size: int = 20_000,
                 reverse_lengths: tuple[int, int] | None = None):
        """``forward_lm`` / ``reverse_lm``: rewards.lm.FrozenLM; the reverse one must carry the
        reverse adapter (they may be the same object). λ = 1 or 0 skips the unused model entirely.
        ``reverse_lengths``: (response tokens, post tokens) the reverse model reads and scores; None =
        (max_response_tokens, max_seeker_tokens), as the forward term."""
        if not 0.0 <= lambda_mi <= 1.0:
            raise ValueError(f"lambda_mi must be in [0, 1], not {lambda_mi}")
        self.forward_lm = forward_lm
        self.reverse_lm = reverse_lm
        self.lambda_mi = lambda_mi
        self.max_seeker_tokens = max_seeker_tokens
        self.max_response_tokens = max_response_tokens
        self.batch_size = batch_size
        self.reverse_lengths = tuple(reverse_lengths) if reverse_lengths else (max_response_tokens, max_seeker_tokens)
        self._fwd_cache = LRUCache(cache_size)
        self._rev_cache = LRUCache(cache_size)
        # KV caches of the forward prompts ("Post: S\nReply:"), about 3 MB each for SmolLM2-135M: the
        # seeker posts of the last few RL batches
        self._fwd_prompts = LRUCache(64)

    def _forward(self, keys):
        tok = self.forward_lm.tok
        enc = [encode_conditional(tok, s, r, FORWARD_LABELS, self.max_seeker_tokens, self.max_response_tokens)
               for s, r in keys]
        return [s / n for s, n in self.forward_lm.target_logprobs(enc, adapter=False, batch_size=self.batch_size,
                                                                  prompts=self._fwd_prompts)]

    def _reverse(self, keys):
        tok = self.reverse_lm.tok
        enc = [encode_conditional(tok, r, s, REVERSE_LABELS, *self.reverse_lengths) for s, r in keys]
        return [s / n for s, n in self.reverse_lm.target_logprobs(enc, adapter=True, batch_size=self.batch_size)]

    def parts(self, seekers, rewrites) -> tuple[list[float], list[float]]:
        """(mean log p→(R̂|S), mean log p←(S|R̂)) per sample; a term with weight 0 is all zeros."""
        keys = list(zip(seekers, rewrites))
        fwd = self._fwd_cache.get_many(keys, self._forward) if self.lambda_mi > 0 else [0.0] * len(keys)
        rev = self._rev_cache.get_many(keys, self._reverse) if self.lambda_mi < 1 else [0.0] * len(keys)
        return fwd, rev

    def __call__(self, seekers, originals, rewrites, edits=None) -> Scores:
        """r_m = λ·forward + (1 - λ)·reverse; details: both terms."""
        check_batch(seekers, originals, rewrites, edits)
        fwd, rev = self.parts(seekers, rewrites)
        lam = self.lambda_mi
        return Scores((lam * f + (1 - lam) * r for f, r in zip(fwd, rev)), {"mi_forward": fwd, "mi_reverse": rev})
