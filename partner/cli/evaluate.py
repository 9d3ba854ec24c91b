"""partner-eval: evaluate a classifier, probe its use of context, or evaluate rewrites.

Each subcommand is ``main(args) -> int`` in its own module (see COMMANDS), imported only when it
runs; ``classifier --cv`` is ``partner.evaluation.cross_validation``.
"""

from __future__ import annotations

import argparse
import importlib

from .common import add_common, add_config, run

COMMANDS = {
    "classifier": "partner.evaluation.classifier",
    "probe": "partner.evaluation.probe",
    "rewrites": "partner.evaluation.rewrites",
    "stock": "partner.evaluation.stock",
    "preference": "partner.evaluation.preference",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partner-eval", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("classifier", help="accuracy, macro-F1, MCC and rationale F1 on the test split, "
                                          "with baselines")
    c.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    c.add_argument("--out", default=None, help="folder for the JSON and markdown reports")
    c.add_argument("--cv", action="store_true",
                   help="k-fold cross-validation: --model lists one model per fold (trained with classifier.folds=k, "
                        "classifier.fold=i), each scored on its own test fold, predictions pooled over folds")
    add_config(c)
    pr = sub.add_parser("probe", help="context probe: does the classifier use the seeker post?")
    pr.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    pr.add_argument("--out", default=None, help="folder for the JSON and markdown reports")
    add_config(pr)
    r = sub.add_parser("rewrites", help="empathy change, perplexity, specificity, diversity, coherence, "
                                        "edit rate, BLEU for partner-rewrite outputs")
    r.add_argument("files", nargs="+", help="one or more partner-rewrite outputs (compared side by side)")
    r.add_argument("--out", default=None, help="folder for JSON, markdown and PNG plots")
    r.add_argument("--against", default=None, metavar="FILE|METHOD",
                   help="compare every other file with this one, input by input (default: the last file)")
    r.add_argument("--scorer", default=None, metavar="CLASSIFIER",
                   help="re-score every file's empathy with this classifier folder instead of reading the files' "
                        "own scores (a held-out judge: one the rewriter never trained or reranked against); "
                        "'micromodels' = the shipped micromodels baseline, a judge that never reads the seeker post")
    r.add_argument("--context-check", action="store_true",
                   help="also score every original and rewrite under an unrelated seeker post: how much of the "
                        "empathy gain does not depend on the post (two more classifier passes per file; four when the "
                        "files' own scores are read)")
    add_config(r)
    st = sub.add_parser("stock", help="stock-sentence baseline: the empathy change one fixed sentence inserted into "
                                      "every response buys (pick it on dev, report it on test)")
    st.add_argument("input", help="JSONL with seeker_post and response_post (e.g. the dev split export)")
    st.add_argument("--sentences", nargs="+", default=None, metavar="TEXT",
                    help="stock sentences to try (default: seed 001's seeds and common sympathy phrases)")
    st.add_argument("--at", nargs="+", choices=("start", "end"), default=["start"],
                    help="where each sentence is inserted (default: start, as --method template)")
    st.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    st.add_argument("--batch-size", type=int, default=32)
    st.add_argument("--out", default=None, help="folder for stock.json and stock.md (default: beside the input)")
    pf = sub.add_parser("preference", help="does the preference model predict raters? accuracy on held-out posts' "
                                           "decisive overall judgments beside EPITOME, specificity, length, coherence, "
                                           "MI and fluency, and how it scores replies flagged harmful")
    pf.add_argument("--model", nargs="+", default=None, metavar="DIR",
                    help="preference model folder (default: the shipped models/preference); several: the folds of a "
                         "grouped cross-validation (preference.folds), each scoring the posts it held out, pooled")
    pf.add_argument("--out", default=None, help="folder for preference_eval.json/.md (default: MODEL/eval)")
    pf.add_argument("--baselines", nargs="+", default=["epitome_total", "specificity", "length", "coherence", "mi",
                                                       "fluency"], help="predictors to compare with (default: all)")
    pf.add_argument("--no-baselines", action="store_true", help="the preference model only")
    pf.add_argument("--scores-cache", default=None, metavar="JSON",
                    help="reuse the baselines' scores of the held-out replies from this file, and add to it "
                         "(default: OUT/baseline_scores.json)")
    pf.add_argument("--device", default=None, help="cpu, cuda (default: best available)")
    add_config(pf)
    for s in (c, pr, r, st, pf):
        add_common(s)
    return p


def _main(args: argparse.Namespace) -> int:
    module = "partner.evaluation.cross_validation" if getattr(args, "cv", False) else COMMANDS[args.what]
    return int(importlib.import_module(module).main(args) or 0)


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
