"""partner-rewrite: rewrite the responses of a JSONL file to be more empathic."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import sys
from pathlib import Path

from core.jsonio import check_batch_size, check_output, launched_shard
from partner import rewrite_jsonl
from partner.config import DEFAULT_CONFIG, load_config
from partner.rewrite_jsonl import rewrite_file, ScorerUnavailable
from partner.rewriters import build_rewriter, MethodUnavailable, ranker_name

from .common import add_common, add_config, process_device, run

log = logging.getLogger("partner.rewrite_jsonl")

METHODS = ("partner", "warmstart", "identity", "template", "retrieval", "zeroshot")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partner-rewrite",
        description='Rewrite every {"seeker_post", "response_post", ...} line; adds "rewritten_response", '
                    '"edits" and "empathy": {"before", "after"}. Resumes onto an existing output. Under '
                    '`accelerate launch` (or torchrun) the lines are shared out among the processes and merged '
                    'in order.',
    )
    p.add_argument("input", help="JSONL file")
    p.add_argument("-o", "--output", help="output JSONL (default: INPUT.rewritten.jsonl)")
    p.add_argument("--model", default=None,
                   help="policy folder for partner/warmstart, LM for zeroshot (default: the shipped agent: "
                        "models/policy_rl if present, else models/policy)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="rewriter or baseline (default: rewrite.method, i.e. partner)")
    p.add_argument("--scorer", default=None,
                   help="empathy classifier folder for the before/after scores (default: the shipped "
                        "models/epitome); 'none' skips scoring and writes \"empathy\": null")
    p.add_argument("--batch-size", type=int, default=None, help="examples per batch (default: rewrite.batch_size)")
    p.add_argument("--decoding", choices=("greedy", "sample"), default=None,
                   help="how sentences are decoded (default: rewrite.decoding)")
    p.add_argument("--seed", type=int, default=None, help="makes sampling deterministic (default: rewrite.seed)")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    add_config(p)
    add_common(p)
    return p


def default_output(path: str) -> Path:
    p = Path(path)
    return p.with_name(p.name[:-len(".jsonl")] + ".rewritten.jsonl" if p.name.endswith(".jsonl")
                       else p.name + ".rewritten.jsonl")


def _main(args: argparse.Namespace) -> int:
    import torch

    if not Path(args.input).is_file():
        raise FileNotFoundError(f"no input file at {args.input}")
    cfg = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    rc = cfg.rewrite
    method = args.method or rc.method
    if args.decoding:
        rc.decoding = args.decoding
    seed = rc.seed if args.seed is None else args.seed
    random.seed(seed)
    torch.manual_seed(seed)
    out = Path(args.output) if args.output else default_output(args.input)
    batch_size = check_batch_size(rc.batch_size if args.batch_size is None else args.batch_size)
    check_output(args.input, out)  # before any model loads
    shard = launched_shard()
    device = process_device(None)
    try:
        rewriter = build_rewriter(method, cfg, model=args.model, device=device)
        scorer = rewrite_jsonl.load_scorer(rc.scorer if args.scorer is None else args.scorer, device=device)
    except (MethodUnavailable, ScorerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("method %s", rewriter.describe())
    log.info("empathy before/after: %s", "off (--scorer none)" if scorer is None else
             getattr(scorer, "path", None) or "the shipped classifier")
    run_key = {"model": args.model, "describe": rewriter.describe(), "rewrite": dataclasses.asdict(rc),
               "policy": dataclasses.asdict(cfg.policy), "rewards": dataclasses.asdict(cfg.rewards)}
    stats = rewrite_file(args.input, out, rewriter, scorer, batch_size=batch_size, seed=seed,
                         overwrite=args.overwrite, run_key=run_key, shard=shard)
    log.info("%s: %d lines (%d already there, %d written, %d errors)", out, stats.total, stats.skipped,
             stats.written, stats.errors)
    chosen = getattr(rewriter, "chosen", None)
    if chosen:
        log.info("ranked by %s, kept: %s", ranker_name(getattr(rewriter, "rank_by", "reward")),
                 ", ".join(f"{kind} {n}" for kind, n in sorted(chosen.items())))
    guard = getattr(rewriter, "guard", None)
    if guard is not None and guard.rejected:
        retries = getattr(rewriter, "guard_retries", 0)
        then = (f"resampled up to {retries} times; a step became stop only when every try was rejected"
                if retries else "each step became stop")
        log.info("sentence guard rejected %s generated sentence(s) this run (%s)",
                 ", ".join(f"{n} {why}" for why, n in sorted(guard.rejected.items())), then)
    # under a launcher only rank 0, which merged every part, speaks for the run: a non-zero status from
    # another rank would make the launcher stop the rest
    return stats.exit_status if shard[0] == 0 else 0


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
