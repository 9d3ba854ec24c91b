"""r_x, the post-specificity reward (rewards/context.py), with a context-aware and a context-free fake scorer."""

import re

import pytest
import torch

from rewards.config import RewardConfig
from rewards.context import ContextReward, unrelated_posts
from rewards.empathy import EmpathyReward
from rewards.stack import RewardStack

DOG = "My dog died last week and I can't stop crying."
EXAMS = "I failed my exams again and my parents are furious."
WORK = "Nobody at work talks to me anymore."
ORIG = "That is life."
GENERIC = "I'm so sorry to hear that. That is life."         # fits any post
SPECIFIC = "Losing your dog last week must hurt. That is life."  # names this post's topic


def _words(text):
    return set(re.findall(r"[a-z]+", text.lower()))


class ContextAware:
    """ER 1 for 'sorry' under any post; IP 2 when the response names a word of four or more letters
    from the post (it answers what the seeker wrote)."""

    def __init__(self):
        self.pairs = []

    def level_tensor(self, seekers, responses, mode="argmax", batch_size=32):
        self.pairs += list(zip(seekers, responses))
        rows = []
        for s, r in zip(seekers, responses):
            shared = {w for w in _words(s) & _words(r) if len(w) >= 4} - {"that", "life"}
            rows.append([1.0 if "sorry" in r.lower() else 0.0, 2.0 if shared else 0.0, 0.0])
        return torch.tensor(rows).reshape(-1, 3)


class ContextFree(ContextAware):
    def level_tensor(self, seekers, responses, mode="argmax", batch_size=32):
        return super().level_tensor(["" for _ in seekers], responses, mode, batch_size)


def test_unrelated_posts_rotate_the_batch_and_borrow_from_earlier_batches():
    assert unrelated_posts([DOG, DOG, EXAMS, EXAMS, WORK]) == [EXAMS, EXAMS, WORK, WORK, DOG]
    assert unrelated_posts([DOG, DOG]) == [None, None]               # nothing else seen yet
    assert unrelated_posts([DOG, DOG], [DOG, WORK]) == [WORK, WORK]  # the first earlier post that differs
    assert unrelated_posts([]) == []


def test_only_the_post_specific_part_of_the_gain_is_paid():
    rx = ContextReward(EmpathyReward(ContextAware()))
    seekers = [DOG, DOG, EXAMS]
    out = rx(seekers, [ORIG] * 3, [GENERIC, SPECIFIC, ORIG])
    # generic: +1 under every post -> 0; specific: +2 under its own post, 0 under the exams post -> 2; stop -> 0
    assert out == [0.0, 2.0, 0.0]
    own, other = rx.parts(seekers, [ORIG] * 3, [GENERIC, SPECIFIC, ORIG])
    assert own == [1.0, 2.0, 0.0] and other == [1.0, 0.0, 0.0]


def test_a_context_free_scorer_gives_zero_everywhere():
    rx = ContextReward(EmpathyReward(ContextFree()))
    assert rx([DOG, EXAMS, WORK], [ORIG] * 3, [GENERIC, SPECIFIC, ORIG]) == [0.0, 0.0, 0.0]


def test_a_single_post_batch_uses_the_remembered_post_and_the_memory_survives_a_checkpoint():
    rx = ContextReward(EmpathyReward(ContextAware()))
    assert rx([DOG, DOG], [ORIG] * 2, [SPECIFIC, GENERIC]) == [0.0, 0.0]  # no other post seen yet: r_x = 0
    rx([EXAMS, WORK], [ORIG] * 2, [ORIG, ORIG])
    state = rx.state_dict()
    again = ContextReward(EmpathyReward(ContextAware()))
    again.load_state_dict(state)
    assert again([DOG, DOG], [ORIG] * 2, [SPECIFIC, GENERIC]) == [2.0, 0.0]  # scored under a remembered post
    assert state == {"recent": [WORK, EXAMS]} and again.recent == [DOG, WORK]


def test_the_stack_adds_r_x_with_its_weight_shares_the_scorer_and_checkpoints_it():
    scorer = ContextAware()
    cfg = RewardConfig(w_empathy=1.0, w_fluency=0.0, w_coherence=0.0, w_mi=0.0, w_context=2.0)
    stack = RewardStack(cfg, policy_backbone="tiny-gpt2", empathy_scorer=scorer)
    assert stack.components["context"].empathy is stack.components["empathy"]  # one scorer, one cache
    out = stack([EXAMS, DOG], [ORIG] * 2, [GENERIC, SPECIFIC])
    assert out.components["empathy"] == [1.0, 2.0]
    assert out.components["context"] == [0.0, 2.0]
    assert out.details["context_unrelated"] == [1.0, 0.0]
    assert out.total == [pytest.approx(1.0), pytest.approx(2.0 + 2 * 2.0)]
    assert "context" in stack.state_dict()
    # with r_e off, r_x still gets its own scorer
    alone = RewardStack(RewardConfig(w_empathy=0.0, w_fluency=0.0, w_coherence=0.0, w_mi=0.0, w_context=1.0),
                        policy_backbone="tiny-gpt2", empathy_scorer=ContextAware())
    assert "empathy" not in alone.components
    assert alone([EXAMS, DOG], [ORIG] * 2, [GENERIC, SPECIFIC]).total == [0.0, 2.0]


def test_off_by_default():
    assert RewardConfig().w_context == 0.0
    stack = RewardStack(RewardConfig(w_fluency=0.0, w_coherence=0.0, w_mi=0.0), policy_backbone="tiny-gpt2",
                        empathy_scorer=ContextAware())
    assert "context" not in stack.components
