"""Where the time of one ``partner-rewrite`` batch goes on this machine (CPU by default).

Runs what ``partner-rewrite`` runs for one batch (``partner.rewrite_jsonl.rewrite_records``: the
shipped agent, greedy, the sentence guard, the candidate pool ranked by the preference model, the
EPITOME scorer before/after; ``--set 'rewrite.pool=[policy]'`` for the agent alone) on the first
``--n`` pairs of the EPITOME test split, with wall-clock timers around each part:

- **prompt passes**: the policy's forward passes over state prompts (the seeker parts, then the windows);
- **decode steps**: forward passes through the KV cache after the prompt (the position marker, then one
  token a step);
- **stop checks**: ``PartnerPolicy._stops`` / ``decode_sentence`` (tokenizer decodes every step);
- **tokenisation**: building the state prompts (``state_ids``);
- **guard**: ``SentenceGuard.check``;
- **retrieval / zeroshot candidates**: the ranked pool's other sources (partner-rewrite's default since
  2026-12-06): the nearest-sentence search, and the zero-shot model's generation;
- **preference ranking**: the preference model scoring every candidate and the original;
- **EPITOME scoring**: ``EmpathyScorer.score`` on the originals and the rewrites;
- **other Python**: the rest (episode bookkeeping, sampling, tensors), total minus the parts.

    python benchmarks/profile_rewrite.py [--n 16] [--repeats 2] [--out benchmarks/results/rewrite-profile]

Timers nest (a forward pass inside ``act`` is not also counted as Python); the first batch is a
warm-up. Writes ``--out``.md and .json with the machine, load average and commit.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.provenance import git_commit, machine_info, parse_benchmark_args  # noqa: E402

log = logging.getLogger("profile_rewrite")


class Timers:
    """Exclusive wall-clock and CPU time per label: time spent in a nested timer is the inner label's only."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []  # [label, start, cpu start, wall and cpu time spent in children]

    def wrap(self, fn, label):
        @functools.wraps(fn)
        def inner(*a, **kw):
            lab = label(*a, **kw) if callable(label) else label
            self._stack.append([lab, time.perf_counter(), time.process_time(), 0.0, 0.0])
            try:
                return fn(*a, **kw)
            finally:
                lab, start, cpu_start, child, child_cpu = self._stack.pop()
                took, took_cpu = time.perf_counter() - start, time.process_time() - cpu_start
                self.seconds[lab] += took - child
                self.cpu[lab] += took_cpu - child_cpu
                self.calls[lab] += 1
                if self._stack:
                    self._stack[-1][3] += took
                    self._stack[-1][4] += took_cpu
        return inner

    def reset(self):
        self.seconds.clear()
        self.cpu.clear()
        self.calls.clear()


def instrument(rewriter, scorer, timers: Timers) -> None:
    policy = rewriter.policy
    model_forward = policy.model.forward

    def kind(*a, **kw):  # act reads the position head's hidden state after the (whole or window) prompt
        prompt = kw.get("past_key_values") is None or kw.get("output_hidden_states")
        return "prompt passes" if prompt else "decode steps"

    policy.model.forward = timers.wrap(model_forward, kind)
    for name, label in (("state_ids", "tokenisation"), ("prefix_ids", "tokenisation"), ("window_ids", "tokenisation"),
                        ("_stops", "stop checks"),
                        ("decode_sentence", "stop checks")):
        setattr(policy, name, timers.wrap(getattr(policy, name), label))
    if rewriter.guard is not None:
        rewriter.guard.check = timers.wrap(rewriter.guard.check, "guard")
    if scorer is not None:
        scorer.score = timers.wrap(scorer.score, "EPITOME scoring (before + after)")
    rewriter.pool = [(kind, timers.wrap(fn, f"{kind} candidates")) for kind, fn in rewriter.pool]
    if rewriter.reward_fn is not None:
        rewriter.reward_fn = timers.wrap(rewriter.reward_fn, "preference ranking" if rewriter.rank_by == "preference"
                                         else "reward ranking")


def main(argv=None) -> int:
    import platform

    import torch

    from core.jsonio import atomic_write_json, atomic_write_text
    from partner.config import DEFAULT_CONFIG, load_config
    from partner.rewrite_jsonl import load_scorer, rewrite_records
    from partner.rewriters import build_rewriter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="pairs in the batch (partner-rewrite's default batch)")
    ap.add_argument("--repeats", type=int, default=2, help="timed batches after the warm-up (summed)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override, key=value")
    args = parse_benchmark_args(ap, argv, "rewrite-profile")
    from bench_rewrite import pairs

    cfg = load_config(DEFAULT_CONFIG, args.overrides)
    seekers, responses, source = pairs(args.n)
    records = [{"seeker_post": s, "response_post": r} for s, r in zip(seekers, responses)]
    rewriter = build_rewriter("partner", cfg, device="cpu")
    scorer = load_scorer(cfg.rewrite.scorer, device="cpu")
    timers = Timers()
    instrument(rewriter, scorer, timers)
    total = timers.wrap(rewrite_records, "other Python")
    total(records[:2], rewriter, scorer)  # warm-up
    timers.reset()
    load_before = os.getloadavg()
    t = time.perf_counter()
    for _ in range(args.repeats):
        outs = total(records, rewriter, scorer)
    wall = time.perf_counter() - t
    load_after = os.getloadavg()
    written = sum(len(o["edits"]) for o in outs)
    order = ["prompt passes", "decode steps", "stop checks", "tokenisation", "guard"]
    order += [k for k in timers.seconds if k.endswith(("candidates", "ranking"))]
    order += ["EPITOME scoring (before + after)", "other Python"]
    cpu_total = sum(timers.cpu.values())
    rows = [{"part": k, "seconds": round(timers.seconds.get(k, 0.0) / args.repeats, 3),
             "share": round(timers.seconds.get(k, 0.0) / wall, 3),
             "cpu_seconds": round(timers.cpu.get(k, 0.0) / args.repeats, 3),
             "cpu_share": round(timers.cpu.get(k, 0.0) / cpu_total, 3), "calls": timers.calls.get(k, 0) // args.repeats}
            for k in order]
    result = {"what": f"one partner-rewrite batch of {args.n} pairs, seconds per batch (mean of {args.repeats})",
              "policy": str(rewriter.path), "rewriter": rewriter.describe(), "data": source, "sentences_written": written,
              "seconds_per_batch": round(wall / args.repeats, 3), "parts": rows,
              "machine": {**machine_info(), "load_average_before_after": [round(load_before[0], 2),
                                                                           round(load_after[0], 2)]},
              "commit": git_commit(), "command": "python benchmarks/profile_rewrite.py " + " ".join(argv or sys.argv[1:])}
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result)
    lines = [f"# Where one partner-rewrite batch spends its time ({platform.machine()} CPU)", "",
             f"{result['what']}: {result['seconds_per_batch']:.2f} s; {rewriter.describe()}; EPITOME scorer "
             f"before/after; {args.n} pairs from the {source}, "
             f"{written} sentences written.", "",
             "| part | wall s / batch | share | CPU s / batch | share | calls / batch |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['part']} | {r['seconds']:.3f} | {r['share']:.0%} | {r['cpu_seconds']:.3f} | {r['cpu_share']:.0%} "
              f"| {r['calls']} |" for r in rows]
    lines += ["", f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads); 1-min load average {load_before[0]:.1f} before, "
              f"{load_after[0]:.1f} after (shared machine); commit {result['commit']}.", "",
              f"Command: `{result['command']}`", ""]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
