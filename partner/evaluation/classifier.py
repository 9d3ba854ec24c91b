"""partner-eval classifier: the EPITOME classifier on the grouped test split, with baselines.

``--model`` takes one folder or several, comma-separated. With ``--cv`` they are the folds of one
k-fold cross-validation instead (``partner.evaluation.cross_validation``, built on this module).
Models whose configs differ only in the training seed form one row, reported as mean ± sd over
their seeds; a model trained with ``context: none`` is the response-only baseline. The majority
class, tf-idf + logistic regression and micromodels (seed 001: never reads the seeker post;
``classifiers.micromodels``, rationale thresholds picked on the dev split) baselines are fitted on
the training split on the fly.

Per mechanism: accuracy and macro-F1 pooled over the test set, MCC (level > 0 vs 0), rationale
T-F1 and IOU-F1 at 0.5 under seed 001's convention (level 0 = empty rationale) and the released
EPITOME code's (level 0 = whole response); also the per-batch-averaged macro-F1 the EPITOME code
reports, for comparison with published numbers only.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from pathlib import Path

from classifiers.config import EpitomeConfig
from classifiers.epitome_metrics import level_metrics, majority_baseline, rationale_metrics, tfidf_baseline
from classifiers.scorer import EmpathyScorer, SHIPPED
from core.configuration import from_dict
from core.corpora import epitome_splits
from core.jsonio import atomic_write_json, atomic_write_text
from core.provenance import git_commit
from partner.config import DEFAULT_CONFIG, load_config as load

log = logging.getLogger(__name__)

MECHANISMS = ("ER", "IP", "EX")
PAPER = {"ER": (79.43, 74.46), "IP": (84.04, 62.60), "EX": (92.61, 72.58)}  # seed 000 Table 3, Reddit
LEVEL_KEYS = ("accuracy", "macro_f1", "mcc", "macro_f1_per_batch")
RAT_KEYS = ("t_f1", "iou_f1", "t_f1_released", "iou_f1_released")




def load_config(args):
    return load(getattr(args, "config", None) or DEFAULT_CONFIG, getattr(args, "overrides", None) or [])


def model_dirs(arg: str | None) -> list[Path]:
    if not arg:
        return [SHIPPED]
    return [Path(x.strip()) for x in arg.split(",") if x.strip()]


def test_split(cfg):
    return epitome_splits(cfg.data_path(), seed=cfg.classifier.split_seed)


def predict_model(scorer, test) -> dict:
    """Per mechanism, the gold and predicted levels and rationale masks of one model on ``test``."""
    raw = scorer.predict([p.seeker_post for p in test], [p.response_post for p in test], batch_size=64,
                         spans=[p.rationales for p in test], progress=True)
    out = {}
    for j, m in enumerate(scorer.model.mechanisms):
        gmask, pmask = [], []
        for i in range(len(test)):
            labels = raw["token_labels"][i][j]
            keep = labels >= 0
            gmask.append(labels[keep].tolist())
            pmask.append((raw["token_probs"][i][j][keep] > scorer.threshold).long().tolist())
        out[m] = {"gold": [p.levels[m] for p in test], "pred": raw["probs"][:, j].argmax(-1).tolist(),
                  "gmask": gmask, "pmask": pmask, "probs": raw["probs"][:, j].tolist()}
    return out


def metrics_of(preds: dict) -> dict:
    """Level and rationale metrics from ``predict_model``'s output (or several folds' of it, joined)."""
    out = {}
    for m, p in preds.items():
        res = level_metrics(p["gold"], p["pred"])
        res.update(rationale_metrics(p["gmask"], p["pmask"], p["gold"], p["pred"], "empty"))
        rel = rationale_metrics(p["gmask"], p["pmask"], p["gold"], p["pred"], "released")
        res.update(t_f1_released=rel["t_f1"], iou_f1_released=rel["iou_f1"])
        out[m] = res
    return out


def evaluate_model(scorer, test) -> dict:
    """Per-mechanism level and rationale metrics of one trained model."""
    return metrics_of(predict_model(scorer, test))


MICROMODELS = "micromodels (seed 001, no seeker post)"


def micromodel_preds(train, dev, test, seed: int = 0, embedder=None) -> tuple[dict | None, dict]:
    """``predict_model``-shaped predictions of micromodels fitted on ``train`` (thresholds on ``dev``)
    and their thresholds; (None, {"error": why}) when the sentence embedder cannot be loaded."""
    from classifiers.micromodels import Micromodels, default_embedder, predictions
    from core.registry import ModelResolutionError

    try:
        embedder = embedder if embedder is not None else default_embedder("minilm")
        model = Micromodels.fit(train, dev, embedder, seed=seed)
        preds = predictions(model, test)
    except (ImportError, ModelResolutionError) as exc:
        log.warning("micromodels baseline unavailable: %s", exc)
        return None, {"error": str(exc)}
    if hasattr(embedder, "save"):
        embedder.save()
    return preds, {"thresholds": model.thresholds, "seed_utterances": model.meta["seeds"]}


def baseline_rows(train, test, dev=None, embedder=None) -> dict[str, dict]:
    """Majority class and tf-idf + LR rows; with ``dev``, a micromodels row too."""
    rows = {}
    for name, preds, has_rat in (("majority class", majority_baseline(train, test), True),
                                 ("tf-idf + logistic regression", tfidf_baseline(train, test), False)):
        row = {}
        for m in MECHANISMS:
            gold = [p.levels[m] for p in test]
            row[m] = level_metrics(gold, preds[m])
            if has_rat and all(x == 0 for x in preds[m]):
                # Predicting level 0 everywhere predicts an empty rationale everywhere.
                row[m].update(t_f1=sum(g == 0 for g in gold) / len(gold), iou_f1=sum(g == 0 for g in gold) / len(gold),
                              t_f1_released=None, iou_f1_released=None)
        rows[name] = {"seeds": 1, "models": [], "metrics": {m: {k: {"mean": v, "sd": None} for k, v in row[m].items()}
                                                             for m in MECHANISMS}}
    if dev is not None:
        preds, info = micromodel_preds(train, dev, test, embedder=embedder)
        if preds is not None:
            rows[MICROMODELS] = {**info, "seeds": 1, "models": [], "metrics": {
                m: {k: {"mean": v, "sd": None} for k, v in r.items()} for m, r in metrics_of(preds).items()}}
    return rows


def group_label(cfg) -> str:
    if cfg.context == "none":
        kind = "response-only (no seeker post)"
    else:
        kind = "EPITOME (seeker attention)"
    extras = []
    if cfg.negatives > 0:
        extras.append(f"negatives {cfg.negatives:g}")
    if cfg.lambda_match > 0:
        extras.append(f"match loss {cfg.lambda_match:g}")
    if list(cfg.mechanisms) != list(MECHANISMS):
        extras.append("+".join(cfg.mechanisms))
    return f"{kind}, {cfg.backbone}, {cfg.finetune}" + (f", {', '.join(extras)}" if extras else "")


def aggregate(runs: list[dict]) -> dict:
    out = {}
    for m in MECHANISMS:
        if any(m not in r for r in runs):
            continue
        out[m] = {}
        for k in runs[0][m]:
            vals = [r[m][k] for r in runs if r[m].get(k) is not None]
            if not vals:
                out[m][k] = {"mean": None, "sd": None}
                continue
            out[m][k] = {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else None}
    return out


def _cell(v: dict | None, scale: float = 100.0) -> str:
    if not v or v.get("mean") is None:
        return "n/a"
    s = f"{scale * v['mean']:.2f}"
    if v.get("sd") is not None:
        s += f" ± {scale * v['sd']:.2f}"
    return s


def markdown(report: dict) -> str:
    lines = [f"# EPITOME classifier: grouped test split ({report['test_pairs']} pairs, split seed "
             f"{report['split_seed']})", "",
             f"commit {report['commit']}; metrics in %, mean ± sd over seeds where a row has several; "
             "macro-F1 and accuracy pooled over the test set; MCC: level > 0 vs 0.", ""]
    mm = report["rows"].get(MICROMODELS)
    if mm:
        lines += [f"{MICROMODELS}: seed utterances per mechanism {mm['seed_utterances']}, rationale thresholds "
                  f"picked on the dev split "
                  f"{mm['thresholds']} (seed 001 used 0.7); it never reads the seeker post.", ""]
    for m in MECHANISMS:
        lines += [f"## {m}", "",
                  "| model | seeds | accuracy | macro-F1 | MCC | T-F1 | IOU-F1 | T-F1 (released conv.) | "
                  "IOU-F1 (released conv.) | macro-F1 per batch |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, row in report["rows"].items():
            r = row["metrics"].get(m)
            if r is None:
                continue
            lines.append(f"| {name} | {row['seeds']} | {_cell(r['accuracy'])} | {_cell(r['macro_f1'])} | "
                         f"{_cell(r['mcc'])} | {_cell(r.get('t_f1'))} | {_cell(r.get('iou_f1'))} | "
                         f"{_cell(r.get('t_f1_released'))} | {_cell(r.get('iou_f1_released'))} | "
                         f"{_cell(r['macro_f1_per_batch'])} |")
        acc, f1 = PAPER[m]
        lines += [f"| EPITOME paper, Reddit (random 75:5:20 split, RoBERTa + TalkLife DAPT) | | {acc:.2f} | "
                  f"{f1:.2f} | | | | | | |", ""]
    return "\n".join(lines) + "\n"


def main(args) -> int:
    cfg = load_config(args)
    splits = test_split(cfg)
    test = splits["test"]
    groups: dict[str, list] = {}
    for d in model_dirs(args.model):
        scorer = EmpathyScorer.load(str(d))
        mcfg = scorer.model.cfg
        key = dataclasses.asdict(dataclasses.replace(mcfg, seed=0))
        label = group_label(from_dict(EpitomeConfig, key))
        if mcfg.split_seed != cfg.classifier.split_seed:
            log.warning("%s was trained on split seed %d, evaluated on split seed %d: test pairs may have "
                        "been seen in training", d, mcfg.split_seed, cfg.classifier.split_seed)
        log.info("evaluating %s (%s, seed %d)", d, label, mcfg.seed)
        groups.setdefault(label, []).append((str(d), mcfg.seed, evaluate_model(scorer, test)))
    rows = {}
    for label, runs in groups.items():
        rows[label] = {"seeds": len(runs), "models": [{"path": p, "seed": s, "metrics": r} for p, s, r in runs],
                       "metrics": aggregate([r for _, _, r in runs])}
    rows.update(baseline_rows(splits["train"], test, splits["dev"]))
    report = {"commit": git_commit(), "split_seed": cfg.classifier.split_seed, "test_pairs": len(test),
              "train_pairs": len(splits["train"]), "rows": rows}
    return write_report(args, cfg, report, markdown(report), "classifier")


def write_report(args, cfg, report: dict, md: str, stem: str) -> int:
    """``stem``.json and ``stem``.md into --out (default: the run dir's eval/), and the markdown to stdout."""
    out = Path(args.out) if args.out else Path(cfg.run_dir) / "eval"
    atomic_write_json(out / f"{stem}.json", report)
    atomic_write_text(out / f"{stem}.md", md)
    print(md)
    log.info("wrote %s and %s", out / f"{stem}.json", out / f"{stem}.md")
    return 0
