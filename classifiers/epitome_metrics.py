"""Metrics of the EPITOME tasks and the baselines they are compared with.

Identification (seed 000 §6.1; seed 003 for MCC): accuracy and macro-F1 over levels 0/1/2 pooled
over the whole test set, the EPITOME code's per-batch-averaged macro-F1 (batches of 32 in order,
for comparison with published figures only), and MCC of "level > 0" vs 0.

Rationales (seed 000 §6.1): T-F1, the token-level F1 per example averaged over examples, and
IOU-F1, the span-level F1 per example where a predicted span counts when its token IoU with a
gold span is >= 0.5 (DeYoung et al. 2020). Two conventions for "no rationale":

- ``empty`` (seed 001): a level-0 example has an empty mask; a predicted level 0 predicts an empty
  mask; two empty masks agree perfectly (1.0).
- ``released`` (the EPITOME code): a level-0 gold mask is the whole response, and so is the
  prediction for a predicted level 0; two empty masks score 0.
"""

from __future__ import annotations

from collections import Counter

MECHANISMS = ("ER", "IP", "EX")


# ---------------------------------------------------------------------------- identification

def macro_f1(gold, pred) -> float:
    """Macro-F1 over levels 0/1/2 (a level absent from both counts as 0)."""
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=[0, 1, 2], average="macro", zero_division=0))


def level_metrics(gold: list[int], pred: list[int], batch: int = 32) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    per_batch = [f1_score(gold[i:i + batch], pred[i:i + batch], average="macro", zero_division=0)
                 for i in range(0, len(gold), batch)]
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": macro_f1(gold, pred),
        "macro_f1_per_batch": float(sum(per_batch) / len(per_batch)) if per_batch else 0.0,
        "mcc": float(matthews_corrcoef([g > 0 for g in gold], [p > 0 for p in pred])),
    }


# ---------------------------------------------------------------------------- rationales

def runs(mask: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of 1s as [start, end) token ranges."""
    out, start = [], None
    for i, v in enumerate(list(mask) + [0]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i))
            start = None
    return out


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def token_f1(gold: list[int], pred: list[int], both_empty: float) -> float:
    tp = sum(1 for g, p in zip(gold, pred) if g and p)
    ng, np_ = sum(gold), sum(pred)
    if ng == 0 and np_ == 0:
        return both_empty
    if tp == 0:
        return 0.0
    return _f1(tp / np_, tp / ng)


def iou_f1(gold: list[int], pred: list[int], both_empty: float, threshold: float = 0.5) -> float:
    gs, ps = runs(gold), runs(pred)
    if not gs and not ps:
        return both_empty
    if not gs or not ps:
        return 0.0

    def iou(a, b):
        inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
        return inter / (max(a[1], b[1]) - min(a[0], b[0]))

    tp_p = sum(1 for p in ps if max(iou(p, g) for g in gs) >= threshold)
    tp_g = sum(1 for g in gs if max(iou(p, g) for p in ps) >= threshold)
    return _f1(tp_p / len(ps), tp_g / len(gs))


def rationale_metrics(gold_masks: list[list[int]], pred_masks: list[list[int]], gold_levels: list[int],
                      pred_levels: list[int], convention: str = "empty") -> dict[str, float]:
    """Mean T-F1 and IOU-F1 over examples; masks cover the response's real tokens only."""
    if convention not in ("empty", "released"):
        raise ValueError(f"convention must be empty or released, got {convention!r}")
    t, u = [], []
    for g, p, gl, pl in zip(gold_masks, pred_masks, gold_levels, pred_levels):
        g = [int(x) for x in g]
        p = [int(x) for x in p] if pl > 0 else [0] * len(g)
        if convention == "released":
            g = g if gl > 0 else [1] * len(g)
            p = p if pl > 0 else [1] * len(g)
        both = 1.0 if convention == "empty" else 0.0
        t.append(token_f1(g, p, both))
        u.append(iou_f1(g, p, both))
    n = max(1, len(t))
    return {"t_f1": sum(t) / n, "iou_f1": sum(u) / n}


# ---------------------------------------------------------------------------- baselines

def majority_baseline(train, test) -> dict[str, list[int]]:
    """Per mechanism, the most frequent training level for every test pair."""
    out = {}
    for m in MECHANISMS:
        top = Counter(p.levels[m] for p in train).most_common(1)[0][0]
        out[m] = [top] * len(test)
    return out


def tfidf_baseline(train, test, seed: int = 0) -> dict[str, list[int]]:
    """tf-idf (word 1-2-grams) of the response and of the seeker post, side by side, and one
    class-balanced logistic regression per mechanism."""
    (probs,) = tfidf_probs(train, [test], seed)
    return {m: [int(x) for x in probs[m].argmax(-1)] for m in MECHANISMS}


def tfidf_probs(train, sets: list, seed: int = 0) -> list[dict]:
    """``tfidf_baseline``'s model fitted on ``train``; per set of pairs, {mechanism: [N, 3] level
    probabilities} (a level absent from ``train`` gets probability 0)."""
    import numpy as np
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vr = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vs = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    xtr = hstack([vr.fit_transform([p.response_post for p in train]), vs.fit_transform([p.seeker_post for p in train])])
    xs = [hstack([vr.transform([p.response_post for p in t]), vs.transform([p.seeker_post for p in t])]) for t in sets]
    out: list[dict] = [{} for _ in sets]
    for m in MECHANISMS:
        clf = LogisticRegression(max_iter=3000, class_weight="balanced", C=4.0, random_state=seed)
        clf.fit(xtr, [p.levels[m] for p in train])
        for o, x in zip(out, xs):
            probs = np.zeros((x.shape[0], 3))
            probs[:, clf.classes_] = clf.predict_proba(x)
            o[m] = probs
    return out
