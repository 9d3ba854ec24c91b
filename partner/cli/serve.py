"""partner-serve: suggested edits for a supporter's draft reply, in a local web page (partner/serve)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .common import add_common, add_config, run

log = logging.getLogger("partner.serve")


def build_parser() -> argparse.ArgumentParser:
    from partner.serve.suggest import SOURCES

    p = argparse.ArgumentParser(
        prog="partner-serve",
        description="A local web page (and JSON API: POST /suggest, POST /feedback) that suggests sentence-level "
                    "edits to a supporter's draft reply: the rewriter's candidates, ranked by the preference model, "
                    "guarded. The person accepts, edits or dismisses each.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; the posts are mental-health text)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    p.add_argument("--log", default=None, metavar="FILE",
                   help="append every shown suggestion and every decision to this JSONL file (default: off, nothing "
                        "is stored); `partner-train preference` reads it as preference pairs")
    p.add_argument("-k", type=int, default=3, help="suggestions per draft, at most (default 3)")
    p.add_argument("--min-gain", type=float, default=0.0,
                   help="suggest an edit only if the preference model's gain over the draft is above this (default 0)")
    p.add_argument("--sources", default=",".join(SOURCES),
                   help=f"candidate sources, comma-separated (default {','.join(SOURCES)})")
    p.add_argument("--samples", type=int, default=3,
                   help="sampled policy episodes per draft, beside the greedy one (default 3)")
    p.add_argument("--model", default=None, help="policy folder (default: the shipped agent, models/policy_rl)")
    p.add_argument("--preference", default=None, help="preference model folder (default: models/preference)")
    p.add_argument("--scorer", default=None,
                   help="EPITOME classifier folder for the mechanisms (default: the shipped models/epitome; 'none' = "
                        "leave them out)")
    add_config(p)
    add_common(p)
    return p


def _main(args: argparse.Namespace) -> int:
    # Every model is embedded or on disk; the app makes no network call, and neither may a library on its behalf.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import uvicorn

    from partner.config import DEFAULT_CONFIG, load_config
    from partner.rewriters import MethodUnavailable
    from partner.serve.app import create_app
    from partner.serve.feedback import FeedbackLog
    from partner.serve.suggest import build_suggester

    if not 1 <= args.k <= 10:
        print("error: -k must be from 1 to 10", file=sys.stderr)
        return 2
    cfg = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    try:
        suggester = build_suggester(cfg, sources, preference=args.preference, scorer=args.scorer, model=args.model,
                                    samples=args.samples, k=args.k, min_gain=args.min_gain)
    except (MethodUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    feedback = FeedbackLog(args.log) if args.log else None
    hosts = ("127.0.0.1", "localhost", "[::1]") + ((args.host,) if args.host not in ("0.0.0.0", "::") else ("*",))
    app = create_app(suggester, log=feedback, allowed_hosts=hosts)
    log.info("suggestions from %s, ranked by the preference model; choices %s", ", ".join(sources),
             f"logged to {args.log}" if feedback else "not stored (no --log)")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: other machines can reach this page; the posts are mental-health text", args.host)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info", access_log=False)
    server = uvicorn.Server(config)
    server.run()
    return 0


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
