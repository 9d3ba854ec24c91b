"""partner-train rl: policy-gradient training from the warm-start policy with the reward stack.

Writes into ``<run_dir>/rl/``:

- ``checkpoints/step-N/`` (adapter + head + optimizer + baseline + RNG; a re-run resumes from the
  last complete one, so a kill loses at most ``rl.save_every`` steps);
- ``tensorboard/`` (every reward component, total reward, baseline, KL, position entropy, the
  position distribution, sample rewrites);
- ``policy/`` (the trained agent, loadable by ``PartnerPolicy.load`` and ``partner-rewrite --model``);
- ``history.json`` and ``curves.png`` (training curves); ``.complete``, written last, with the step
  count. Re-running with a higher ``rl.steps`` continues a finished run from its last checkpoint.

Prompts: the (seeker post, response) pairs of the EPITOME train split (the dev and test splits
never reach training). Starting point: ``<run_dir>/warmstart/policy`` if that stage is complete,
else the shipped warm-start policy in ``models/policy``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from core.corpora import epitome_splits
from core.jsonio import atomic_write_json, atomic_write_text
from partner.config import SHIPPED_MODELS
from partner.policy import PartnerPolicy
from partner.rl_trainer import plot_history, RLTrainer
from rewards.stack import RewardStack

log = logging.getLogger(__name__)


def warmstart_policy_path(cfg) -> Path:
    trained = Path(cfg.run_dir) / "warmstart"
    if (trained / ".complete").exists() and (trained / "policy").is_dir():
        return trained / "policy"
    return SHIPPED_MODELS / "policy"


def completed_steps(out: Path) -> int | None:
    """The step count a finished run recorded in its ``.complete`` marker (None if it did not say)."""
    try:
        return int(json.loads((out / ".complete").read_text())["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prompts(cfg) -> list[tuple[str, str]]:
    train = epitome_splits(cfg.data_path() / "epitome-reddit", seed=cfg.classifier.split_seed)["train"]
    return [(p.seeker_post, p.response_post) for p in train]


def run(cfg, force: bool = False, reward_fn=None) -> Path:
    import torch
    from accelerate import Accelerator

    out = Path(cfg.run_dir) / "rl"
    if (out / ".complete").exists() and not force:
        done = completed_steps(out)
        if done is None or done >= cfg.rl.steps:
            log.info("rl: %s is complete%s; skipping (--force retrains; a higher rl.steps continues it)", out,
                     "" if done is None else f" at {done} steps")
            return out
        log.info("rl: %s finished %d steps; continuing to rl.steps=%d from its last checkpoint", out, done,
                 cfg.rl.steps)
    if force and out.exists():
        shutil.rmtree(out)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    init = warmstart_policy_path(cfg)
    log.info("rl: starting from %s on %s (%d process(es))", init, acc.device, acc.num_processes)
    policy = PartnerPolicy.load(str(init), cfg.policy, device=acc.device, trainable=True)
    ref = PartnerPolicy.load(str(init), cfg.policy, device=acc.device) if cfg.rl.kl_coef > 0 else None
    if reward_fn is None:
        reward_fn = RewardStack.from_config(cfg, device=str(acc.device))
    trainer = RLTrainer(policy, reward_fn, prompts(cfg), cfg.rl, out, ref_policy=ref, accelerator=acc)
    history = trainer.train(cfg.rl.steps)
    if acc.is_main_process:
        policy.save_pretrained(out / "policy", half=True, extra={"trained_by": "partner-train rl",
                                                                  "steps": trainer.step, "init": str(init)})
        atomic_write_json(out / "history.json", history)
        plot_history(history, out / "curves.png")
        atomic_write_text(out / ".complete", json.dumps({"steps": trainer.step}) + "\n")
    acc.wait_for_everyone()
    return out
