"""Post-hoc decisions fitted on dev: level biases, and a mixture weight with a second model.

Level biases are additive offsets to a mechanism's level log-probabilities, chosen on the dev split
to maximise its macro-F1.

Rare levels (IP and EX level 1 are 4 % and 3 % of EPITOME) are under-predicted by an argmax over
probabilities trained with cross-entropy; macro-F1 weighs them as much as the common ones. The
bias of level 0 stays 0; those of levels 1 and 2 are searched on a grid. Ties go to the smallest
total offset, so a dev split that cannot tell keeps the plain argmax.

The mixture averages the model's level probabilities with another model's (the tf-idf + logistic
regression baseline in ``partner.evaluation.cross_validation``), with the weight chosen on dev.
Both are measured there by cross-validation; no shipped scorer uses them.
"""

from __future__ import annotations

import itertools

import numpy as np

from .epitome_metrics import macro_f1

GRID = tuple(np.round(np.arange(-2.0, 2.0001, 0.25), 2))


def apply_bias(probs, bias) -> list[int]:
    """Levels from [N, 3] probabilities with log-space offsets ``bias`` [3]."""
    logp = np.log(np.clip(np.asarray(probs, dtype=float), 1e-12, None))
    return (logp + np.asarray(bias, dtype=float)).argmax(-1).tolist()


def fit_level_bias(probs, gold, grid=GRID) -> tuple[list[float], float, float]:
    """(bias [0, b1, b2], dev macro-F1 with the plain argmax, dev macro-F1 with the bias)."""
    base = macro_f1(gold, apply_bias(probs, [0.0, 0.0, 0.0]))
    best, best_f1 = [0.0, 0.0, 0.0], base
    for b1, b2 in sorted(itertools.product(grid, grid), key=lambda b: (abs(b[0]) + abs(b[1]), b)):
        score = macro_f1(gold, apply_bias(probs, [0.0, b1, b2]))
        if score > best_f1 + 1e-12:
            best, best_f1 = [0.0, float(b1), float(b2)], score
    return best, base, best_f1


WEIGHTS = tuple(np.round(np.arange(0.0, 1.0001, 0.1), 2))


def fit_mix_weight(probs, other, gold, weights=WEIGHTS) -> tuple[float, float]:
    """(w, dev macro-F1) of the mixture w·probs + (1 − w)·other that maximises macro-F1 on this (dev)
    set; ties go to the weight nearest 0.5 (an even mixture)."""
    probs, other = np.asarray(probs, dtype=float), np.asarray(other, dtype=float)
    scored = [(macro_f1(gold, (w * probs + (1 - w) * other).argmax(-1)), -abs(w - 0.5), float(w)) for w in weights]
    f1, _, w = max(scored)
    return w, f1
