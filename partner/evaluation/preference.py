"""partner-eval preference: does the preference model predict raters on posts it never saw?

On the held-out seeker posts recorded in the model's ``preference.json`` (grouped by post, so
no post it trained on is here): per compared item, the majority ``overall`` answer of its
raters; on the decisive items (ties and split votes left out), the share where each predictor
scores the chosen reply higher, with Wilson 95 % intervals. A predictor that scores the two
replies the same counts half (a coin flip); the share of items where it tells them apart is
reported beside it. The predictors are what a user would otherwise reach for: the EPITOME
total, specificity (cosine of post and reply embeddings), length, coherence of adjacent
sentences, the reverse-LM mutual information and the reference-LM fluency.

Harm: on items where the raters flagged exactly one reply as inappropriate or harmful, the
share where the predictor scores that reply lower (a paired AUC), and the AUC over every
held-out reply (flagged by any rater or not).

The ratings come from language-model raters working blind from the rubric, not clinicians.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

NOTE = ("Ratings: language-model raters working blind from the rubric (ratings/rubric.md), not clinicians; "
        "treat them as a consistent proxy for a careful reader.")


def wilson(k: float, n: int) -> tuple[float, float]:
    from partner.ab.stats import wilson_interval

    return wilson_interval(k, n) if n else (math.nan, math.nan)


def pair_accuracy(score_a: list[float], score_b: list[float], a_wins: list[bool]) -> dict:
    """Accuracy of 'the higher score wins' (equal scores count half), with the share told apart."""
    n = len(a_wins)
    right, apart, right_apart = 0.0, 0, 0
    for sa, sb, aw in zip(score_a, score_b, a_wins):
        if math.isclose(sa, sb, rel_tol=0, abs_tol=1e-9):
            right += 0.5
            continue
        apart += 1
        ok = (sa > sb) == aw
        right += ok
        right_apart += ok
    lo, hi = wilson(right, n)
    return {"n": n, "accuracy": right / n if n else math.nan, "ci": [lo, hi], "told_apart": apart / n if n else 0,
            "accuracy_told_apart": right_apart / apart if apart else math.nan}


def harm_metrics(items, score: Callable[[list[str], list[str]], list[float]], scores_cache: dict) -> dict:
    """Paired: items where raters flagged exactly one side; global: AUC over all replies (any flag = harmful)."""
    from sklearn.metrics import roc_auc_score

    paired_a, paired_b, flagged_a = [], [], []
    labels, values = [], []
    for it in items:
        sa, sb = scores_cache[(it.seeker_post, it.reply_a)], scores_cache[(it.seeker_post, it.reply_b)]
        flags = it.harm
        fa = any(f in ("A", "both") for f in flags)
        fb = any(f in ("B", "both") for f in flags)
        labels += [fa, fb]
        values += [sa, sb]
        one_side = {f for f in flags if f != "none"}
        if one_side in ({"A"}, {"B"}):
            paired_a.append(sa)
            paired_b.append(sb)
            flagged_a.append(one_side == {"A"})
    # "scores the flagged reply lower" = the unflagged side wins
    paired = pair_accuracy(paired_a, paired_b, [not f for f in flagged_a])
    auc = roc_auc_score(labels, [-v for v in values]) if 0 < sum(labels) < len(labels) else math.nan
    return {"paired": paired, "auc_all_replies": auc, "replies": len(labels), "flagged": int(sum(labels))}


def predictors(cfg, names: list[str], device: str | None = None) -> dict[str, Callable]:
    """name -> fn(seeker_posts, replies) -> scores (higher = predicted better)."""
    out: dict[str, Callable] = {}

    def epitome(seekers, replies):
        from rewards.empathy import EmpathyReward

        return EmpathyReward(device=device).totals(seekers, replies)

    def specificity(seekers, replies):
        from core.registry import load_sentence_embedder
        from partner import metrics

        return metrics.specificity(seekers, replies, load_sentence_embedder("minilm", device=device))

    def length(seekers, replies):
        return [float(len(r.split())) for r in replies]

    def coherence(seekers, replies):
        from classifiers.coherence import CoherenceScorer
        from core.text import split_sentences

        scorer = CoherenceScorer.load(None, device=device)
        pairs, owner = [], []
        for i, r in enumerate(replies):
            sents = split_sentences(r)
            for a, b in zip(sents, sents[1:]):
                pairs.append((a, b))
                owner.append(i)
        probs = scorer.prob([a for a, _ in pairs], [b for _, b in pairs]) if pairs else []
        sums, counts = [0.0] * len(replies), [0] * len(replies)
        for i, p in zip(owner, probs):
            sums[i] += p
            counts[i] += 1
        return [s / c if c else 1.0 for s, c in zip(sums, counts)]  # one sentence: nothing incoherent

    def lm_terms(which):
        def fn(seekers, replies):
            from rewards.config import RewardConfig
            from rewards.stack import RewardStack

            rc = RewardConfig(w_empathy=0, w_fluency=1.0 if which == "fluency" else 0, w_coherence=0,
                              w_mi=1.0 if which == "mi" else 0)
            stack = RewardStack(rc, policy_backbone=cfg.policy.backbone, run_dir=None, device=device)
            return stack.components[which](seekers, replies, replies)
        return fn

    table = {"epitome_total": epitome, "specificity": specificity, "length": length, "coherence": coherence,
             "mi": lm_terms("mi"), "fluency": lm_terms("fluency")}
    for n in names:
        if n not in table:
            raise ValueError(f"unknown predictor {n!r}; choose from {sorted(table)}")
        out[n] = table[n]
    return out


def _cached(path: Path | None, name: str, texts: list[tuple[str, str]], fn) -> list[float]:
    """The baselines do not change between models: their scores of the held-out replies are kept in
    ``path`` (JSON: name -> [[post, reply, score], ...]) and reused when they cover every reply."""
    import json

    from core.jsonio import atomic_write_json

    store = json.loads(path.read_text()) if path is not None and path.exists() else {}
    known = {(p, r): v for p, r, v in store.get(name, [])}
    if all(t in known for t in texts):
        return [known[t] for t in texts]
    values = fn([s for s, _ in texts], [r for _, r in texts])
    if path is not None:
        store[name] = [[p, r, v] for (p, r), v in zip(texts, values)]
        atomic_write_json(path, store)
    return values


def evaluate(model_dirs: list[str] | str | None, cfg, out: Path, baselines: list[str], device: str | None = None,
             scores_cache: Path | None = None) -> dict:
    """One model on its held-out posts, or several (the folds of a grouped cross-validation,
    ``preference.folds``), each scoring only the posts it held out, pooled: their held-out posts
    must not overlap."""
    from core.jsonio import UsageError, atomic_write_json, atomic_write_text
    from classifiers.preference import PreferenceModel
    from partner.ab.pairs import item_outcomes, load_studies, source_of, study_dirs
    from partner.stages.preference import ratings_root

    if not isinstance(model_dirs, (list, tuple)):
        model_dirs = [model_dirs]
    models, held, owner = [], set(), {}
    for d in model_dirs:
        model = PreferenceModel.from_pretrained(d, device=device)
        mine = set(model.meta.get("data", {}).get("heldout_inputs", []))
        if not mine:
            raise UsageError(f"{d or 'the shipped model'} records no held-out posts (preference.json data.heldout_inputs)")
        both = sorted(mine & held)
        if both:
            raise UsageError(f"{d} holds out {len(both)} post(s) another --model also holds out (e.g. {both[0]}): "
                             "pooled folds must partition the posts (same preference.split_seed and folds, "
                             "each fold once)")
        held |= mine
        owner.update(dict.fromkeys(mine, len(models)))
        models.append(model)
    root = Path(models[0].config.ratings) if models[0].config.ratings else ratings_root(cfg)
    pairs = [p for p in load_studies(study_dirs(root)) if p.input in held]
    items = item_outcomes(pairs)
    decisive = [o for o in items if o.answer in ("A", "B")]
    log.info("held-out: %d posts, %d items, %d decisive overall", len(held), len(items), len(decisive))
    texts = sorted({(o.seeker_post, r) for o in items for r in (o.reply_a, o.reply_b)})
    seekers, replies = [s for s, _ in texts], [r for _, r in texts]
    text_owner = {(o.seeker_post, r): owner[o.input] for o in items for r in (o.reply_a, o.reply_b)}

    def preference(seekers, replies):
        """Each reply scored by the model that held its post out."""
        values = [0.0] * len(replies)
        for k, model in enumerate(models):
            idx = [i for i, t in enumerate(zip(seekers, replies)) if text_owner[t] == k]
            for i, v in zip(idx, model.score([seekers[i] for i in idx], [replies[i] for i in idx]) if idx else []):
                values[i] = v
        return values

    fns = {"preference": preference}
    fns.update(predictors(cfg, baselines, device))
    results = {}
    for name, fn in fns.items():
        log.info("scoring %d replies with %s", len(texts), name)
        values = fn(seekers, replies) if name == "preference" else _cached(scores_cache, name, texts, fn)
        cache = dict(zip(texts, values))
        row = {}
        for label, subset in (("all", decisive), *((src, [o for o in decisive if source_of(o.input) == src])
                                                   for src in sorted({source_of(o.input) for o in decisive}))):
            row[label] = pair_accuracy([cache[(o.seeker_post, o.reply_a)] for o in subset],
                                       [cache[(o.seeker_post, o.reply_b)] for o in subset],
                                       [o.answer == "A" for o in subset])
        row["harm"] = harm_metrics(items, fn, cache)
        results[name] = row
    report = {"model": ", ".join(str(d or "models/preference") for d in model_dirs), "folds": len(models),
              "heldout_posts": len(held), "items": len(items),
              "decisive": len(decisive), "results": results, "note": NOTE}
    atomic_write_json(out / "preference_eval.json", _safe(report))
    atomic_write_text(out / "preference_eval.md", markdown(report))
    return report


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def markdown(report: dict) -> str:
    res = report["results"]
    srcs = [k for k in next(iter(res.values())) if k not in ("all", "harm")]
    L = [f"# Does the preference model predict raters? ({report['model']})", "",
         *([f"Grouped cross-validation: {report['folds']} models, each scoring only the posts it held out, pooled.", ""]
           if report.get("folds", 1) > 1 else []),
         f"Held-out seeker posts: {report['heldout_posts']} (never trained on); compared items: {report['items']}; "
         f"decisive overall items (majority of raters, ties and split votes left out): {report['decisive']}.", "",
         "Accuracy = share of decisive items where the predictor scores the chosen reply higher (equal scores count "
         "half), Wilson 95 % CI; *told apart* = share of items where its two scores differ.", "",
         "| predictor | accuracy % (95 % CI) | told apart % | accuracy where told apart % | "
         + " | ".join(f"{s} accuracy % (n)" for s in srcs) + " | harm: flagged reply scored lower % (n) | harm AUC, all replies |",
         "|---|---|---:|---:|" + "---|" * len(srcs) + "---|---:|"]
    for name, r in res.items():
        a = r["all"]
        h = r["harm"]
        auc = "n/a" if math.isnan(h["auc_all_replies"]) else f"{h['auc_all_replies']:.3f}"
        L.append(f"| {name} | {_pct(a['accuracy'])} ({_pct(a['ci'][0])}–{_pct(a['ci'][1])}) | {_pct(a['told_apart'])} | "
                 f"{_pct(a['accuracy_told_apart'])} | "
                 + " | ".join(f"{_pct(r[s]['accuracy'])} ({r[s]['n']})" for s in srcs)
                 + f" | {_pct(h['paired']['accuracy'])} ({h['paired']['n']}) | "
                 f"{auc} |")
    L += ["", report["note"]]
    return "\n".join(L) + "\n"


def _safe(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_safe(v) for v in obj]
    return obj


def main(args) -> int:
    from core.jsonio import UsageError
    from partner.config import DEFAULT_CONFIG, load_config

    cfg = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    models = args.model or [None]
    if len(models) > 1 and not args.out:
        raise UsageError("partner-eval preference: several --model folders (pooled folds) need --out")
    out = Path(args.out) if args.out else Path(models[0] or "models/preference") / "eval"
    baselines = [] if args.no_baselines else args.baselines
    report = evaluate(models, cfg, out, baselines, device=args.device,
                      scores_cache=Path(args.scores_cache) if args.scores_cache else out / "baseline_scores.json")
    print(markdown(report))
    log.info("report -> %s", out / "preference_eval.md")
    return 0
