"""Reward stack logic with deterministic fake scorers and the tiny random GPT-2 (fast).

What each reward *means* on real models is pinned in test_rewards_slow.py.
"""

import json
import math
import re

import pytest
import torch

from rewards.coherence import CoherenceReward
from rewards.config import RewardConfig
from rewards.edit import EditInfo
from rewards.empathy import EmpathyReward
from rewards.fluency import FluencyReward
from rewards.lm import FrozenLM
from rewards.mi import MutualInformationReward
from rewards.stack import RewardStack
from rewards.trl import as_trl_reward

SEEKERS = ["My dog died last week and I can't stop crying.",
           "I failed my exams again and my parents are furious.",
           "Nobody at work talks to me anymore."]
ORIGINALS = ["Dogs are great.", "Study harder next time.", "Work is like that."]


class FakeEmpathy:
    """ER from 'sorry'/'feel', IP from 'understand', EX from a question mark; each capped at 2."""

    def __init__(self):
        self.calls = []

    def level_tensor(self, seekers, responses, mode="argmax", batch_size=32):
        self.calls.append(list(responses))
        rows = []
        for r in responses:
            low = r.lower()
            er = min(2, low.count("sorry") + low.count("feel"))
            ip = min(2, low.count("understand"))
            ex = min(2, r.count("?"))
            rows.append([er, ip, ex])
        levels = torch.tensor(rows, dtype=torch.float32).reshape(-1, 3)
        return levels * (0.9 if mode == "expected" else 1.0)


class FakeCoherence:
    """p(coherent) = word overlap (Jaccard) of the two sentences, squashed into (0, 1)."""

    def __init__(self):
        self.calls = []

    def prob(self, a, b, batch_size=64):
        self.calls.append(list(zip(a, b)))
        out = []
        for x, y in zip(a, b):
            wx, wy = set(re.findall(r"\w+", x.lower())), set(re.findall(r"\w+", y.lower()))
            out.append(0.05 + 0.9 * len(wx & wy) / max(1, len(wx | wy)))
        return out


class Exploding:
    def level_tensor(self, *a, **k):
        raise AssertionError("a switched-off component was computed")

    prob = level_tensor


@pytest.fixture(scope="module")
def tiny():
    from core.registry import load_causal_lm

    torch.manual_seed(0)
    model, tok = load_causal_lm("tiny-gpt2")
    return model, tok


@pytest.fixture(scope="module")
def reverse_dir(tiny, tmp_path_factory):
    """A reverse adapter on tiny-gpt2 with non-zero LoRA weights (so it visibly changes the model)."""
    from core.registry import load_causal_lm
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    base, _ = load_causal_lm("tiny-gpt2")
    peft = get_peft_model(base, LoraConfig(r=4, target_modules=["c_attn"], init_lora_weights=False))
    out = tmp_path_factory.mktemp("reverse")
    peft.save_pretrained(str(out / "adapter"))
    (out / "reverse.json").write_text(json.dumps({"backbone": "tiny-gpt2"}))
    return out


@pytest.fixture(scope="module")
def shared_lm(reverse_dir):
    lm = FrozenLM("tiny-gpt2")
    lm.attach_reverse(reverse_dir)
    return lm


# ---- empathy -----------------------------------------------------------------------------------


def test_empathic_sentence_raises_empathy_and_stop_is_zero():
    reward = EmpathyReward(FakeEmpathy())
    rewrites = [ORIGINALS[0] + " I am so sorry, I understand how much you miss him.", ORIGINALS[1], "Work is like that."]
    assert reward(SEEKERS, ORIGINALS, rewrites) == [2.0, 0.0, 0.0]  # ER +1, IP +1


def test_empathy_is_per_sample_on_the_0_6_scale_and_caches_originals():
    fake = FakeEmpathy()
    reward = EmpathyReward(fake)
    rewrites = ["Sorry, I feel for you. I understand, I understand. Why? How?", "Study harder.", "Hm."]
    assert reward(SEEKERS, ORIGINALS, rewrites)[0] == 6.0  # full scale, not the authors' half scale
    n_scored = sum(len(c) for c in fake.calls)
    reward(SEEKERS, ORIGINALS, ["Are you ok?", "Study harder.", "Hm."])  # originals cached, one new rewrite
    assert sum(len(c) for c in fake.calls) - n_scored == 1


def test_empathy_expected_mode_reaches_the_scorer():
    reward = EmpathyReward(FakeEmpathy(), mode="expected")
    assert reward(SEEKERS[:1], ["x"], ["sorry"]) == [pytest.approx(0.9)]
    with pytest.raises(ValueError):
        EmpathyReward(FakeEmpathy(), mode="mean")





# ---- fluency -----------------------------------------------------------------------------------


def test_fluency_is_exp_of_mean_token_loglik(tiny):
    from classifiers.reverse import encode_unconditional

    model, tok = tiny
    reward = FluencyReward(FrozenLM.from_model(model, tok))
    text = "I am so sorry you are going through this."
    ids, _ = encode_unconditional(tok, text)
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    (got,) = reward(["s"], ["o"], [text])
    assert got == pytest.approx(math.exp(-loss), rel=1e-4)  # per token: the HF loss is a token mean
    (empty,) = reward(["s"], ["o"], [""])
    assert 0.0 < empty <= 1.0


def test_fluency_ignores_padding_and_batch_composition(tiny):
    model, tok = tiny
    text = "That sounds really hard."
    alone = FluencyReward(FrozenLM.from_model(model, tok))(["s"], ["o"], [text])[0]
    batch = [text * 12, "ok", text, ""]  # much longer and shorter neighbours force padding
    mixed = FluencyReward(FrozenLM.from_model(model, tok), batch_size=4)(["s"] * 4, ["o"] * 4, batch)
    assert mixed[2] == pytest.approx(alone, rel=1e-5)
    assert len({round(x, 8) for x in mixed}) == 4


# ---- coherence ---------------------------------------------------------------------------------


def test_coherence_pairs_exclude_replaced_sentence_and_handle_stop():
    fake = FakeCoherence()
    reward = CoherenceReward(fake, empty_value=1.0)
    window = ["I lost my dog last week.", "The weather is nice today."]
    edits = [
        EditInfo("I miss my dog so much.", window, None, "insert"),
        EditInfo("I miss my dog so much.", window, 0, "replace"),
        EditInfo("", window, None, "stop"),
        EditInfo("Anything.", [], None, "insert"),
    ]
    out = reward(["s"] * 4, ["o"] * 4, ["r"] * 4, edits)
    p_dog, p_weather = fake.prob([window[0], window[1]], [edits[0].candidate] * 2)
    assert out[0] == pytest.approx((p_dog + p_weather) / 2)
    assert out[1] == pytest.approx(p_weather)  # the replaced sentence is not compared
    assert out[2] == 1.0 and out[3] == 1.0
    assert [len(c) for c in fake.calls[:1]] == [2]  # each distinct pair scored once in the batch


def test_coherence_off_topic_candidate_scores_lower_with_overlap_fake():
    reward = CoherenceReward(FakeCoherence())
    window = ["I lost my dog last week.", "My dog was my best friend."]
    on = EditInfo("Losing a dog like that is so painful.", window)
    off = EditInfo("The stock market closed higher on Tuesday.", window)
    a, b = reward(["s"] * 2, ["o"] * 2, ["r"] * 2, [on, off])
    assert a > b


def test_coherence_without_edits_uses_consecutive_sentences_and_caches():
    fake = FakeCoherence()
    reward = CoherenceReward(fake)
    out = reward(["s"] * 2, ["o"] * 2, ["I lost my dog. My dog was old. He was old.", "One sentence only."])
    p1, p2 = FakeCoherence().prob(["I lost my dog.", "My dog was old."], ["My dog was old.", "He was old."])
    assert out == [pytest.approx((p1 + p2) / 2), 1.0]
    reward(["s"], ["o"], ["I lost my dog. My dog was old. He was old."])
    assert len(fake.calls) == 1  # the second call is served from the cache


# ---- mutual information ------------------------------------------------------------------------


def test_mi_is_lambda_mix_of_forward_and_reverse_means(tiny, reverse_dir):
    from classifiers.reverse import FORWARD_LABELS, REVERSE_LABELS, encode_conditional

    model, tok = tiny
    lm = FrozenLM("tiny-gpt2")
    lm.attach_reverse(reverse_dir)
    mi = MutualInformationReward(lm, lm, lambda_mi=0.25)
    fwd, rev = mi.parts(SEEKERS[:1], ORIGINALS[:1])

    def mean_logp(m, ctx, tgt, labels):
        ids, n = encode_conditional(tok, ctx, tgt, labels, 64, 128)
        with torch.no_grad():
            logp = torch.log_softmax(m(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
        return logp[torch.arange(n - 1, len(ids) - 1), torch.tensor(ids[n:])].mean().item()

    assert fwd[0] == pytest.approx(mean_logp(model, SEEKERS[0], ORIGINALS[0], FORWARD_LABELS), abs=1e-4)
    untuned_rev = mean_logp(model, ORIGINALS[0], SEEKERS[0], REVERSE_LABELS)
    assert rev[0] != pytest.approx(untuned_rev, abs=1e-3)  # the adapter is on for p←
    with lm.model.disable_adapter():
        pass  # disabling must not detach it
    assert mi(SEEKERS[:1], ORIGINALS[:1], ORIGINALS[:1]) == [pytest.approx(0.25 * fwd[0] + 0.75 * rev[0])]


def test_mi_per_sample_independent_of_batch(shared_lm):
    lm = shared_lm
    mi = MutualInformationReward(lm, lm, batch_size=2)
    full = mi(SEEKERS, ORIGINALS, [ORIGINALS[0] * 5, "", ORIGINALS[2]])
    alone = MutualInformationReward(lm, lm)(SEEKERS[2:], ORIGINALS[2:], ORIGINALS[2:])
    assert full[2] == pytest.approx(alone[0], abs=1e-5)
    assert all(math.isfinite(x) and x < 0 for x in full)


# ---- stack and TRL -----------------------------------------------------------------------------


def _stack(lm, **weights):
    cfg = RewardConfig(reverse_model=str(lm.reverse_path), **weights)
    return RewardStack(cfg, policy_backbone="tiny-gpt2", empathy_scorer=FakeEmpathy(),
                       coherence_scorer=FakeCoherence(), lms={"tiny-gpt2": lm})


def test_stack_total_is_weighted_sum_and_shares_one_lm(shared_lm):
    stack = _stack(shared_lm)
    assert len(stack.lms) == 1  # fluency, MI forward and reverse: one base model
    rewrites = [ORIGINALS[0] + " I'm so sorry.", ORIGINALS[1], ORIGINALS[2]]
    edits = [EditInfo("I'm so sorry.", [ORIGINALS[0]]), EditInfo("", [ORIGINALS[1]], None, "stop"), None]
    out = stack(SEEKERS, ORIGINALS, rewrites, edits)
    assert set(out.components) == {"empathy", "fluency", "coherence", "mi"}
    w = {"empathy": 1.0, "fluency": 10.0, "coherence": 0.1, "mi": 0.1}
    for i in range(3):
        assert out.total[i] == pytest.approx(sum(w[k] * out.components[k][i] for k in w))
    assert out.components["empathy"][0] == 1.0 and out.components["empathy"][1] == 0.0
    assert {"empathy_before", "empathy_after", "mi_forward", "mi_reverse"} <= set(out.details)
    assert out.details["empathy_ER"] == [1.0, 0.0, 0.0] and out.details["empathy_EX"] == [0.0, 0.0, 0.0]
    assert set(out.means()) >= {"reward/total", "reward/fluency", "reward/mi_reverse"}
    assert len(out.rows()) == 3


def test_stack_weight_zero_switches_a_component_off(tiny):
    cfg = RewardConfig(w_empathy=0.0, w_coherence=0.0, w_mi=0.0)
    stack = RewardStack(cfg, policy_backbone="tiny-gpt2", empathy_scorer=Exploding(), coherence_scorer=Exploding(),
                        lms={"tiny-gpt2": FrozenLM.from_model(*tiny)})
    out = stack(SEEKERS, ORIGINALS, ORIGINALS)
    assert set(out.components) == {"fluency"}
    assert out.total == [pytest.approx(10.0 * f) for f in out.components["fluency"]]


def test_stack_batch_composition_and_padding_change_no_reward(shared_lm):
    rewrites = [ORIGINALS[0] + " I'm so sorry about your dog.", ORIGINALS[1] * 6, ORIGINALS[2]]
    edits = [EditInfo("I'm so sorry about your dog.", [ORIGINALS[0]]), None, None]
    full = _stack(shared_lm)(SEEKERS, ORIGINALS, rewrites, edits)
    alone = _stack(shared_lm)(SEEKERS[:1], ORIGINALS[:1], rewrites[:1], edits[:1])  # fresh caches
    for key in full.components:
        assert full.components[key][0] == pytest.approx(alone.components[key][0], abs=1e-5), key
    assert full.total[0] == pytest.approx(alone.total[0], abs=1e-4)


def test_trl_adapter_follows_grpo_calling_convention(shared_lm):
    stack = _stack(shared_lm)
    logged = {}
    fn = as_trl_reward(stack, name="partner")
    kwargs = dict(seeker_post=SEEKERS[:2], response_post=ORIGINALS[:2],
                  edit=[{"candidate": "So sorry.", "window": [ORIGINALS[0]], "replaced": None, "action": "insert"},
                        None],
                  trainer_state=None, log_extra=lambda *a: None, log_metric=lambda k, v: logged.__setitem__(k, v))
    out = fn(prompts=SEEKERS[:2], completions=[[{"role": "assistant", "content": "So sorry. " + ORIGINALS[0]}],
                                               [{"role": "assistant", "content": ORIGINALS[1]}]],
             completion_ids=[[1], [2]], **kwargs)
    assert len(out) == 2 and all(isinstance(x, float) for x in out)
    assert fn.__name__ == "partner" and "partner/fluency" in logged
    funcs, weights = stack.trl_reward_funcs()
    assert [f.__name__ for f in funcs] == ["empathy", "fluency", "coherence", "mi"] and weights == [1.0, 10.0, 0.1, 0.1]
    (emp,) = funcs[0](prompts=["p"], completions=["I am sorry."], completion_ids=[[1]],
                      seeker_post=["s"], response_post=["Okay."])
    assert emp == 1.0


def test_batch_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        EmpathyReward(FakeEmpathy())(SEEKERS, ORIGINALS[:2], ORIGINALS)
