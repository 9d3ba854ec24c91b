"""partner-ab: blinded A/B studies with human raters.

  partner-ab export partner.jsonl bart.jsonl --include-original --attention-checks 4 -o study/
      -> study/package/ (items.csv, rating.html, manifest.json: send to raters), study/key.json (keep)
  partner-ab analyze ratings-*.csv --key study/key.json -o study/analysis/
      -> report.md, results.json, preference.png
"""

from __future__ import annotations

import argparse

from partner.ab.analyze import analyze, AnalyzeConfig
from partner.ab.export import export, ExportConfig

from .common import add_common, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partner-ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("export", help="blinded rater package (CSV + offline HTML page) from partner-rewrite outputs")
    e.add_argument("files", nargs="+", help="partner-rewrite outputs over the same inputs, one per system")
    e.add_argument("-o", "--out", required=True, help="output folder: package/ for raters, key.json kept back")
    e.add_argument("--name", action="append", default=None, metavar="NAME",
                   help="system name for each file, in order (repeat; default: the file names without .jsonl)")
    e.add_argument("--include-original", action="store_true",
                   help="add the unedited response_post as a system (compare rewrites against the original)")
    e.add_argument("--original-name", default="original", help="name of that system (default: original)")
    e.add_argument("--seed", type=int, default=13, help="seed for sides, sampling, order and ids (recorded)")
    e.add_argument("--attention-checks", type=int, default=0, metavar="K",
                   help="add K attention-check items: an original response against a scrambled, off-topic one")
    e.add_argument("--reference", default=None, metavar="NAME",
                   help="compare only NAME against each other system (default: every pair of systems)")
    e.add_argument("--per-pair", type=int, default=None, metavar="N",
                   help="at most N inputs per system pair, sampled with the seed (default: all)")
    e.add_argument("--harm-question", action="store_true",
                   help="also ask whether either response is inappropriate or harmful (A / B / both / none); the "
                        "questions are always empathy, fluency, specificity and overall")
    e.add_argument("--key", default=None, help="where to write the key (default: OUT/key.json)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing package in OUT")
    a = sub.add_parser("analyze", help="win/tie/loss with CIs, sign tests and rater agreement")
    a.add_argument("ratings", nargs="+", help="rating files (CSV or JSON) downloaded from the page")
    a.add_argument("--key", required=True, help="the key file written by export")
    a.add_argument("-o", "--out", default=None, help="output folder (default: analysis/ next to the key)")
    a.add_argument("--unit", choices=["item", "rating"], default="item",
                   help="item: one majority answer per item and question (default; independent units); "
                        "rating: every rating counts")
    a.add_argument("--max-failed-checks", type=int, default=0, metavar="K",
                   help="exclude raters who fail more than K attention checks (default 0)")
    a.add_argument("--keep-latest", action="store_true",
                   help="when a rater answered the same question twice differently, keep the later answer "
                        "(default: error)")
    a.add_argument("--require-complete", action="store_true",
                   help="fail if any rater left items unrated (default: report and use what was rated)")
    for s in (e, a):
        add_common(s)
    return p


def _main(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.what == "export":
        cfg = ExportConfig(seed=args.seed, attention_checks=args.attention_checks, reference=args.reference,
                           per_pair=args.per_pair, harm_question=args.harm_question,
                           include_original=args.original_name if args.include_original else None)
        res = export(args.files, args.out, cfg, names=args.name, key_path=args.key, overwrite=args.overwrite)
        m = res["manifest"]
        print(f"package {m['package_id']}: {m['n_items']} items -> {res['package']} (send to raters)\n"
              f"key -> {res['key']} (keep it from raters)")
        return 0

    out = args.out or str(Path(args.key).resolve().parent / "analysis")
    cfg = AnalyzeConfig(unit=args.unit, max_failed_checks=args.max_failed_checks, keep_latest=args.keep_latest,
                        require_complete=args.require_complete)
    res = analyze(args.ratings, args.key, out, cfg)
    print(f"{len(res['raters'])} rater(s), {len(res['excluded_raters'])} excluded; report -> {Path(out) / 'report.md'}")
    return 0


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
