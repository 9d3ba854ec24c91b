"""r_e: change in empathy, f_e(S, R̂) − f_e(S, R) on EPITOME's 0–6 scale (paper §5.5, Eq. 1).

f_e = ER + IP + EX. With ``mode="argmax"`` (the paper) each level is the classifier's argmax in
{0, 1, 2}; ``mode="expected"`` uses the expected level under its softmax (smoother, same scale).
The authors' code halved the scale to 0–3 and averaged over the batch; here every sample gets its
own value. Scores are cached by (mode, seeker, text): the original response's score is computed
once across calls, and a rewrite identical to its original (a STOP) costs nothing.

``breakdown`` also returns each mechanism's change, for logging.
"""

from __future__ import annotations

from classifiers.scorer import EmpathyScorer, MECHANISMS

from .cache import LRUCache
from .edit import Scores, check_batch

MODES = ("argmax", "expected")


class EmpathyReward:
    name = "empathy"

    def __init__(self, scorer=None, mode: str = "argmax", batch_size: int = 32, path: str | None = None,
                 device: str | None = None, cache_size: int = 100_000):
        """``scorer``: any object with ``level_tensor(seekers, responses, mode) -> [N, 3]`` (the
        EPITOME ``EmpathyScorer`` or a test fake); None loads ``EmpathyScorer.load(path)`` on first use."""
        if mode not in MODES:
            raise ValueError(f"empathy mode must be one of {MODES}, not {mode!r}")
        self._scorer = scorer
        self.mode = mode
        self.batch_size = batch_size
        self.path = path
        self.device = device
        self.cache = LRUCache(cache_size)

    @property
    def scorer(self):
        if self._scorer is None:
            self._scorer = EmpathyScorer.load(self.path, device=self.device)
        return self._scorer

    def _compute(self, keys):
        seekers = [k[1] for k in keys]
        texts = [k[2] for k in keys]
        levels = self.scorer.level_tensor(seekers, texts, mode=self.mode, batch_size=self.batch_size)
        return [tuple(float(x) for x in row) for row in levels.detach().float().cpu().tolist()]

    def levels(self, seekers: list[str], texts: list[str]) -> list[tuple[float, float, float]]:
        """(ER, IP, EX) levels per sample."""
        return self.cache.get_many([(self.mode, s, t) for s, t in zip(seekers, texts)], self._compute)

    def totals(self, seekers: list[str], texts: list[str]) -> list[float]:
        """f_e(S, text) per sample: the sum of the levels, 0..6."""
        return [sum(row) for row in self.levels(seekers, texts)]

    def breakdown(self, seekers, originals, rewrites) -> tuple[list[float], list[float], dict[str, list[float]]]:
        """(f_e of the originals, f_e of the rewrites, each mechanism's change
        {"ER": [...], "IP": [...], "EX": [...]}); all from one scoring pass for misses."""
        n = len(seekers)
        both = self.levels(list(seekers) * 2, list(originals) + list(rewrites))
        before, after = both[:n], both[n:]
        change = {m: [a[j] - b[j] for b, a in zip(before, after)] for j, m in enumerate(MECHANISMS)}
        return [sum(r) for r in before], [sum(r) for r in after], change

    def parts(self, seekers, originals, rewrites) -> tuple[list[float], list[float]]:
        """(f_e of the originals, f_e of the rewrites)."""
        before, after, _ = self.breakdown(seekers, originals, rewrites)
        return before, after

    def __call__(self, seekers, originals, rewrites, edits=None) -> Scores:
        """r_e = f_e(rewrite) - f_e(original); details: f_e before and after, each mechanism's change."""
        check_batch(seekers, originals, rewrites, edits)
        before, after, change = self.breakdown(seekers, originals, rewrites)
        details = {"empathy_before": before, "empathy_after": after,
                   **{f"empathy_{m}": delta for m, delta in change.items()}}
        return Scores((a - b for a, b in zip(after, before)), details)

