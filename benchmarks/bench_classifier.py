"""Scoring throughput of the EPITOME classifier, in (seeker, response) pairs per second.

Compares the shipped model (one pass per pair: frozen seeker encoder + adapted response encoder,
three mechanism heads) with an EPITOME-faithful configuration: three separate bi-encoder models,
one per mechanism, each with its own seeker and response encoder (the released code's
``EmpathyClassifier``), on the same backbone. Throughput does not depend on trained weights, so
the faithful models have random heads.

    python benchmarks/bench_classifier.py [--model DIR] [--pairs 256] [--batch-size 32]

Writes benchmarks/results/classifier.json and .md with machine info and the git commit.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.provenance import git_commit, machine_info  # noqa: E402
log = logging.getLogger("bench_classifier")


def texts(n: int):
    from core.corpora import epitome_splits

    try:
        pairs = epitome_splits()["test"]
    except Exception as exc:  # noqa: BLE001 - the benchmark must run without the data too
        log.warning("EPITOME data not available (%s); using synthetic pairs", exc)
        pairs = []
    if pairs:
        pairs = (pairs * (n // len(pairs) + 1))[:n]
        return [p.seeker_post for p in pairs], [p.response_post for p in pairs], "EPITOME Reddit test split"
    s = ["I lost my job last week and I can't sleep. Everything feels pointless and I'm scared."] * n
    r = ["I'm so sorry to hear that. Losing a job is really hard; I went through it last year. "
         "What happened?"] * n
    return s, r, "synthetic"


def throughput(score, seekers, responses, batch_size: int, repeats: int) -> dict:
    score(seekers[:batch_size], responses[:batch_size], batch_size)  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        score(seekers, responses, batch_size)
        rates.append(len(seekers) / (time.perf_counter() - t))
    return {"pairs_per_s": statistics.median(rates), "runs": [round(x, 2) for x in rates]}


def main(argv=None) -> int:
    import torch

    from classifiers.config import EpitomeConfig
    from classifiers.epitome import EpitomeModel, run_model
    from core.jsonio import atomic_write_json, atomic_write_text
    from classifiers.scorer import EmpathyScorer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="classifier folder (default: the shipped model)")
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available); both rows run there")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(0)
    seekers, responses, source = texts(args.pairs)

    shipped = EmpathyScorer.load(args.model, device=args.device)
    device = shipped.device
    cfg = shipped.model.cfg
    results = {}
    log.info("shipped model: %s", args.model or "models/epitome")
    results["shipped"] = throughput(lambda s, r, b: shipped.score(s, r, b, rationales=True), seekers, responses,
                                    args.batch_size, args.repeats)
    results["shipped"]["description"] = (f"one model, heads {'/'.join(cfg.mechanisms)}, {cfg.backbone}, "
                                         f"{cfg.finetune} (merged), frozen seeker encoder, with rationale spans")
    del shipped
    faithful = [EpitomeModel(EpitomeConfig(backbone=cfg.backbone, max_len=cfg.max_len, mechanisms=[m],
                                           finetune="full", train_layers=0, freeze_seeker=False, pooling="cls"))
                .to(device).eval() for m in ("ER", "IP", "EX")]

    def score_faithful(s, r, b):
        return [run_model(m, s, r, b) for m in faithful]

    log.info("EPITOME-faithful: three bi-encoder models")
    results["epitome_faithful"] = throughput(score_faithful, seekers, responses, args.batch_size, args.repeats)
    results["epitome_faithful"]["description"] = (f"three models (ER, IP, EX), each with its own seeker and "
                                                  f"response {cfg.backbone} encoder, as the released code")
    speedup = results["shipped"]["pairs_per_s"] / results["epitome_faithful"]["pairs_per_s"]
    commit = git_commit()
    report = {
        "benchmark": "classifier scoring throughput", "commit": commit, "pairs": args.pairs,
        "batch_size": args.batch_size, "repeats": args.repeats, "max_len": cfg.max_len, "data": source,
        "device": str(device),
        "results": results, "speedup_shipped_vs_faithful": round(speedup, 2),
        "machine": machine_info(),
        "note": "CPU shared with other jobs while measuring: compare the two rows, not absolute rates across runs.",
    }
    out = Path(args.out)
    atomic_write_json(out / "classifier.json", report)
    md = [f"# Classifier scoring throughput (commit {commit})", "",
          f"{args.pairs} pairs from the {source}, batch {args.batch_size}, max_len {cfg.max_len}, median of "
          f"{args.repeats} runs, on {device}; {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average at the end {os.getloadavg()[0]:.1f}.", "",
          "| configuration | pairs/s | runs |", "|---|---|---|"]
    for k, v in results.items():
        md.append(f"| {k}: {v['description']} | {v['pairs_per_s']:.2f} | {v['runs']} |")
    md += ["", f"Speed-up of the shipped model: {speedup:.2f}x.", "", report["note"], ""]
    atomic_write_text(out / "classifier.md", "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
