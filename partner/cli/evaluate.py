"""partner-eval: evaluate a classifier, probe its use of context, or evaluate rewrites."""

from __future__ import annotations

import argparse

from .common import add_common, add_config, not_implemented, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partner-eval", description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("classifier", help="accuracy, macro-F1, MCC and rationale F1 on the test split, "
                                          "with baselines")
    c.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    c.add_argument("--out", default=None, help="folder for the JSON and markdown reports")
    add_config(c)
    pr = sub.add_parser("probe", help="context probe: does the classifier use the seeker post?")
    pr.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    pr.add_argument("--out", default=None, help="folder for the JSON and markdown reports")
    add_config(pr)
    r = sub.add_parser("rewrites", help="empathy change, perplexity, specificity, diversity, coherence, "
                                        "edit rate, BLEU for partner-rewrite outputs")
    r.add_argument("files", nargs="+", help="one or more partner-rewrite outputs (compared side by side)")
    r.add_argument("--out", default=None, help="folder for JSON, markdown and PNG plots")
    add_config(r)
    for s in (c, pr, r):
        add_common(s)
    return p


def _main(args: argparse.Namespace) -> int:
    if args.what in ("classifier", "probe"):
        return not_implemented(f"partner-eval {args.what}", "EPITOME empathy classifier")
    return not_implemented("partner-eval rewrites", "partner-rewrite, partner-eval and the baselines")


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
