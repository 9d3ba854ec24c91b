"""The reward stack with the document-start token looked up per sequence as before 6ba99ac, and now.

Until 6ba99ac, ``classifiers.reverse.doc_start_id`` built the tokenizer's whole vocabulary dict
(``get_vocab()``, 49k entries for SmolLM2) for every sequence the fluency and MI terms scored. This
scores the same cold batches of 16 RL rollouts (bench_rewards' batches, nothing cached) with each
lookup in one process, the two taking turns, and reports CPU seconds of fluency, r_m and the stack.

    python benchmarks/ab_doc_start.py [--rounds 3] [--threads 1]

Writes benchmarks/results/doc-start.json and .md with the machine, load average and commit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from core.provenance import git_commit, parse_benchmark_args, write_report  # noqa: E402


def vocab_lookup(tok) -> int:
    """doc_start_id as before 6ba99ac."""
    vocab = tok.get_vocab()
    if "<|endoftext|>" in vocab:
        return vocab["<|endoftext|>"]
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def main(argv=None) -> int:
    import classifiers.reverse as reverse
    from bench_rewards import _clear, rollouts
    from rewards.config import RewardConfig
    from rewards.stack import RewardStack

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = parse_benchmark_args(ap, argv, "doc-start", threads=1)
    ways = {"get_vocab() per sequence (before)": vocab_lookup, "fast-tokenizer lookup (now)": reverse.doc_start_id}
    stack = RewardStack(RewardConfig(), policy_backbone="smollm2-135m")
    stack(*rollouts(16, 100))  # loads every model
    load = [os.getloadavg()[0]]
    cpu = {w: {"fluency": [], "mi": [], "stack": []} for w in ways}
    for r in range(args.rounds):
        for way in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            reverse.doc_start_id = ways[way]  # encode_conditional / encode_unconditional look it up per call
            batch = rollouts(16, r)
            for part in ("fluency", "mi", "stack"):
                for component in stack.components.values():
                    _clear(component)
                c = time.process_time()
                (stack if part == "stack" else stack.components[part])(*batch)
                cpu[way][part].append(time.process_time() - c)
    load.append(os.getloadavg()[0])
    med = {w: {p: round(statistics.median(v), 3) for p, v in parts.items()} for w, parts in cpu.items()}
    result = {"what": "CPU s per cold batch of 16 RL rollouts (bench_rewards' batches), median of the rounds",
              "median_cpu_s": med, "runs": {w: {p: [round(x, 3) for x in v] for p, v in parts.items()}
                                            for w, parts in cpu.items()},
              "commit": git_commit(), "command": "python benchmarks/ab_doc_start.py " + " ".join(argv or sys.argv[1:])}
    lines = ["# Document-start lookup: CPU s per cold batch of 16 rollouts", "",
             f"Median of {args.rounds} rounds in one process, the two lookups taking turns.", "",
             "| lookup | fluency | r_m | stack |", "|---|---|---|---|"]
    lines += [f"| {w} | {m['fluency']:.2f} | {m['mi']:.2f} | {m['stack']:.2f} |" for w, m in med.items()]
    write_report(args.out, result, lines, f"{load[0]:.1f} before, {load[1]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
