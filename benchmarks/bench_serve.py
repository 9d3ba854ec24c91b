"""partner-serve latency: how long a supporter waits for suggestions on a 100-word draft.

The app runs in-process with the shipped models (``partner.serve.suggest.build_suggester``: the policy
``models/policy_rl``, the retrieval index, the zero-shot backbone, ``models/preference``, ``models/epitome``) and is
called over its HTTP API (Starlette's TestClient), as the page calls it:

- **first suggestions**: ``POST /suggest`` with the quick sources only (retrieval), what the page shows first;
- **all suggestions**: ``POST /suggest`` with every source (policy greedy + ``--samples`` sampled episodes,
  retrieval, zero-shot), which the page shows next.

One warm-up call (quick sources) comes first, so model loading and first-call set-up are not counted; loading
is timed on its own. Each figure is the median of ``--repeats`` calls (the same draft and seed: the time, not the
text, is measured).

    python benchmarks/bench_serve.py [--repeats 1] [--samples 3] [--note "..."]

Writes benchmarks/results/serve.json and .md with machine info, load average and the git commit.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.provenance import git_commit, machine_info  # noqa: E402

log = logging.getLogger("bench_serve")

SEEKER = ("I lost my job last month and I feel like a complete failure. My family keeps asking what I do all day "
          "and I don't know what to tell them. I can't sleep and I don't want to see anyone.")
# 100 words, a draft with advice and little empathy: what the tool is for.
DRAFT = ("Losing a job is hard. I was laid off two years ago and it took me a while to find something new. "
         "Try to keep a routine, like getting up at the same time every day and going for a walk. "
         "Update your resume and reach out to people you used to work with, because a lot of jobs come through "
         "contacts. Your family probably just worries about you. Tell them you are looking and that you will let "
         "them know. It will get better, you just need to give it some time and keep applying for jobs every week.")


def main(argv=None) -> int:
    import torch
    from starlette.testclient import TestClient

    from core.jsonio import atomic_write_json, atomic_write_text
    from partner.config import DEFAULT_CONFIG, load_config
    from partner.serve.app import create_app
    from partner.serve.suggest import SOURCES, build_suggester

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=1, help="timed calls per figure (median)")
    ap.add_argument("--samples", type=int, default=3, help="sampled policy episodes beside the greedy one")
    ap.add_argument("--note", default="", help="a note on the conditions, written into the results")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    words = len(DRAFT.split())
    assert words == 100, words

    load_before = os.getloadavg()
    t = time.perf_counter()
    suggester = build_suggester(load_config(DEFAULT_CONFIG), SOURCES, samples=args.samples)
    load_s = time.perf_counter() - t
    quick = suggester.describe()["quick"]
    client = TestClient(create_app(suggester), base_url="http://127.0.0.1")

    def call(sources):
        body = {"seeker_post": SEEKER, "draft": DRAFT, "k": 3}
        if sources:
            body["sources"] = sources
        t = time.perf_counter()
        r = client.post("/suggest", json=body)
        elapsed = time.perf_counter() - t
        r.raise_for_status()
        data = r.json()
        log.info("%s: %.2f s, %d suggestions, stages %s", "+".join(sources or ["all"]), elapsed,
                 len(data["suggestions"]), data["seconds"])
        return elapsed, data

    call(quick)  # warm-up
    first, full, last = [], [], None
    for _ in range(args.repeats):
        first.append(call(quick)[0])
        elapsed, last = call(None)
        full.append(elapsed)
    load_after = os.getloadavg()

    result = {
        "what": "partner-serve: seconds from POST /suggest to its answer, for a 100-word draft, in-process over HTTP "
                "(Starlette TestClient), shipped models, CPU",
        "draft_words": words, "repeats": args.repeats, "policy_samples": args.samples, "k": 3,
        "load_seconds": round(load_s, 1),
        "first_suggestions_s": round(statistics.median(first), 2), "first_suggestions_all_s": [round(x, 2) for x in first],
        "quick_sources": quick,
        "all_suggestions_s": round(statistics.median(full), 2), "all_suggestions_all_s": [round(x, 2) for x in full],
        "last_stage_seconds": last["seconds"], "last_suggestions": [
            {k: s[k] for k in ("action", "position", "sentence", "sources", "gain", "mechanism")}
            for s in last["suggestions"]],
        "target_s": 3.0,
        "note": args.note,
        "machine": {**machine_info(), "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)]},
        "commit": git_commit(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), result)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in last["seconds"].items())
    md = ("# partner-serve latency\n\n"
          f"Seconds from `POST /suggest` to its answer for one {words}-word draft (k = 3), the app in-process over "
          "HTTP with the shipped models, on the CPU; median of "
          f"{args.repeats} call(s) after one warm-up call. Model loading: {load_s:.0f} s (once, at start).\n\n"
          "| what the page shows | sources | seconds | target |\n|---|---|---|---|\n"
          f"| first suggestions | {', '.join(quick)} | {result['first_suggestions_s']:.2f} | < 3 |\n"
          f"| all suggestions | {', '.join(SOURCES)} (policy: greedy + {args.samples} sampled episodes) | "
          f"{result['all_suggestions_s']:.2f} | |\n\n"
          f"Time per stage in the last full call: {stages}.\n\n"
          f"Machine: {machine_info()['platform']}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); 1-min load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after (above the CPU count means other jobs shared the CPUs); commit "
          f"{result['commit']}.\n" + (f"\n{args.note}\n" if args.note else "") +
          "\nCommand: `python benchmarks/bench_serve.py" + (f" --repeats {args.repeats}" if args.repeats != 1 else "") +
          (f" --samples {args.samples}" if args.samples != 3 else "") + "`\n")
    atomic_write_text(out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
