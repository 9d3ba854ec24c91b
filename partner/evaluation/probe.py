"""partner-eval probe: does an empathy classifier use the seeker post? (seed 001 §4.5, §6)

(a) Context swap: every test response is scored under its own seeker post and under an
    unrelated one (another test pair's post, a fixed derangement). Reported: the share of pairs
    whose total (0-6) drops / stays / rises, the mean drop of the total and of the expected total,
    and the mean drop per mechanism.
(b) Generic phrases: seed 001's stock phrases ("I'm so sorry to hear that.", "What happened?",
    "I feel the same way.") appended to level-0 test responses (gold ER = IP = EX = 0), scored
    under their own seeker post and under a hand-written non-distress post ("I got promoted
    today!"). Reported: the rate at which the phrase's mechanism is called empathetic (level > 0)
    and the mean total, under each context.

A classifier that ignores context shows no difference at all in either part. The same command
measures every classifier folder, so future models are compared on equal terms, and adds the
micromodels baseline (seed 001; fitted on the training split): it never reads the seeker post, so its
drop is zero by construction, the reference point the seed asks for.

"Clear drop" (issue 3 leaves it undefined; this is the project's reading): in (a), the mean drop of
the total is positive, its 95 % bootstrap CI lies above 0 and the paired sign-flip permutation test
gives p < 0.01 (``partner.metrics.paired_comparison``, own minus swapped, item by item). (b) gets the
same paired statistics per phrase (own post minus non-distress post).
"""

from __future__ import annotations

import logging
import statistics

from classifiers.scorer import EmpathyScorer
from core.corpora import grouped_split, load_epitome
from partner.metrics import paired_comparison

from .classifier import git_commit, load_config, model_dirs, write_report

log = logging.getLogger(__name__)

CLEAR_DROP_P = 0.01

PHRASES = {"ER": "I'm so sorry to hear that.", "EX": "What happened?", "IP": "I feel the same way."}
# Non-distress posts in the spirit of seed 001's PersonaChat/Ubuntu contexts; never used in training.
NEUTRAL_POSTS = [
    "I got promoted today! Finally all the hard work paid off.",
    "Just finished my first marathon this morning, legs are dead but I'm so happy.",
    "Does anyone know how to set up a static IP address on Ubuntu 22.04?",
    "We adopted a puppy last weekend and she already knows how to sit.",
    "What's a good recipe for banana bread that doesn't need eggs?",
    "My sister is getting married next month and I'm going to be the maid of honor!",
    "Anyone else watching the football tonight? Great game so far.",
    "I repainted my living room blue and it looks amazing.",
    "Looking for book recommendations, I loved The Martian.",
    "Passed my driving test on the first try today!",
]


def derangement(pairs) -> list[int]:
    """For each pair, the index of another pair with a different seeker post (deterministic)."""
    n = len(pairs)
    out = []
    for i in range(n):
        j = (i + n // 2) % n
        k = 0
        while pairs[j].sp_id == pairs[i].sp_id and k < n:
            j, k = (j + 1) % n, k + 1
        out.append(j)
    return out


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def paired_drop(own, other) -> dict:
    """Paired statistics of ``own.total - other.total`` and whether it is a clear drop (module docstring)."""
    t = paired_comparison([a.total for a in own], [b.total for b in other])
    t["clear_drop"] = bool(t["mean_diff"] is not None and t["mean_diff"] > 0 and t["ci95"][0] > 0
                           and t["p_value"] < CLEAR_DROP_P)
    return t


def context_swap(scorer, pairs, batch_size: int = 32) -> dict:
    other = derangement(pairs)
    responses = [p.response_post for p in pairs]
    own = scorer.score([p.seeker_post for p in pairs], responses, batch_size, rationales=False, progress=True)
    swap = scorer.score([pairs[j].seeker_post for j in other], responses, batch_size, rationales=False,
                        progress=True)
    drops = [a.total - b.total for a, b in zip(own, swap)]
    n = len(drops)
    return {
        "pairs": n,
        "share_drop": sum(d > 0 for d in drops) / n,
        "share_same": sum(d == 0 for d in drops) / n,
        "share_rise": sum(d < 0 for d in drops) / n,
        "mean_drop_total": _mean(drops),
        "mean_drop_expected_total": _mean(a.expected_total - b.expected_total for a, b in zip(own, swap)),
        "mean_total_own": _mean(a.total for a in own),
        "mean_total_swapped": _mean(b.total for b in swap),
        "mean_drop_level": {m: _mean(a.levels[m] - b.levels[m] for a, b in zip(own, swap)) for m in PHRASES},
        "share_level_changed": {m: _mean(a.levels[m] != b.levels[m] for a, b in zip(own, swap)) for m in PHRASES},
        "drop_test": paired_drop(own, swap),
    }


def generic_phrases(scorer, pairs, batch_size: int = 32) -> dict:
    base = [p for p in pairs if p.total == 0]
    neutral = [NEUTRAL_POSTS[i % len(NEUTRAL_POSTS)] for i in range(len(base))]
    out = {"responses": len(base), "phrases": {}}
    for mech, phrase in [(None, "")] + list(PHRASES.items()):
        texts = [f"{p.response_post.rstrip()} {phrase}".strip() for p in base]
        own = scorer.score([p.seeker_post for p in base], texts, batch_size, rationales=False)
        neu = scorer.score(neutral, texts, batch_size, rationales=False)
        row = {"phrase": phrase or "(none)", "mechanism": mech,
               "mean_total_own": _mean(r.total for r in own), "mean_total_neutral": _mean(r.total for r in neu),
               "mean_expected_total_own": _mean(r.expected_total for r in own),
               "mean_expected_total_neutral": _mean(r.expected_total for r in neu),
               "drop_test": paired_drop(own, neu)}
        for m in PHRASES:
            row[f"yes_rate_{m}_own"] = _mean(r.levels[m] > 0 for r in own)
            row[f"yes_rate_{m}_neutral"] = _mean(r.levels[m] > 0 for r in neu)
        out["phrases"][mech or "none"] = row
    return out


def probe(scorer, pairs, batch_size: int = 32) -> dict:
    return {"context_swap": context_swap(scorer, pairs, batch_size),
            "generic_phrases": generic_phrases(scorer, pairs, batch_size)}


def _test_cell(t: dict) -> str:
    if t["mean_diff"] is None:
        return "n/a"
    lo, hi = t["ci95"]
    return f"{t['mean_diff']:+.3f} [{lo:+.2f}, {hi:+.2f}], p {t['p_value']:.3g}"


def fold_notes(results: dict[str, dict]) -> list[str]:
    """Markdown lines on the models probed on their own cross-validation test fold, with the mean drop
    over them (empty when there are none)."""
    folded = {n: r for n, r in results.items() if "test_split" in r}
    if not folded:
        return []
    lines = ["Models trained on a cross-validation fold are probed on their own test fold: " + "; ".join(
        f"{n} (fold {r['test_split']['fold']} of {r['test_split']['folds']}, {r['test_split']['test_pairs']} pairs)"
        for n, r in folded.items()) + "."]
    drops = [r["context_swap"]["drop_test"]["mean_diff"] for r in folded.values()]
    drops = [x for x in drops if x is not None]
    if len(drops) > 1:
        clear = sum(bool(r["context_swap"]["drop_test"]["clear_drop"]) for r in folded.values())
        lines.append(f"Over these {len(drops)} models, part (a)'s mean drop of the total is {statistics.fmean(drops):+.3f} "
                     f"(sd {statistics.stdev(drops):.3f}, min {min(drops):+.3f}); {clear} of {len(folded)} are clear drops.")
    return lines + [""]


def markdown(results: dict[str, dict], meta: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    where = (f"{meta['test_pairs']} grouped test pairs" if not all("test_split" in r for r in results.values())
             else "each model on its own cross-validation test fold")
    lines = [f"# Context probe ({where}, split seed {meta['split_seed']}, commit {meta['commit']})", "",
             *fold_notes(results),
             "## (a) Each response under its own vs an unrelated seeker post", "",
             f"Clear drop = mean drop of the total > 0, 95 % bootstrap CI above 0, paired sign-flip p < "
             f"{CLEAR_DROP_P}.", "",
             "| model | drops % | same % | rises % | mean drop of total [95 % CI], p | clear drop | "
             "mean drop of E[total] | mean total own → swapped | ER / IP / EX level changed % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        a = r["context_swap"]
        ch = " / ".join(pct(a["share_level_changed"][m]) for m in ("ER", "IP", "EX"))
        lines.append(f"| {name} | {pct(a['share_drop'])} | {pct(a['share_same'])} | {pct(a['share_rise'])} | "
                     f"{_test_cell(a['drop_test'])} | {'yes' if a['drop_test']['clear_drop'] else 'no'} | "
                     f"{a['mean_drop_expected_total']:.3f} | "
                     f"{a['mean_total_own']:.2f} → {a['mean_total_swapped']:.2f} | {ch} |")
    lines += ["", "## (b) Generic phrase added to level-0 responses: own post vs a non-distress post", "",
              "'yes' = the phrase's mechanism predicted at level > 0 (seed 001 Table 3 counts).", "",
              "| model | phrase | yes % own | yes % non-distress | mean total own | mean total non-distress | "
              "drop own − non-distress [95 % CI], p |",
              "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        b = r["generic_phrases"]
        for key, row in b["phrases"].items():
            m = row["mechanism"]
            yo = pct(row[f"yes_rate_{m}_own"]) if m else "-"
            yn = pct(row[f"yes_rate_{m}_neutral"]) if m else "-"
            lines.append(f"| {name} | {row['phrase']} | {yo} | {yn} | {row['mean_total_own']:.2f} | "
                         f"{row['mean_total_neutral']:.2f} | {_test_cell(row['drop_test'])} |")
    return "\n".join(lines) + "\n"


MICROMODELS = "micromodels (seed 001, no seeker post; fitted on the training split)"


def micromodels_scorer(pairs, split_seed: int, embedder=None):
    """The micromodels baseline fitted on the grouped split's training part (thresholds on dev), as a
    scorer: the reference row whose drop is zero by construction. None when MiniLM cannot be loaded."""
    from core.corpora import grouped_split
    from classifiers.micromodels import MicromodelScorer, Micromodels, default_embedder
    from core.registry import ModelResolutionError

    splits = grouped_split(pairs, lambda p: p.sp_id, split_seed)
    try:
        emb = embedder if embedder is not None else default_embedder("minilm")
        return MicromodelScorer(Micromodels.fit(splits["train"], splits["dev"], emb))
    except (ImportError, ModelResolutionError) as exc:
        log.warning("micromodels baseline unavailable: %s", exc)
        return None


def main(args) -> int:
    cfg = load_config(args)
    pairs, _ = load_epitome(cfg.data_path())
    test = grouped_split(pairs, lambda p: p.sp_id, cfg.classifier.split_seed)["test"]
    results = {}
    for d in model_dirs(args.model):
        log.info("probing %s", d)
        scorer = EmpathyScorer.load(str(d))
        mcfg = scorer.model.cfg
        if mcfg.folds:  # a cross-validation model: its own test fold, the only pairs it has not seen
            own = grouped_split(pairs, lambda p: p.sp_id, mcfg.split_seed, folds=mcfg.folds, fold=mcfg.fold)["test"]
            results[str(d)] = {**probe(scorer, own),
                               "test_split": {"folds": mcfg.folds, "fold": mcfg.fold, "test_pairs": len(own)}}
        else:
            results[str(d)] = probe(scorer, test)
    scorer = micromodels_scorer(pairs, cfg.classifier.split_seed)
    if scorer is not None:
        results[MICROMODELS] = probe(scorer, test)
    meta = {"commit": git_commit(), "split_seed": cfg.classifier.split_seed, "test_pairs": len(test)}
    return write_report(args, cfg, {**meta, "models": results}, markdown(results, meta), "probe")
