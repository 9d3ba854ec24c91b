"""r_pref: how much more raters would prefer the rewrite than the original, by a learned reward model.

``score(seeker, rewrite) - score(seeker, original)`` under a ``classifiers.preference.PreferenceModel``
(Bradley-Terry logits from ``partner-train preference``): positive when the model predicts raters
would rather the seeker received the rewrite; ``sigmoid`` of it is that predicted probability.
Not the paper's: off unless ``rewards.w_preference`` > 0. Pair it with the RL KL term to the warm
start (``rl.kl_coef``), so the policy cannot drift into text the reward model never saw.
"""

from __future__ import annotations

from .cache import LRUCache
from .edit import check_batch


class PreferenceReward:
    name = "preference"

    def __init__(self, model=None, path: str | None = None, device: str | None = None, batch_size: int = 32,
                 cache_size: int = 100_000):
        """``model``: any object with ``score(seekers, replies, batch_size) -> list[float]`` (the
        PreferenceModel or a test fake); None loads ``PreferenceModel.from_pretrained(path)`` on first use."""
        self._model = model
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self.cache = LRUCache(cache_size)

    @property
    def model(self):
        if self._model is None:
            from classifiers.preference import PreferenceModel

            self._model = PreferenceModel.from_pretrained(self.path, device=self.device)
        return self._model

    def _compute(self, keys):
        return self.model.score([s for s, _ in keys], [r for _, r in keys], batch_size=self.batch_size)

    def scores(self, seekers: list[str], texts: list[str]) -> list[float]:
        return self.cache.get_many(list(zip(seekers, texts)), self._compute)

    def __call__(self, seekers, originals, rewrites, edits=None) -> list[float]:
        check_batch(seekers, originals, rewrites, edits)
        both = self.scores(list(seekers) * 2, list(rewrites) + list(originals))
        n = len(seekers)
        return [both[i] - both[n + i] for i in range(n)]
