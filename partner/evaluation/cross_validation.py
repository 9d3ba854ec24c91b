"""partner-eval classifier --cv: k-fold cross-validation of one classifier recipe.

The fixed test split holds 255 pairs, and some classes are tiny there (11 pairs of IP level 1,
10 of EX level 1), so one split's macro-F1 moves by several points with a handful of pairs. Here
every model of ``--model`` was trained with ``classifier.folds=k, classifier.fold=i`` (the same
recipe otherwise) and is scored on its own test fold; the folds' predictions are joined, so every
EPITOME pair is a test pair once. A model trained on the fixed split (``folds: 0``) counts as fold 9
of 10, which is that split. The majority-class and tf-idf baselines are refitted on each fold's
training part and joined the same way.

The micromodels baseline (seed 001, ``classifiers.micromodels``) is refitted on each fold's training
part too, its rationale thresholds on the fold's dev part, and is reported with rationale metrics.

Reported per mechanism: the pooled metrics (every fold's test predictions together), the mean ± sd
of the per-fold metrics, the pooled F1 of each level with its number of gold pairs, and each fold's
macro-F1. Two more rows per model re-decide its levels with what is fitted on each fold's dev part
(``classifiers.calibration``): level biases (a post-hoc fix for rare levels), and a mixture of its
probabilities with the tf-idf + LR baseline's. Both are measured here before any model uses them.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from classifiers.calibration import apply_bias, fit_level_bias, fit_mix_weight
from classifiers.epitome_metrics import level_metrics, majority_baseline, tfidf_probs
from classifiers.scorer import EmpathyScorer
from core.corpora import grouped_split, load_epitome
from core.provenance import git_commit

from .classifier import (
    _cell,
    aggregate,
    group_label,
    load_config,
    MECHANISMS,
    metrics_of,
    MICROMODELS,
    micromodel_preds,
    model_dirs,
    PAPER,
    predict_model,
    write_report,
)

log = logging.getLogger(__name__)

FIXED_SPLIT_FOLD = (10, 9)  # corpora.split_of: fold 9 of 10 is the fixed 80:10:10 split


def fold_of(mcfg) -> tuple[int, int]:
    """(folds, fold) a model was trained on; the fixed split is fold 9 of 10."""
    return (mcfg.folds, mcfg.fold) if mcfg.folds else FIXED_SPLIT_FOLD


def join(parts: list[dict]) -> dict:
    """Concatenate per-fold prediction dicts ({mech: {key: list}}) into one."""
    out: dict = {}
    for part in parts:
        for m, p in part.items():
            dst = out.setdefault(m, {k: [] for k in p})
            for k, v in p.items():
                dst[k].extend(v)
    return out


def level_f1(preds: dict) -> dict:
    """Per mechanism, the F1 of each level (%) and its gold count."""
    from sklearn.metrics import f1_score

    out = {}
    for m, p in preds.items():
        f1 = f1_score(p["gold"], p["pred"], labels=[0, 1, 2], average=None, zero_division=0)
        out[m] = {str(lv): {"f1": float(f1[lv]), "gold": sum(g == lv for g in p["gold"])} for lv in (0, 1, 2)}
    return out


def baseline_preds(train, test, tfidf_test) -> dict[str, dict]:
    """Majority class and tf-idf + LR predictions on ``test``; ``tfidf_test``: the latter's probabilities."""
    majority = majority_baseline(train, test)
    out = {}
    for name, preds in (("majority class", majority),
                        ("tf-idf + logistic regression", {m: tfidf_test[m].argmax(-1).tolist() for m in MECHANISMS})):
        out[name] = {m: {"gold": [p.levels[m] for p in test], "pred": list(preds[m])} for m in MECHANISMS}
    return out


def mixed(preds: dict, dev_preds: dict, other_test: dict, other_dev: dict) -> tuple[dict, dict]:
    """``preds`` re-decided by the dev-fitted mixture with another model's probabilities."""
    out, weights = {}, {}
    for m, p in preds.items():
        w, dev_f1 = fit_mix_weight(dev_preds[m]["probs"], other_dev[m], dev_preds[m]["gold"])
        weights[m] = {"weight": w, "dev_macro_f1": dev_f1}
        out[m] = {**p, "pred": (w * np.asarray(p["probs"]) + (1 - w) * other_test[m]).argmax(-1).tolist()}
    return out, weights


def level_only(metrics: dict) -> dict:
    return {m: level_metrics(p["gold"], p["pred"]) for m, p in metrics.items()}


def calibrated(preds: dict, dev_preds: dict) -> tuple[dict, dict]:
    """``preds`` with levels re-decided by biases fitted on ``dev_preds`` (classifiers.calibration)."""
    out, biases = {}, {}
    for m, p in preds.items():
        bias, before, after = fit_level_bias(dev_preds[m]["probs"], dev_preds[m]["gold"])
        biases[m] = {"bias": bias, "dev_macro_f1": before, "dev_macro_f1_biased": after}
        out[m] = {**p, "pred": apply_bias(p["probs"], bias)}
    return out, biases


def run_cv(models: list[tuple[str, object]], data_path, predict=predict_model, calibrate: bool = True,
           micromodels: bool = True, embedder=None) -> dict:
    """``models``: (path, scorer) pairs of one recipe, one per fold. Returns the report dict.

    With ``calibrate``, each fold's model is also scored on its dev fold, and two post-hoc decisions
    are fitted there (``classifiers.calibration``) and applied to its test fold: level biases, and a
    mixture with the tf-idf + LR baseline's probabilities. Two more rows.
    With ``micromodels``, the micromodels baseline is refitted on each fold (thresholds on its dev part)
    and reported with rationale metrics, as the model is.
    """
    by_fold: dict[int, tuple[str, object]] = {}
    ks, split_seeds, recipes = set(), set(), set()  # recipes: the config apart from seed and fold
    for path, scorer in models:
        mcfg = scorer.model.cfg
        k, i = fold_of(mcfg)
        if i in by_fold:
            raise ValueError(f"{path} and {by_fold[i][0]} were both trained with fold {i} as test: give one model per fold")
        by_fold[i] = (path, scorer)
        ks.add(k)
        split_seeds.add(mcfg.split_seed)
        recipes.add(repr(sorted(dataclasses.asdict(dataclasses.replace(mcfg, seed=0, folds=0, fold=0)).items())))
    if len(ks) != 1:
        raise ValueError(f"the models were trained with different numbers of folds: {sorted(ks)}")
    if len(split_seeds) != 1:
        raise ValueError(f"the models were trained on different split seeds: {sorted(split_seeds)}")
    if len(recipes) != 1:
        raise ValueError("the models differ in more than the seed and the fold: cross-validate one recipe at a time")
    (k,), (split_seed,) = ks, split_seeds
    missing = sorted(set(range(k)) - set(by_fold))
    if missing:
        log.warning("folds %s of %d have no model: the pooled figures cover %d of %d folds", missing, k,
                    len(by_fold), k)

    pairs, _ = load_epitome(data_path)
    model_parts, cal_parts, mix_parts, base_parts, folds, mm_parts = [], [], [], {}, [], []
    for i in sorted(by_fold):
        path, scorer = by_fold[i]
        splits = grouped_split(pairs, lambda p: p.sp_id, split_seed, folds=k, fold=i)
        test = splits["test"]
        log.info("fold %d of %d: %s on %d test pairs", i, k, path, len(test))
        preds = predict(scorer, test)
        model_parts.append(preds)
        tf_test, tf_dev = tfidf_probs(splits["train"], [test, splits["dev"]])
        for name, bp in baseline_preds(splits["train"], test, tf_test).items():
            base_parts.setdefault(name, []).append(bp)
        fold = {"fold": i, "model": path, "test_pairs": len(test), "metrics": metrics_of(preds)}
        if micromodels:
            mm, fold["micromodels"] = micromodel_preds(splits["train"], splits["dev"], test, embedder=embedder)
            if mm is not None:
                mm_parts.append(mm)
                fold["micromodels"]["metrics"] = metrics_of(mm)
        if calibrate:
            dev_preds = predict(scorer, splits["dev"])
            cal, fold["level_bias"] = calibrated(preds, dev_preds)
            cal_parts.append(cal)
            fold["metrics_biased"] = metrics_of(cal)
            mix, fold["tfidf_mix"] = mixed(preds, dev_preds, tf_test, tf_dev)
            mix_parts.append(mix)
            fold["metrics_mixed"] = metrics_of(mix)
        folds.append(fold)

    pooled = join(model_parts)
    label = group_label(by_fold[min(by_fold)][1].model.cfg)
    rows = {
        f"{label}: pooled over folds": {"metrics": metrics_of(pooled), "level_f1": level_f1(pooled)},
        f"{label}: mean ± sd of folds": {"metrics": aggregate([f["metrics"] for f in folds])},
    }
    if calibrate:
        cal = join(cal_parts)
        rows[f"{label}, dev-fitted level biases: pooled over folds"] = {"metrics": metrics_of(cal),
                                                                       "level_f1": level_f1(cal)}
        rows[f"{label}, dev-fitted level biases: mean ± sd of folds"] = {
            "metrics": aggregate([f["metrics_biased"] for f in folds])}
        mix = join(mix_parts)
        rows[f"{label}, mixed with tf-idf + LR (dev-fitted weight): pooled over folds"] = {
            "metrics": metrics_of(mix), "level_f1": level_f1(mix)}
        rows[f"{label}, mixed with tf-idf + LR (dev-fitted weight): mean ± sd of folds"] = {
            "metrics": aggregate([f["metrics_mixed"] for f in folds])}
    if mm_parts and len(mm_parts) == len(folds):
        mm = join(mm_parts)
        rows[f"{MICROMODELS}: pooled over folds"] = {"metrics": metrics_of(mm), "level_f1": level_f1(mm)}
        rows[f"{MICROMODELS}: mean ± sd of folds"] = {
            "metrics": aggregate([f["micromodels"]["metrics"] for f in folds])}
    for name, parts in base_parts.items():
        bp = join(parts)
        rows[f"{name}: pooled over folds"] = {"metrics": level_only(bp), "level_f1": level_f1(bp)}
        rows[f"{name}: mean ± sd of folds"] = {"metrics": aggregate([level_only(p) for p in parts])}
    for row in rows.values():  # pooled rows: plain numbers -> {"mean": v, "sd": None}, as aggregate's
        row["metrics"] = {m: {key: v if isinstance(v, dict) else {"mean": v, "sd": None} for key, v in r.items()}
                          for m, r in row["metrics"].items()}
    return {"commit": git_commit(), "split_seed": split_seed, "folds": k, "folds_present": sorted(by_fold),
            "test_pairs": sum(f["test_pairs"] for f in folds), "rows": rows, "per_fold": folds}


def run_baselines_cv(data_path, folds: int = 10, split_seed: int = 13, embedder=None) -> dict:
    """The baselines alone over ``folds`` folds (``--cv --model none``): majority class, tf-idf + LR and
    micromodels, each refitted on every fold's training part, in the report shape of ``run_cv``."""
    from core.corpora import check_fold, grouped_split, load_epitome
    from classifiers.epitome_metrics import tfidf_probs

    check_fold(folds, 0)
    pairs, _ = load_epitome(data_path)
    base_parts, mm_parts, per_fold = {}, [], []
    for i in range(folds):
        splits = grouped_split(pairs, lambda p: p.sp_id, split_seed, folds=folds, fold=i)
        test = splits["test"]
        log.info("fold %d of %d: baselines on %d test pairs", i, folds, len(test))
        (tf_test,) = tfidf_probs(splits["train"], [test])
        for name, bp in baseline_preds(splits["train"], test, tf_test).items():
            base_parts.setdefault(name, []).append(bp)
        mm, info = micromodel_preds(splits["train"], splits["dev"], test, embedder=embedder)
        fold = {"fold": i, "model": MICROMODELS, "test_pairs": len(test), "micromodels": info}
        if mm is not None:
            mm_parts.append(mm)
            fold["metrics"] = info["metrics"] = metrics_of(mm)
        per_fold.append(fold)
    rows = {}
    if len(mm_parts) == folds:
        pooled = join(mm_parts)
        rows[f"{MICROMODELS}: pooled over folds"] = {"metrics": metrics_of(pooled), "level_f1": level_f1(pooled)}
        rows[f"{MICROMODELS}: mean ± sd of folds"] = {"metrics": aggregate([f["metrics"] for f in per_fold])}
    for name, parts in base_parts.items():
        bp = join(parts)
        rows[f"{name}: pooled over folds"] = {"metrics": level_only(bp), "level_f1": level_f1(bp)}
        rows[f"{name}: mean ± sd of folds"] = {"metrics": aggregate([level_only(p) for p in parts])}
    for row in rows.values():
        row["metrics"] = {m: {key: v if isinstance(v, dict) else {"mean": v, "sd": None} for key, v in r.items()}
                          for m, r in row["metrics"].items()}
    return {"commit": git_commit(), "split_seed": split_seed, "folds": folds, "folds_present": list(range(folds)),
            "test_pairs": sum(f["test_pairs"] for f in per_fold), "rows": rows, "per_fold": per_fold}


def markdown(report: dict) -> str:
    k = report["folds"]
    lines = [f"# EPITOME classifier: {k}-fold grouped cross-validation ({len(report['folds_present'])} of {k} "
             f"folds, {report['test_pairs']} test pairs, split seed {report['split_seed']})", "",
             f"commit {report['commit']}; metrics in %. Each model is scored on its own test fold; \"pooled\" "
             "joins every fold's test predictions, \"mean ± sd\" is over the per-fold figures. Baselines are "
             "refitted on each fold's training part.", ""]
    for m in MECHANISMS:
        lines += [f"## {m}", "", "| model | accuracy | macro-F1 | MCC | T-F1 | IOU-F1 | T-F1 (released conv.) | "
                                 "IOU-F1 (released conv.) |", "|---|---|---|---|---|---|---|---|"]
        for name, row in report["rows"].items():
            r = row["metrics"].get(m)
            if r is None:
                continue
            lines.append(f"| {name} | {_cell(r['accuracy'])} | {_cell(r['macro_f1'])} | {_cell(r['mcc'])} | "
                         f"{_cell(r.get('t_f1'))} | {_cell(r.get('iou_f1'))} | {_cell(r.get('t_f1_released'))} | "
                         f"{_cell(r.get('iou_f1_released'))} |")
        acc, f1 = PAPER[m]
        lines += [f"| EPITOME paper, Reddit (one random 75:5:20 split, RoBERTa + TalkLife DAPT) | {acc:.2f} | "
                  f"{f1:.2f} | | | | | |", ""]
    lines += ["## F1 of each level, pooled over folds (gold pairs in brackets)", "",
              "| model | " + " | ".join(f"{m} {lv}" for m in MECHANISMS for lv in (0, 1, 2)) + " |",
              "|---|" + "---|" * 9]
    for name, row in report["rows"].items():
        lf = row.get("level_f1")
        if lf:
            lines.append(f"| {name} | " + " | ".join(
                f"{100 * lf[m][str(lv)]['f1']:.1f} ({lf[m][str(lv)]['gold']})" for m in MECHANISMS for lv in (0, 1, 2))
                + " |")
    lines += ["", "## Macro-F1 of each fold", "",
              "Plain (with dev-fitted level biases) [mixed with tf-idf + LR]; the biases of levels 1 and 2, and the "
              "model's weight in the mixture.", "",
              "| fold | model | test pairs | ER | IP | EX | biases ER / IP / EX | weights ER / IP / EX |",
              "|---|---|---|---|---|---|---|---|"]
    for f in report["per_fold"]:
        if "metrics" not in f:
            continue
        cells = []
        for m in MECHANISMS:
            c = f"{100 * f['metrics'][m]['macro_f1']:.2f}"
            if "metrics_biased" in f:
                c += f" ({100 * f['metrics_biased'][m]['macro_f1']:.2f})"
            if "metrics_mixed" in f:
                c += f" [{100 * f['metrics_mixed'][m]['macro_f1']:.2f}]"
            cells.append(c)
        bias = " / ".join(f"{b['bias'][1]:+g}, {b['bias'][2]:+g}" for b in
                          (f["level_bias"][m] for m in MECHANISMS)) if "level_bias" in f else ""
        weights = " / ".join(f"{f['tfidf_mix'][m]['weight']:g}" for m in MECHANISMS) if "tfidf_mix" in f else ""
        lines.append(f"| {f['fold']} | {f['model']} | {f['test_pairs']} | " + " | ".join(cells)
                     + f" | {bias} | {weights} |")
    with_mm = [f for f in report["per_fold"] if f.get("micromodels", {}).get("thresholds")]
    if with_mm:
        lines += ["", f"## {MICROMODELS}: rationale thresholds picked on each fold's dev part (seed 001: 0.7)", "",
                  "| fold | ER | IP | EX | seed utterances ER / IP / EX |", "|---|---|---|---|---|"]
        for f in with_mm:
            t, n = f["micromodels"]["thresholds"], f["micromodels"]["seed_utterances"]
            lines.append(f"| {f['fold']} | " + " | ".join(f"{t[m]:.2f}" for m in MECHANISMS) + " | "
                         + " / ".join(str(n[m]) for m in MECHANISMS) + " |")
    return "\n".join(lines) + "\n"


def main(args) -> int:
    cfg = load_config(args)
    if args.model == "none":  # the baselines alone, over classifier.folds (default 10) folds
        report = run_baselines_cv(cfg.data_path(), cfg.classifier.folds or 10, cfg.classifier.split_seed)
        return write_report(args, cfg, report, markdown(report), "classifier-cv")
    models = [(str(d), EmpathyScorer.load(str(d))) for d in model_dirs(args.model)]
    report = run_cv(models, cfg.data_path())
    return write_report(args, cfg, report, markdown(report), "classifier-cv")
