"""Run by tests/test_rl.py under torchrun: two CPU processes, two RL steps."""
import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_fakes import PROMPTS, stop_reward, tiny_policy  # noqa: E402

from partner.config import RLConfig  # noqa: E402
from partner.rl_trainer import RLTrainer  # noqa: E402

out = Path(sys.argv[1])
acc = Accelerator(cpu=True)
policy = tiny_policy(seed=0)
start = sum(float(p.sum()) for p in policy.parameters() if p.requires_grad)
seen = []


def reward(seekers, originals, rewrites, edits):
    seen.extend(seekers)
    return stop_reward(seekers, originals, rewrites, edits)


cfg = RLConfig(method="rloo", steps=2, batch_size=2, samples_per_state=2, lr=1e-2, save_every=100, seed=5)
RLTrainer(policy, reward, PROMPTS, cfg, out / "run", accelerator=acc).train(2)
total = sum(float(p.double().sum()) for p in policy.parameters() if p.requires_grad)
(out / f"rank{acc.process_index}.json").write_text(json.dumps(
    {"world": acc.num_processes, "param_sum": total, "prompts_seen": sorted(set(seen)), "changed": total != start}))
