"""The RL tests' tiny policy, prompts and a learnable reward; shared by tests/test_rl.py and the
two-process run it launches (tests/helpers/rl_ddp.py)."""

from partner.config import PolicyConfig
from rewards.stack import RewardOutput

PROMPTS = [("I failed my exam and feel stupid.", "Study harder. It happens."),
           ("My dog died yesterday.", "Get another dog."),
           ("I can't sleep at night.", "Try melatonin."),
           ("Nobody talks to me at school.", "Join a club.")]


def tiny_policy(seed=0):
    from partner.policy import PartnerPolicy

    policy = PartnerPolicy.from_backbone("tiny-gpt2", PolicyConfig(max_sentence_tokens=6, max_edits=1),
                                         finetune="lora", device="cpu", seed=seed)
    return policy.eval()


def stop_reward(seekers, originals, rewrites, edits):
    """1 for leaving the response alone, 0 for any edit: a policy can learn this from the head alone."""
    return RewardOutput([1.0 if r == o else 0.0 for r, o in zip(rewrites, originals)],
                        {"unchanged": [float(r == o) for r, o in zip(rewrites, originals)]})
