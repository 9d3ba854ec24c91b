"""partner-rewrite: rewrite the responses of a JSONL file to be more empathic."""

from __future__ import annotations

import argparse

from .common import add_common, add_config, not_implemented, run

METHODS = ("partner", "warmstart", "identity", "template", "retrieval", "zeroshot")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partner-rewrite",
        description='Rewrite every {"seeker_post", "response_post", ...} line; adds "rewritten_response", '
                    '"edits" and "empathy": {"before", "after"}. Resumes onto an existing output.',
    )
    p.add_argument("input", help="JSONL file")
    p.add_argument("-o", "--output", help="output JSONL (default: INPUT.rewritten.jsonl)")
    p.add_argument("--model", default=None, help="policy folder (default: the shipped agent)")
    p.add_argument("--method", choices=METHODS, default=None, help="rewriter or baseline (default: partner)")
    p.add_argument("--seed", type=int, default=None, help="makes sampling deterministic")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    add_config(p)
    add_common(p)
    return p


def _main(args: argparse.Namespace) -> int:
    return not_implemented("partner-rewrite", "partner-rewrite, partner-eval and the baselines")


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
