"""partner-score: add EPITOME empathy levels and rationales to every line of a JSONL file."""

from __future__ import annotations

import argparse

from .common import add_common, not_implemented, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partner-score",
        description='Add "empathy": {"ER", "IP", "EX", "total", "probs", "rationales"} to every line of a '
                    'JSONL file of {"seeker_post", "response_post", ...}. Bad lines become error records.',
    )
    p.add_argument("input", help="JSONL file")
    p.add_argument("-o", "--output", help="output JSONL (default: INPUT.scored.jsonl)")
    p.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    add_common(p)
    return p


def _main(args: argparse.Namespace) -> int:
    return not_implemented("partner-score", "EPITOME empathy classifier")


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
