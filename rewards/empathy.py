"""r_e: change in empathy, f_e(S, R̂) − f_e(S, R) on EPITOME's 0–6 scale (paper §5.5, Eq. 1).

f_e = ER + IP + EX. With ``mode="argmax"`` (the paper) each level is the classifier's argmax in
{0, 1, 2}; ``mode="expected"`` uses the expected level under its softmax (smoother, same scale).
The authors' code halved the scale to 0–3 and averaged over the batch; here every sample gets its
own value. Scores are cached by (mode, seeker, text): the original response's score is computed
once across calls, and a rewrite identical to its original (a STOP) costs nothing.

``weights`` (ER, IP, EX) weight each mechanism's level in f_e: (1, 1, 1) is the paper's plain sum.
Other weights are ours, not the paper's (``rewards.empathy_weights``). The greedy agent trained on
the plain sum gains almost only on ER, through one stock sentence ("I'm sorry to hear that."), so
weighting IP and EX up is the obvious lever; measured with (1, 2, 2) for 50 CPU steps it lowered the
gain (models/policy_rl/README.md, session 6), so the default stays the paper's.
``breakdown`` also returns each mechanism's unweighted change, for logging.
"""

from __future__ import annotations

from classifiers.scorer import EmpathyScorer, MECHANISMS

from .cache import LRUCache
from .edit import Scores, check_batch

MODES = ("argmax", "expected")


class EmpathyReward:
    name = "empathy"

    def __init__(self, scorer=None, mode: str = "argmax", batch_size: int = 32, path: str | None = None,
                 device: str | None = None, cache_size: int = 100_000, weights=(1.0, 1.0, 1.0)):
        """``scorer``: any object with ``level_tensor(seekers, responses, mode) -> [N, 3]`` (the
        EPITOME ``EmpathyScorer`` or a test fake); None loads ``EmpathyScorer.load(path)`` on first use.
        ``weights``: ER, IP, EX weights of f_e (the paper: 1, 1, 1)."""
        if mode not in MODES:
            raise ValueError(f"empathy mode must be one of {MODES}, not {mode!r}")
        weights = tuple(float(w) for w in weights)
        if len(weights) != 3 or any(w < 0 for w in weights):
            raise ValueError(f"empathy weights must be three numbers >= 0 (ER, IP, EX), not {list(weights)}")
        self.weights = weights
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
        """(ER, IP, EX) levels per sample, unweighted."""
        return self.cache.get_many([(self.mode, s, t) for s, t in zip(seekers, texts)], self._compute)

    def _weighted(self, row) -> float:
        return sum(w * x for w, x in zip(self.weights, row))

    def totals(self, seekers: list[str], texts: list[str]) -> list[float]:
        """f_e(S, text) per sample: the weighted sum of the levels (0..6 with the paper's weights)."""
        return [self._weighted(row) for row in self.levels(seekers, texts)]

    def breakdown(self, seekers, originals, rewrites) -> tuple[list[float], list[float], dict[str, list[float]]]:
        """(f_e of the originals, f_e of the rewrites, each mechanism's unweighted change
        {"ER": [...], "IP": [...], "EX": [...]}); all from one scoring pass for misses."""
        n = len(seekers)
        both = self.levels(list(seekers) * 2, list(originals) + list(rewrites))
        before, after = both[:n], both[n:]
        change = {m: [a[j] - b[j] for b, a in zip(before, after)] for j, m in enumerate(MECHANISMS)}
        return [self._weighted(r) for r in before], [self._weighted(r) for r in after], change

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

