"""r_c: sentence coherence of the edit (paper §5.5, Eq. 3).

r_c = mean over the window's other sentences s of p_coherent(s, candidate): the window as it was
before the edit, minus the sentence a replacement removes (the paper's sum j..j+k has k+1 terms for
k sentences: an off-by-one; we average over the sentences that are actually there). Pairs are
scored as (window sentence, candidate), the order the authors' classifier used. p_coherent is the
pair classifier's softmax (not the authors' sigmoid of one logit).

Where there is nothing to judge (a STOP, a deletion, an empty candidate, or a window with no other
sentence) r_c = ``empty_value`` (default 1.0, as the paper's evaluation scores single-sentence
outputs). Without edit information (``edits=None``, e.g. whole-response RL through TRL), r_c is
the mean coherence of consecutive sentence pairs of R̂.

Every distinct pair is scored once per batch, and pair scores are cached across calls.
"""

from __future__ import annotations

from classifiers.coherence import CoherenceScorer
from core.text import split_sentences

from .cache import LRUCache
from .edit import check_batch, EditInfo


class CoherenceReward:
    name = "coherence"

    def __init__(self, scorer=None, path: str | None = None, device: str | None = None, empty_value: float = 1.0,
                 batch_size: int = 64, cache_size: int = 100_000):
        """``scorer``: any object with ``prob(sent_a, sent_b) -> list[float]`` (the CoherenceScorer
        or a test fake); None loads ``CoherenceScorer.load(path)`` on first use."""
        self._scorer = scorer
        self.path = path
        self.device = device
        self.empty_value = empty_value
        self.batch_size = batch_size
        self.cache = LRUCache(cache_size)

    @property
    def scorer(self):
        if self._scorer is None:
            self._scorer = CoherenceScorer.load(self.path, device=self.device)
        return self._scorer

    def _compute(self, pairs):
        return self.scorer.prob([a for a, _ in pairs], [b for _, b in pairs], batch_size=self.batch_size)

    @staticmethod
    def pairs_for(rewrite: str, edit) -> list[tuple[str, str]]:
        """The (window sentence, candidate) pairs one sample is judged on; [] = nothing to judge."""
        edit = EditInfo.from_dict(edit)
        if edit is None:
            sents = [s for s in split_sentences(rewrite) if s.strip()]
            return list(zip(sents[:-1], sents[1:]))
        if edit.action == "stop" or not edit.candidate.strip():
            return []
        return [(s, edit.candidate) for s in edit.context()]

    def __call__(self, seekers, originals, rewrites, edits=None) -> list[float]:
        check_batch(seekers, originals, rewrites, edits)
        per_sample = [self.pairs_for(r, None if edits is None else edits[i]) for i, r in enumerate(rewrites)]
        flat = [p for pairs in per_sample for p in pairs]
        probs = iter(self.cache.get_many(flat, self._compute))
        out = []
        for pairs in per_sample:
            vals = [next(probs) for _ in pairs]
            out.append(sum(vals) / len(vals) if vals else self.empty_value)
        return out
