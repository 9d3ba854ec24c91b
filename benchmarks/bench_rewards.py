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
r_m and the stack are also timed with r_m as it was at 769d52b (its forward term running every
(post, rewrite) sequence whole), and with r_m's floor: both terms on the same tokens through the
backbone stripped of its transformer layers (embedding, norm, LM head), the least any r_m scoring
them with this vocabulary and width can cost. The stack rows report r_m's share of their time
(issue 28's target: at most 25 %). The preference term (rewards/preference.py, off by default) is timed on its
own when the commit has it and models/preference exists.

    python benchmarks/bench_rewards.py [--repeats 3] [--threads N]

Writes benchmarks/results/rewards.json and .md with machine info, load average and the git commit.
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


def timed(fn, batch) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn(*batch)
    return time.perf_counter() - t, time.process_time() - c


class Clock:
    """Wall seconds spent inside one stack component's entry points (its share of the stack's time)."""

    def __init__(self, component):
        self.seconds = 0.0
        for name in ("parts", "breakdown", "__call__"):
            fn = getattr(component, name, None)
            if fn is not None and name != "__call__":
                setattr(component, name, self._wrap(fn))
        self.component = component

    def _wrap(self, fn):
        def inner(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t
        return inner


def bench_all(makers: dict, repeats: int, batch: int) -> dict:
    """Per maker: median wall and CPU seconds of a cold batch and of a following (warm-cache) batch over
    fresh instances, the makers taking turns in every repeat (so shared load falls on all of them);
    for stacks, also the MI component's seconds inside them."""
    runs: dict = {name: {"cold": [], "step": [], "cold_cpu": [], "step_cpu": [], "mi_cold": [], "mi_step": []}
                  for name in makers}
    for r in range(repeats):
        for name, make in makers.items():
            fn = make()
            fn(*rollouts(batch, 100 + r))  # warm-up: loads the models
            parts = fn.components.values() if hasattr(fn, "components") else [fn]
            for component in parts:
                _clear(component)  # so "cold" is cold
            mi = fn.components.get("mi") if hasattr(fn, "components") else None
            clock = Clock(mi) if mi is not None else None
            for kind, round_ in (("cold", 2 * r), ("step", 2 * r + 1)):
                before = clock.seconds if clock else 0.0
                wall, cpu = timed(fn, rollouts(batch, round_))
                runs[name][kind].append(wall)
                runs[name][f"{kind}_cpu"].append(cpu)
                if clock:
                    runs[name][f"mi_{kind}"].append(clock.seconds - before)
            log.info("%s, repeat %d: cold %.2f s, step %.2f s", name, r, runs[name]["cold"][-1], runs[name]["step"][-1])
    out = {}
    med = statistics.median
    for name, x in runs.items():
        out[name] = {"cold_s": round(med(x["cold"]), 3), "step_s": round(med(x["step"]), 3),
                     "cold_cpu_s": round(med(x["cold_cpu"]), 3), "step_cpu_s": round(med(x["step_cpu"]), 3),
                     "cold_runs": [round(v, 3) for v in x["cold"]], "step_runs": [round(v, 3) for v in x["step"]]}
        if x["mi_step"]:
            out[name]["mi_share_cold"] = round(med([m / t for m, t in zip(x["mi_cold"], x["cold"])]), 3)
            out[name]["mi_share_step"] = round(med([m / t for m, t in zip(x["mi_step"], x["step"])]), 3)
    return out


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
    class MIAsBefore(MutualInformationReward):
        """r_m as at 769d52b: the forward term runs every (post, rewrite) sequence whole."""

        def _forward(self, keys):
            from classifiers.reverse import FORWARD_LABELS, encode_conditional

            tok = self.forward_lm.tok
            enc = [encode_conditional(tok, s, r, FORWARD_LABELS, self.max_seeker_tokens, self.max_response_tokens)
                   for s, r in keys]
            return [s / n for s, n in self.forward_lm.target_logprobs(enc, adapter=False, batch_size=self.batch_size)]

    class MIFloor(MutualInformationReward):
        """r_m's two terms on the same token sequences through the backbone with no transformer layers
        (embedding, final norm, LM head): what any r_m that scores these tokens with this LM's
        vocabulary and width costs at least, whatever its layers. Its values mean nothing."""

        def _reverse(self, keys):
            from classifiers.reverse import REVERSE_LABELS, encode_conditional

            tok = self.reverse_lm.tok
            enc = [encode_conditional(tok, r, s, REVERSE_LABELS, *self.reverse_lengths) for s, r in keys]
            return [s / n for s, n in self.reverse_lm.target_logprobs(enc, adapter=False, batch_size=self.batch_size)]

    floor_lm = []

    def layerless_lm():
        if not floor_lm:
            from core.registry import load_causal_lm

            model, tok = load_causal_lm("smollm2-135m", device=device)
            model.model.layers = torch.nn.ModuleList()
            model.config.num_hidden_layers = 0
            floor_lm.append(FrozenLM.from_model(model, tok, "smollm2-135m without layers"))
        return floor_lm[0]

    cfg = RewardConfig(w_empathy=1.0 if empathy_ok else 0.0)

    def stack(old_mi: bool = False, floor: bool = False):
        st = RewardStack(cfg, policy_backbone="smollm2-135m", device=device, lms={"smollm2-135m": lm})
        mi = st.components["mi"]
        if old_mi or floor:
            cls, lms = (MIAsBefore, (mi.forward_lm, mi.reverse_lm)) if old_mi else (MIFloor, (layerless_lm(),) * 2)
            st.components["mi"] = cls(*lms, mi.lambda_mi, mi.max_seeker_tokens, mi.max_response_tokens,
                                      mi.batch_size, reverse_lengths=mi.reverse_lengths)
        return st

    def mi_reward(old: bool = False, floor: bool = False):
        return stack(old, floor).components["mi"]  # r_m as the stack builds it (lengths, batch size)

    makers = {
        "fluency": lambda: FluencyReward(lm, cfg.max_response_tokens, cfg.batch_size),
        "coherence": lambda: CoherenceReward(device=device),
        "mi (as at 769d52b)": lambda: mi_reward(old=True),
        "mi": mi_reward,
        "mi (floor: no transformer layers)": lambda: mi_reward(floor=True),
    }
    if empathy_ok:
        makers = {"empathy": lambda: EmpathyReward(device=device), **makers}
    try:  # the preference term (issue 25), once it exists: off by default, timed on its own
        from rewards.preference import PreferenceReward

        if (ROOT / "models" / "preference").exists():
            makers["preference (off by default)"] = lambda: PreferenceReward(path=str(ROOT / "models" / "preference"),
                                                                             device=device)
    except ImportError:
        notes.append("rewards/preference.py is not in this commit: no preference term timed")
    makers["stack (mi as at 769d52b)"] = lambda: stack(old_mi=True)
    makers["stack"] = stack
    makers["stack (mi floor)"] = lambda: stack(floor=True)

    load_start = os.getloadavg()[0]
    results = bench_all(makers, args.repeats, args.batch)
    parts = [k for k in results if not k.startswith(("stack", "mi (", "preference"))]
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
        "machine": {**machine_info(), "load_average_start": round(load_start, 2)},
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
             f"({m.get('torch_threads', m.get('threads', '?'))} threads); 1-min load average "
             + (f"{m['load_average_start']} at the start, " if "load_average_start" in m else "") + f"{load} at the end "
             "(the machine is shared: compare rows of one run, not runs).", "",
             "`cold`: first batch, nothing cached. `step`: next batch, same states, new candidates "
             "(originals and repeated pairs cached). Median of "
             f"{out['repeats']} fresh instances, every row taking its turn in each repeat. CPU: this process's CPU "
             "seconds (less sensitive to other jobs than wall time). MI share: wall time inside r_m over the "
             "stack's. `as at 769d52b`: r_m's forward term running every (post, rewrite) sequence whole, as "
             "before its prompts were cached. `mi floor`: r_m's tokens through the backbone without its transformer "
             "layers (embedding, norm, LM head only; values meaningless), the least an exact r_m on this LM costs.",
             "",
             "| component | cold (s) | step (s) | cold CPU (s) | step CPU (s) | MI share of the stack, cold / step |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        share = (f"{r['mi_share_cold']:.0%} / {r['mi_share_step']:.0%}" if "mi_share_step" in r else "")
        lines.append(f"| {name} | {r['cold_s']:.3f} | {r['step_s']:.3f} | {r.get('cold_cpu_s', float('nan')):.3f} | "
                     f"{r.get('step_cpu_s', float('nan')):.3f} | {share} |")
    lines.append(f"| sum of components | {summed['cold_s']:.3f} | {summed['step_s']:.3f} | | | |")
    lines += [""] + [f"Note: {n}" for n in out.get("notes", [])]
    lines.append("\nCommand: `python benchmarks/bench_rewards.py " + args + "`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
