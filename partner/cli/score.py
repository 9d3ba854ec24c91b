"""partner-score: add EPITOME empathy levels and rationales to every line of a JSONL file."""

from __future__ import annotations

import argparse

from classifiers.scorer import EmpathyScorer
from core.jsonio import check_batch_size, check_output, launched_shard, process_jsonl

from .common import add_common, process_device, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partner-score",
        description='Add "empathy": {"ER", "IP", "EX", "total", "probs", "rationales"} to every line of a '
                    'JSONL file of {"seeker_post", "response_post", ...}, and with --preference-model also '
                    '"preference": the reward model\'s score of the response given the post (higher = raters '
                    'prefer it). Bad lines become error records. Under `accelerate launch` (or torchrun) the '
                    'lines are shared out among the processes and merged in order.',
    )
    p.add_argument("input", help="JSONL file")
    p.add_argument("-o", "--output", help="output JSONL (default: INPUT.scored.jsonl)")
    p.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    p.add_argument("--preference-model", default=None, metavar="DIR",
                   help='also add "preference", the score of a preference reward model folder (e.g. models/preference; '
                        'Bradley-Terry logits: sigmoid(a - b) = P(raters prefer reply a to reply b))')
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    add_common(p)
    return p


def _main(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    src = Path(args.input)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file")
    out = Path(args.output) if args.output else src.with_name(src.stem + ".scored.jsonl")
    check_batch_size(args.batch_size)
    check_output(src, out)  # before the model loads
    shard = launched_shard()
    device = process_device(args.device)
    scorer = EmpathyScorer.load(args.model, device=device)
    preference = None
    if args.preference_model:
        from classifiers.preference import PreferenceModel

        preference = PreferenceModel.from_pretrained(args.preference_model, device=device)

    def score(rows: list[dict]) -> list[dict]:
        seekers, responses = [r["seeker_post"] for r in rows], [r["response_post"] for r in rows]
        results = scorer.score(seekers, responses, batch_size=args.batch_size)
        out = [{**r, "empathy": res.to_json()} for r, res in zip(rows, results)]
        if preference is not None:
            for row, value in zip(out, preference.score(seekers, responses, batch_size=args.batch_size)):
                row["preference"] = round(value, 4)
        return out

    stats = process_jsonl(src, out, score, batch_size=args.batch_size, overwrite=args.overwrite, desc="scoring",
                          run_key={"command": "partner-score", "model": args.model}, shard=shard)
    logging.getLogger("partner.score").info("%d lines (%d resumed, %d errors) -> %s", stats.total, stats.skipped,
                                            stats.errors, out)
    # under a launcher only rank 0, which merged every part, speaks for the run: a non-zero status from
    # another rank would make the launcher stop the rest
    return stats.exit_status if shard[0] == 0 else 0


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
