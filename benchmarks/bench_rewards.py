"""Time of the PARTNER reward per batch of 16 rollouts, each component and the whole stack (CPU; --device cuda).

A batch is what one RL step scores: 4 states (seeker post, original response) x 4 sampled edits
(inserted or replacing candidate sentences, and one STOP per state). For every component and for
the stack we time

- ``cold``: the first batch after the models are loaded (nothing cached), and
- ``step``: a following batch with the same states and new candidates, as in RL where a state is
  rolled out several times and originals recur; the stack reuses the cached f_e(S, R), coherence
  pairs and LM scores it has seen.

The sum of the components' times is printed beside the stack's, to show the sharing (one frozen LM
for fluency and both MI terms, one classifier pass per distinct pair or sentence, cached originals).

    python benchmarks/bench_rewards.py [--repeats 3] [--threads N]

Writes benchmarks/results/rewards.json and .md with machine info and the git commit.
"""

from __future__ import annotations

import argparse
import json
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
log = logging.getLogger("bench_rewards")

CANDIDATES = [
    "I'm so sorry you are going through this.",
    "That sounds really painful and lonely.",
    "It makes sense that you feel this way.",
    "How have you been coping with all of it?",
    "I can only imagine how exhausting this must be.",
    "You don't have to carry this on your own.",
    "What would help you most right now?",
    "It's okay to feel overwhelmed by this.",
]


def rollouts(batch: int, round_: int):
    """16 rollouts over 4 states; ``round_`` picks different candidates for the same states."""
    from core.text import split_sentences
    from rewards.edit import EditInfo

    rows = [json.loads(x) for x in (ROOT / "examples" / "low-empathy.jsonl").read_text().splitlines() if x.strip()]
    states = rows[:4]
    seekers, originals, rewrites, edits = [], [], [], []
    for i in range(batch):
        st = states[i % len(states)]
        sents = split_sentences(st["response_post"])
        window = sents[:2]
        k = (i // len(states) + 3 * round_) % len(CANDIDATES)  # new candidates every round
        cand = CANDIDATES[k]
        if i // len(states) == 3:  # one STOP per state
            edit, new = EditInfo("", window, None, "stop"), sents
        elif i // len(states) == 2 and len(window) > 1:  # a replacement
            edit, new = EditInfo(cand, window, 1, "replace", 1), [sents[0], cand] + sents[2:]
        else:  # an insertion after the first sentence
            edit, new = EditInfo(cand, window, None, "insert", 1), sents[:1] + [cand] + sents[1:]
        seekers.append(st["seeker_post"])
        originals.append(st["response_post"])
        rewrites.append(" ".join(new))
        edits.append(edit)
    return seekers, originals, rewrites, edits


def timed(fn, batch) -> float:
    t = time.perf_counter()
    fn(*batch)
    return time.perf_counter() - t


def bench(make, repeats: int, batch: int) -> dict:
    """Median seconds of a cold batch and of a following (warm-cache) batch, over fresh instances."""
    cold, step = [], []
    for r in range(repeats):
        fn = make()
        fn(*rollouts(batch, 100 + r))  # warm-up: loads the models
        for component in (fn.components.values() if hasattr(fn, "components") else [fn]):
            _clear(component)  # so "cold" is cold
        cold.append(timed(fn, rollouts(batch, 2 * r)))
        step.append(timed(fn, rollouts(batch, 2 * r + 1)))
    return {"cold_s": round(statistics.median(cold), 3), "step_s": round(statistics.median(step), 3),
            "cold_runs": [round(x, 3) for x in cold], "step_runs": [round(x, 3) for x in step]}


def _clear(component) -> None:
    for name in ("cache", "_fwd_cache", "_rev_cache", "_fwd_prompts"):
        c = getattr(component, name, None)
        if c is not None:
            c.clear()


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16, help="rollouts per batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--device", default="cpu", help="cpu (the default, what the target is about), cuda, ...")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from rewards.coherence import CoherenceReward
    from rewards.config import RewardConfig
    from rewards.empathy import EmpathyReward
    from rewards.fluency import FluencyReward
    from rewards.lm import FrozenLM
    from rewards.mi import MutualInformationReward
    from rewards.stack import RewardStack

    device = args.device
    lm = FrozenLM("smollm2-135m", device=device)  # loaded once and shared, as the stack does
    lm.attach_reverse(ROOT / "models" / "reverse")
    empathy_ok = (ROOT / "models" / "epitome" / "config.json").exists()
    notes = []
    if not empathy_ok:
        notes.append("models/epitome is absent: the empathy component and the stack run without r_e")
    makers = {
        "fluency": lambda: FluencyReward(lm),
        "coherence": lambda: CoherenceReward(device=device),
        "mi": lambda: MutualInformationReward(lm, lm, 0.5),
    }
    if empathy_ok:
        makers = {"empathy": lambda: EmpathyReward(device=device), **makers}
    cfg = RewardConfig(w_empathy=1.0 if empathy_ok else 0.0)
    makers["stack"] = lambda: RewardStack(cfg, policy_backbone="smollm2-135m", device=device,
                                          lms={"smollm2-135m": lm})

    results = {}
    for name, make in makers.items():
        log.info("timing %s", name)
        results[name] = bench(make, args.repeats, args.batch)
        log.info("%s: %s", name, results[name])
    parts = [k for k in results if k != "stack"]
    summed = {k: round(sum(results[c][k] for c in parts), 3) for k in ("cold_s", "step_s")}

    commit = git_commit()
    out = {
        "benchmark": f"reward stack, seconds per batch of rollouts ({device})", "device": device,
        "batch": args.batch,
        "repeats": args.repeats,
        "models": {"lm": "smollm2-135m (+ models/reverse adapter)", "coherence": "models/coherence",
                   "empathy": "models/epitome" if empathy_ok else None},
        "results": results,
        "sum_of_components": summed,
        "notes": notes,
        "machine": machine_info(),
        "commit": commit,
    }
    res = Path(args.out)
    res.mkdir(parents=True, exist_ok=True)
    from core.jsonio import atomic_write_json, atomic_write_text

    atomic_write_json(res / "rewards.json", out)
    text = markdown(out, " ".join(argv or sys.argv[1:]))
    atomic_write_text(res / "rewards.md", text)
    print(text)
    return 0


def markdown(out: dict, args: str) -> str:
    """The report of one run (``out`` as written to rewards.json)."""
    m, results, summed = out["machine"], out["results"], out["sum_of_components"]
    load = (m.get("load_average") or [m.get("load_avg_1m", "?")])[0]  # older files: load_avg_1m
    where = m.get("gpu") or f"{m.get('cpu_count', '?')} CPUs"
    lines = [f"# Reward stack: seconds per batch of {out['batch']} rollouts ({out.get('device', 'cpu')})", "",
             f"Commit {out['commit']}; {m.get('platform', '?')}; {where}; torch {m.get('torch', '?')} "
             f"({m.get('torch_threads', m.get('threads', '?'))} threads); 1-min load average {load} "
             "(the machine is shared: compare rows of one run, not runs).", "",
             "`cold`: first batch, nothing cached. `step`: next batch, same states, new candidates "
             "(originals and repeated pairs cached). Median of "
             f"{out['repeats']} fresh instances.", "",
             "| component | cold (s) | step (s) |", "|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['cold_s']:.3f} | {r['step_s']:.3f} |")
    lines.append(f"| sum of components | {summed['cold_s']:.3f} | {summed['step_s']:.3f} |")
    lines += [""] + [f"Note: {n}" for n in out.get("notes", [])]
    lines.append("\nCommand: `python benchmarks/bench_rewards.py " + args + "`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
