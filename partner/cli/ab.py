"""partner-ab: blinded A/B studies with human raters."""

from __future__ import annotations

import argparse

from .common import add_common, not_implemented, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partner-ab", description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("export", help="blinded rater package (CSV + offline HTML page) from partner-rewrite outputs")
    e.add_argument("files", nargs="+", help="partner-rewrite outputs over the same inputs, one per system")
    e.add_argument("-o", "--out", required=True, help="output folder")
    a = sub.add_parser("analyze", help="win/tie/loss with CIs, sign tests and rater agreement")
    a.add_argument("ratings", nargs="+", help="rating files (CSV or JSON) downloaded from the page")
    a.add_argument("--key", required=True, help="the key file written by export")
    for s in (e, a):
        add_common(s)
    return p


def _main(args: argparse.Namespace) -> int:
    return not_implemented(f"partner-ab {args.what}", "A/B evaluation export for human raters")


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
