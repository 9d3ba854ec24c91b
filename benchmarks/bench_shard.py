"""partner-score and partner-rewrite on one process and on two (``accelerate launch``), lines per second.

Each row runs the console script end to end on the same input (EPITOME test pairs as JSONL), from
process start to the merged output, so model loading is in the time as a user would see it:

- **1 process**: ``partner-score IN -o OUT``, with torch's default threads and with one
  (``OMP_NUM_THREADS=1``: on a shared machine, threads that wait for each other can cost more than
  they bring);
- **2 processes**: ``accelerate launch --multi_gpu --num_processes 2 partner-score IN -o OUT``; on a
  machine without GPUs these are two CPU processes (gloo), one thread each (``OMP_NUM_THREADS=1``).

The same for ``partner-rewrite`` (the shipped agent, greedy, ``--scorer none`` so the row times the
rewriting). The rows take turns in every round; the outputs of the one- and two-process runs are
compared byte for byte.

    python benchmarks/bench_shard.py [--score-n 512] [--rewrite-n 64] [--rounds 1]

Writes benchmarks/results/shard.json and .md with the machine, load average and commit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.provenance import git_commit, machine_info  # noqa: E402

log = logging.getLogger("bench_shard")


def launch(script: str, args: list[str], processes: int, port: int) -> list[str]:
    exe = str(Path(sys.executable).parent / script)
    if processes == 1:
        return [sys.executable, exe, *args]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
            str(port), exe, *args]


def main(argv=None) -> int:
    from core.corpora import epitome_splits
    from core.jsonio import atomic_write_json, atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--score-n", type=int, default=512)
    ap.add_argument("--rewrite-n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shard"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    test = epitome_splits()["test"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-shard-"))
    inputs = {}
    for cmd, n in (("partner-score", args.score_n), ("partner-rewrite", args.rewrite_n)):
        rows = [{"id": str(i), "seeker_post": p.seeker_post, "response_post": p.response_post}
                for i, p in enumerate((test * (n // len(test) + 1))[:n])]
        inputs[cmd] = tmp / f"{cmd}.jsonl"
        inputs[cmd].write_text("".join(json.dumps(r) + "\n" for r in rows))
    extra = {"partner-score": [], "partner-rewrite": ["--scorer", "none"]}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict = {}
    loads = [os.getloadavg()[0]]
    port = 29571
    for _ in range(args.rounds):
        for cmd in inputs:
            for procs, threads in ((1, 0), (1, 1), (2, 1)):
                out = tmp / f"{cmd}.{procs}.{threads}.jsonl"
                out.unlink(missing_ok=True)
                run_env = {**env, "OMP_NUM_THREADS": str(threads)} if threads else env
                port += 1
                t = time.perf_counter()
                res = subprocess.run(launch(cmd, [str(inputs[cmd]), "-o", str(out), *extra[cmd]], procs, port),
                                     env=run_env, capture_output=True, text=True)
                took = time.perf_counter() - t
                if res.returncode != 0:
                    raise SystemExit(f"{cmd} on {procs} process(es) failed:\n{res.stderr[-3000:]}")
                times.setdefault((cmd, procs, threads), []).append(took)
                log.info("%s, %d process(es), %s thread(s) each: %.1f s", cmd, procs, threads or "default", took)
            loads.append(os.getloadavg()[0])
    rows = []
    for (cmd, procs, threads), ts in times.items():
        n = sum(1 for _ in inputs[cmd].open())
        same = (tmp / f"{cmd}.1.0.jsonl").read_bytes() == (tmp / f"{cmd}.{procs}.{threads}.jsonl").read_bytes()
        rows.append({"command": cmd, "processes": procs, "threads_each": threads or "default", "lines": n,
                     "seconds": round(sum(ts) / len(ts), 1), "lines_per_s": round(n * len(ts) / sum(ts), 3),
                     "output_same_as_1_process": same})
    result = {"what": "console scripts end to end (model loading included) on 1 and 2 processes",
              "data": "EPITOME test split pairs, repeated to the line count", "rows": rows, "rounds": args.rounds,
              "machine": {**machine_info(), "load_average_per_round": [round(x, 2) for x in loads]},
              "commit": git_commit(), "command": "python benchmarks/bench_shard.py " + " ".join(argv or sys.argv[1:])}
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result)
    lines = ["# partner-score and partner-rewrite on one and two processes", "",
             f"{result['what']}; data: {result['data']}; {args.rounds} round(s), the rows taking turns. Two processes: "
             "`accelerate launch --multi_gpu --num_processes 2` (CPU processes with gloo here, one thread each); "
             "one process: the console script alone, with torch's default threads and with one. partner-rewrite: the shipped "
             "agent, greedy, `--scorer none`.", "",
             "| command | processes | threads each | lines | seconds | lines / s | output identical to 1 process |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['command']} | {r['processes']} | {r['threads_each']} | {r['lines']} | {r['seconds']:.1f} | "
                     f"{r['lines_per_s']:.2f} | {'yes' if r['output_same_as_1_process'] else 'no'} |")
    lines += ["", f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; 1-min load average before and after "
              f"each round: {', '.join(f'{x:.1f}' for x in loads)} (a shared machine); commit {result['commit']}.",
              "", f"Command: `{result['command']}`", ""]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
