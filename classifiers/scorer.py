"""EmpathyScorer: the trained EPITOME classifier behind one small API (notes/INTERFACES.md).

    scorer = EmpathyScorer.from_pretrained()   # the shipped model in <repo>/models/epitome
    [r] = scorer.score(["I lost my job."], ["I'm so sorry. What happened?"])
    r.levels, r.total, r.probs, r.rationales   # {"ER": 1, ...}, 0..6, {"ER": [p0, p1, p2]}, spans
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MECHANISMS = ("ER", "IP", "EX")
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "epitome"


@dataclass
class EmpathyResult:
    levels: dict[str, int]
    total: int
    probs: dict[str, list[float]]
    expected_total: float
    rationales: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**{m: self.levels[m] for m in self.levels}, "total": self.total, "probs": self.probs,
                "rationales": self.rationales}


class EmpathyScorer:
    """Scores (seeker post, response) pairs: levels, probabilities and rationale spans.

    A model folder may hold any subset of mechanisms; mechanisms it lacks score 0 with
    probability 1 on level 0 (so ``total`` is always comparable in range).
    """

    def __init__(self, model, threshold: float = 0.5, max_gap: int = 2):
        self.model = model
        self.threshold = threshold  # p(rationale token) above which a token is part of a span
        self.max_gap = max_gap  # unkept tokens filled between two kept ones when forming spans

    @classmethod
    def load(cls, path: str | None = None, device: str | None = None) -> "EmpathyScorer":
        from .epitome import EpitomeModel

        path = Path(path) if path else SHIPPED
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"no EPITOME classifier at {path} (expected config.json and "
                                    "model.safetensors; train one with `partner-train classifier`)")
        return cls(EpitomeModel.load(path, device=device))

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | None = None) -> "EmpathyScorer":
        """The classifier saved in ``path`` (a ``partner-train classifier`` folder; default: the shipped
        ``models/epitome``), on ``device`` (default: a GPU if there is one)."""
        return cls.load(str(path) if path else None, device=device)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def predict(self, seekers: list[str], responses: list[str], batch_size: int = 32, spans=None,
                progress: bool = False) -> dict:
        """Raw outputs of ``epitome.run_model`` (probabilities, token probabilities, offsets)."""
        from .epitome import run_model

        if len(seekers) != len(responses):
            raise ValueError(f"{len(seekers)} seeker posts but {len(responses)} responses")
        raw = run_model(self.model, list(seekers), list(responses), batch_size, spans=spans, progress=progress)
        # An empty response communicates nothing: level 0 by definition, whatever the heads say
        # about a bare [CLS] [SEP].
        for i, text in enumerate(responses):
            if not (text or "").strip():
                raw["probs"][i] = 0.0
                raw["probs"][i, :, 0] = 1.0
        return raw

    def score(self, seekers: list[str], responses: list[str], batch_size: int = 32,
              rationales: bool = True, progress: bool = False) -> list[EmpathyResult]:
        from .epitome import token_spans

        raw = self.predict(seekers, responses, batch_size, progress=progress)
        mechs = self.model.mechanisms
        results = []
        for i, text in enumerate(responses):
            probs = {m: [1.0, 0.0, 0.0] for m in MECHANISMS}
            levels = {m: 0 for m in MECHANISMS}
            spans: dict[str, list[str]] = {m: [] for m in MECHANISMS}
            for j, m in enumerate(mechs):
                p = raw["probs"][i, j]
                probs[m] = [round(float(x), 6) for x in p]
                levels[m] = int(p.argmax())
                if rationales and levels[m] > 0:
                    keep = ((raw["token_probs"][i][j] > self.threshold) & raw["mask"][i]).tolist()
                    spans[m] = token_spans(raw["offsets"][i].tolist(), keep, text or "", self.max_gap)
            expected = sum(float(raw["probs"][i, j] @ _LEVELS) for j in range(len(mechs)))
            results.append(EmpathyResult(levels, sum(levels.values()), probs, expected,
                                         spans if rationales else {m: [] for m in MECHANISMS}))
        return results

    def level_tensor(self, seekers: list[str], responses: list[str], mode: str = "argmax",
                     batch_size: int = 32):
        """float [N, 3] (ER, IP, EX): argmax levels, or expected levels with ``mode="expected"``."""
        import torch

        if mode not in ("argmax", "expected"):
            raise ValueError(f"mode must be argmax or expected, got {mode!r}")
        raw = self.predict(seekers, responses, batch_size)
        out = torch.zeros(len(responses), len(MECHANISMS))
        for j, m in enumerate(self.model.mechanisms):
            p = raw["probs"][:, j]
            out[:, MECHANISMS.index(m)] = p.argmax(-1).float() if mode == "argmax" else p @ _LEVELS
        return out


class _Levels:
    """The vector (0, 1, 2), built lazily so importing this module does not import torch."""

    _t = None

    def __rmatmul__(self, other):
        import torch

        if _Levels._t is None:
            _Levels._t = torch.tensor([0.0, 1.0, 2.0])
        return other.float() @ _Levels._t


_LEVELS = _Levels()
