"""Where the time of one RL step goes (``partner-train rl`` at a config's settings, CPU by default).

Builds what ``partner-train rl`` builds (the warm-start policy, trainable; the warm-start reference
for the KL term; the reward stack; EPITOME train prompts) and runs ``RLTrainer.train_step`` with
wall-clock timers around each part:

- **rollouts**: ``run_episodes`` (the policy sampling positions and sentences, episode bookkeeping);
- **reward: <term>**: each reward term's computation (r_m split into its forward and reverse LM
  passes; ``mi (cache, tokenisation)`` is the rest of r_m);
- **log-probs, policy**: the teacher-forced pass over every episode's actions, with grad;
- **log-probs, warm-start reference**: the same pass through the reference, for the KL term;
- **backward**, **optimizer step**;
- **position entropy (logged)**: the teacher-forced pass behind the logged H(pos);
- **other**: the rest of the step (advantages, logging, tensorboard).

Timers nest (time inside an inner part is that part's only). The first step is a warm-up (the
reward models load lazily); the next ``--steps`` are timed and averaged. The synthetic batch of
``bench_rewards.py`` uses short example texts; this profile uses the real RL prompts.

    python benchmarks/profile_rl.py [--config configs/default.yaml] [--steps 3] [--threads 0] [--set k=v]

Writes benchmarks/results/rl-profile.json and .md with the machine, load average and commit.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from core.provenance import git_commit, parse_benchmark_args, write_report  # noqa: E402


def main(argv=None) -> int:
    import torch
    from accelerate import Accelerator

    import partner.rl_trainer as rl_trainer
    from partner.config import load_config
    from partner.policy import PartnerPolicy
    from partner.stages.rl import prompts, warmstart_policy_path
    from profile_rewrite import Timers
    from rewards.stack import RewardStack

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    ap.add_argument("--steps", type=int, default=3, help="timed steps after the warm-up step")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override, key=value")
    args = parse_benchmark_args(ap, argv, "rl-profile")
    cfg = load_config(args.config, args.overrides)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    init = warmstart_policy_path(cfg)
    policy = PartnerPolicy.load(str(init), cfg.policy, device=acc.device, trainable=True)
    ref = PartnerPolicy.load(str(init), cfg.policy, device=acc.device) if cfg.rl.kl_coef > 0 else None
    stack = RewardStack.from_config(cfg, device=str(acc.device))

    timers = Timers()
    for name, component in list(stack.components.items()):
        if name == "mi":
            component._forward = timers.wrap(component._forward, "reward: mi forward (LM pass)")
            component._reverse = timers.wrap(component._reverse, "reward: mi reverse (LM pass)")
            stack.components[name] = timers.wrap(component, "reward: mi (cache, tokenisation)")
        else:
            stack.components[name] = timers.wrap(component, f"reward: {name}")
    rl_trainer.run_episodes = timers.wrap(rl_trainer.run_episodes, "rollouts")
    rl_trainer._episode_logp = timers.wrap(
        rl_trainer._episode_logp, lambda who, _: "log-probs, policy" if who is policy else "log-probs, warm-start reference")
    rl_trainer._position_entropy = timers.wrap(rl_trainer._position_entropy, "position entropy (logged)")
    torch.Tensor.backward = timers.wrap(torch.Tensor.backward, "backward")
    with tempfile.TemporaryDirectory() as out:
        trainer = rl_trainer.RLTrainer(policy, stack, prompts(cfg), cfg.rl, out, ref_policy=ref, accelerator=acc)
        trainer.opt.step = timers.wrap(trainer.opt.step, "optimizer step")
        step = timers.wrap(trainer.train_step, "other")
        step()  # warm-up: loads the reward models
        timers.reset()
        load = [os.getloadavg()[0]]
        for _ in range(args.steps):
            step()
        load.append(os.getloadavg()[0])
    n = args.steps
    total = sum(timers.seconds.values())
    rows = sorted(({"part": k, "s_per_step": round(v / n, 3), "cpu_s_per_step": round(timers.cpu[k] / n, 3),
                    "share": round(v / total, 3)} for k, v in timers.seconds.items()), key=lambda r: -r["s_per_step"])
    reward = sum(r["s_per_step"] for r in rows if r["part"].startswith("reward"))
    mi = sum(r["s_per_step"] for r in rows if r["part"].startswith("reward: mi"))
    result = {"what": f"{Path(args.config).name} {' '.join(args.overrides)}".strip(),
              "states_x_samples": [cfg.rl.batch_size, cfg.rl.samples_per_state], "steps_timed": n,
              "s_per_step": round(total / n, 3), "reward_s_per_step": round(reward, 3), "mi_s_per_step": round(mi, 3),
              "rows": rows, "commit": git_commit(),
              "command": "python benchmarks/profile_rl.py " + " ".join(argv or sys.argv[1:])}
    lines = [f"# Where one RL step's time goes: {result['what']}", "",
             f"{cfg.rl.batch_size} states × {cfg.rl.samples_per_state} samples a step, EPITOME train prompts; "
             f"mean of {n} steps after a warm-up step. A step took {total / n:.1f} s: the reward stack "
             f"{reward:.1f} s ({reward / (total / n):.0%}), r_m {mi:.1f} s ({mi / (total / n):.0%} of the step, "
             f"{mi / reward:.0%} of the stack).", "",
             "| part | s / step | CPU s / step | share of the step |", "|---|---|---|---|"]
    lines += [f"| {r['part']} | {r['s_per_step']:.2f} | {r['cpu_s_per_step']:.2f} | {r['share']:.0%} |" for r in rows]
    write_report(args.out, result, lines, f"{load[0]:.1f} before, {load[1]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
