"""How far a cheaper r_m agrees with the current one, on real (seeker post, response) pairs.

r_m = λ·mean log p→(R|S) + (1 − λ)·mean log p←(S|R) (rewards/mi.py). The variants here change only
how much text the reverse model reads and scores, or the precision the LMs run in; each is scored
on the same pairs as the current configuration, and the script reports Pearson and Spearman
correlations of r_m and of its reverse term, the mean absolute difference, and this process's CPU
seconds per pair for each.

- ``current``: the default RewardConfig (reverse context = the response cut to max_response_tokens
  128, target = the post cut to max_seeker_tokens 64);
- ``trained lengths``: the reverse model reads and scores what it was trained on
  (models/reverse/reverse.json: response cut to 64 tokens, post to 48);
- ``bf16``: the current lengths with the LM in bfloat16.

    python benchmarks/mi_agreement.py [--n 200] [--split dev] [--threads 1]

Writes benchmarks/results/mi-agreement.json and .md with the machine, load average and commit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.provenance import git_commit, machine_info, parse_benchmark_args, write_report  # noqa: E402

log = logging.getLogger("mi_agreement")


def main(argv=None) -> int:
    import torch
    from scipy.stats import pearsonr, spearmanr

    from core.corpora import epitome_splits
    from rewards.config import RewardConfig
    from rewards.lm import FrozenLM
    from rewards.mi import MutualInformationReward

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--split", default="dev", help="EPITOME split the pairs come from")
    args = parse_benchmark_args(ap, argv, "mi-agreement")
    pairs = epitome_splits()[args.split][:args.n]
    seekers, responses = [p.seeker_post for p in pairs], [p.response_post for p in pairs]
    cfg = RewardConfig()
    reverse_meta = json.loads((ROOT / "models" / "reverse" / "reverse.json").read_text())
    lm = FrozenLM("smollm2-135m", device="cpu")
    lm.attach_reverse(ROOT / "models" / "reverse")
    variants = {
        "current": dict(max_seeker_tokens=cfg.max_seeker_tokens, max_response_tokens=cfg.max_response_tokens),
        "trained lengths": dict(max_seeker_tokens=cfg.max_seeker_tokens, max_response_tokens=cfg.max_response_tokens,
                                reverse_lengths=(reverse_meta["max_context"], reverse_meta["max_target"])),
        "bf16": dict(max_seeker_tokens=cfg.max_seeker_tokens, max_response_tokens=cfg.max_response_tokens,
                     dtype=torch.bfloat16),
    }
    loads = [os.getloadavg()[0]]
    scores = {}
    for name, v in variants.items():
        v = dict(v)
        dtype = v.pop("dtype", None)
        rev_lengths = v.pop("reverse_lengths", None)
        lm.model.to(dtype or torch.float32)
        mi = MutualInformationReward(lm, lm, cfg.lambda_mi, batch_size=cfg.batch_size, **v)
        if rev_lengths:
            mi.reverse_lengths = rev_lengths
        c = time.process_time()
        fwd, rev = mi.parts(seekers, responses)
        cpu = time.process_time() - c
        scores[name] = {"fwd": fwd, "rev": rev, "rm": [cfg.lambda_mi * f + (1 - cfg.lambda_mi) * r
                                                       for f, r in zip(fwd, rev)], "cpu_s_per_pair": cpu / len(pairs)}
        loads.append(os.getloadavg()[0])
        log.info("%s: %.3f CPU s per pair", name, cpu / len(pairs))
    lm.model.to(torch.float32)
    base = scores["current"]
    rows = []
    for name, sc in scores.items():
        row = {"variant": name, "cpu_s_per_pair": round(sc["cpu_s_per_pair"], 4)}
        for part in ("rm", "rev"):
            row[f"{part}_pearson"] = round(float(pearsonr(base[part], sc[part])[0]), 4)
            row[f"{part}_spearman"] = round(float(spearmanr(base[part], sc[part])[0]), 4)
            row[f"{part}_mean_abs_diff"] = round(sum(abs(a - b) for a, b in zip(base[part], sc[part])) / len(pairs), 4)
        rows.append(row)
    result = {"what": f"r_m variants vs the current r_m on {len(pairs)} EPITOME {args.split} pairs (seeker post, "
                      "response)", "reverse_model": reverse_meta | {"adapter": "models/reverse"}, "rows": rows,
              "machine": {**machine_info(), "load_average_per_variant": [round(x, 2) for x in loads]},
              "commit": git_commit(), "command": "python benchmarks/mi_agreement.py " + " ".join(argv or sys.argv[1:])}
    out = Path(args.out)
    lines = [f"# r_m: cheaper variants against the current one ({len(pairs)} EPITOME {args.split} pairs)", "",
             "| variant | CPU s / pair | r_m Pearson | r_m Spearman | r_m mean abs diff | reverse Pearson | "
             "reverse Spearman | reverse mean abs diff |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['cpu_s_per_pair']:.3f} | {r['rm_pearson']:.4f} | {r['rm_spearman']:.4f} "
                     f"| {r['rm_mean_abs_diff']:.4f} | {r['rev_pearson']:.4f} | {r['rev_spearman']:.4f} | "
                     f"{r['rev_mean_abs_diff']:.4f} |")
    write_report(out, result, lines, ", ".join(f"{x:.1f}" for x in loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
