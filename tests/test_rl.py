import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from partner import edits as E
from partner.config import RLConfig
from partner.rl_trainer import RLTrainer, RunningBaseline, _episode_logp, advantages, pg_loss
from rewards.stack import RewardOutput

from helpers.rl_fakes import PROMPTS, stop_reward, tiny_policy  # noqa: E402


def test_rloo_is_leave_one_out():
    r = torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 10.0])
    adv = advantages(r, "rloo", 3)
    assert torch.allclose(adv, torch.tensor([1 - 2.5, 2 - 2.0, 3 - 1.5, 0, 0, 0]))


def test_reinforce_uses_the_running_mean_before_this_batch():
    b = RunningBaseline(window=3)
    assert torch.equal(advantages(torch.tensor([2.0]), "reinforce", baseline=b), torch.tensor([2.0]))
    b.update([1.0, 2.0, 3.0, 4.0])  # window keeps the last 3
    assert b.value() == 3.0
    assert torch.equal(advantages(torch.tensor([5.0, 1.0]), "reinforce", baseline=b), torch.tensor([2.0, -2.0]))


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.slow
def test_update_moves_log_prob_of_sampled_action_with_the_advantage(sign):
    from partner.episode import run_episodes

    policy = tiny_policy()
    seekers, responses = [p[0] for p in PROMPTS], [p[1] for p in PROMPTS]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        eps = run_episodes(policy, seekers, responses, sample=True, generator=g)
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05)
    before = _episode_logp(policy, eps).detach()
    # The recomputed log-prob is exactly the one recorded while sampling.
    recorded = torch.tensor([sum(s.logp_position + s.logp_sentence for s in ep.steps) for ep in eps])
    assert torch.allclose(before, recorded, atol=1e-4)
    loss = pg_loss(_episode_logp(policy, eps), torch.full((len(eps),), sign))
    loss.backward()
    opt.step()
    after = _episode_logp(policy, eps).detach()
    assert ((after - before) * sign > 0).all()


def test_logged_position_entropy_reads_each_state_once(tmp_path, monkeypatch):
    import partner.rl_trainer as rl_trainer

    policy = tiny_policy()
    seekers, windows = [p[0] for p in PROMPTS[:2]], [[p[1]] for p in PROMPTS[:2]]
    once = rl_trainer._position_entropy(policy, seekers, windows)
    # RLOO's k samples of a state are k equal rows: the mean over one row per state is the same
    assert once == pytest.approx(rl_trainer._position_entropy(policy, seekers * 3, windows * 3), abs=1e-5)
    rows = []
    monkeypatch.setattr(rl_trainer, "_position_entropy",
                        lambda p, s, w: rows.append(len(s)) or once)
    cfg = RLConfig(method="rloo", steps=1, batch_size=2, samples_per_state=3, kl_coef=0.0, save_every=100, seed=1)
    RLTrainer(policy, stop_reward, PROMPTS, cfg, tmp_path).train_step()
    assert rows == [2]


def _tiny_llama_policy_folder(tmp_path):
    """A saved policy on a random 4-layer Llama backbone with LoRA on its top 2 layers."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.registry import load_tokenizer
    from partner.config import PolicyConfig
    from partner.policy import PartnerPolicy

    tok = load_tokenizer("tiny-gpt2")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                                 bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
                     ).save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")
    cfg = PolicyConfig(max_sentence_tokens=6, max_edits=1, lora_layers=2)
    PartnerPolicy.from_backbone(str(tmp_path / "llama"), cfg, device="cpu").save_pretrained(tmp_path / "policy")
    return tmp_path / "policy", cfg


def test_the_kl_reference_reuses_the_policys_lower_layers(tmp_path):
    from partner.episode import run_episodes
    from partner.policy import PartnerPolicy
    from partner.rl_trainer import SharedLowerLayers

    folder, cfg = _tiny_llama_policy_folder(tmp_path)
    policy = PartnerPolicy.load(str(folder), cfg, device="cpu", trainable=True)
    ref = PartnerPolicy.load(str(folder), cfg, device="cpu")
    assert policy.first_adapted_layer == ref.first_adapted_layer == 2
    shared = SharedLowerLayers(policy, ref)
    assert shared.split == 2
    assert SharedLowerLayers(tiny_policy(), tiny_policy()).split == 0  # GPT-2: not Llama-style, full passes
    policy.decoder().embed_tokens.weight.requires_grad_(True)
    assert SharedLowerLayers(policy, ref).split == 0  # a trained embedding changes every layer's input
    policy.decoder().embed_tokens.weight.requires_grad_(False)
    with torch.no_grad():
        eps = run_episodes(policy, [p[0] for p in PROMPTS], [p[1] for p in PROMPTS], sample=True,
                           generator=torch.Generator().manual_seed(0))
        full = _episode_logp(ref, eps)
    with shared.capture():
        _episode_logp(policy, eps)
    calls = []
    hook = ref.decoder().layers[0].register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad(), shared.reuse():
        reused = _episode_logp(ref, eps)
    hook.remove()
    assert calls == []  # the reference's lower layers did not run
    assert len(ref.decoder().layers) == 4  # and are back in place
    assert torch.allclose(full, reused, atol=1e-4)
    # a pass over other sequences cannot silently reuse the wrong hidden states
    with shared.capture():
        _episode_logp(policy, eps[:2])
    with pytest.raises(RuntimeError, match="cannot reuse"), torch.no_grad(), shared.reuse():
        _episode_logp(ref, eps)
    # in a training step: the policy starts as the reference, so the KL through the reused layers is 0
    rl_cfg = RLConfig(method="rloo", steps=1, batch_size=2, samples_per_state=2, kl_coef=0.1, save_every=100, seed=1)
    trainer = RLTrainer(policy, stop_reward, PROMPTS, rl_cfg, tmp_path / "rl", ref_policy=ref)
    assert trainer.shared.split == 2
    assert abs(trainer.train_step().kl) < 1e-4


@pytest.mark.slow
def test_training_raises_the_reward_of_a_learnable_task(tmp_path):
    policy = tiny_policy()
    cfg = RLConfig(method="rloo", steps=12, batch_size=4, samples_per_state=4, lr=3e-3, save_every=100,
                   kl_coef=0.0, seed=1)
    trainer = RLTrainer(policy, stop_reward, PROMPTS, cfg, tmp_path)
    hist = trainer.train(cfg.steps)
    first = sum(h["reward"] for h in hist[:3]) / 3
    last = sum(h["reward"] for h in hist[-3:]) / 3
    assert last > first + 0.2, (first, last)
    assert (tmp_path / "tensorboard").is_dir()


@pytest.mark.slow
def test_kill_and_resume_continues_from_the_checkpoint(tmp_path):
    cfg = RLConfig(method="reinforce", steps=3, batch_size=2, lr=1e-2, save_every=1, kl_coef=0.1, seed=3)
    def length_reward(seekers, originals, rewrites, edits):
        return RewardOutput([len(r) / 50 for r in rewrites], details={"chars": [float(len(r)) for r in rewrites]})

    t1 = RLTrainer(tiny_policy(), length_reward, PROMPTS, cfg, tmp_path, ref_policy=tiny_policy())
    t1.train(2)  # "killed" after step 2's checkpoint
    t2 = RLTrainer(tiny_policy(), length_reward, PROMPTS, cfg, tmp_path, ref_policy=tiny_policy())
    assert t2.resume() and t2.step == 2
    for a, b in zip([p for p in t1.policy.parameters() if p.requires_grad],
                    [p for p in t2.policy.parameters() if p.requires_grad]):
        assert torch.equal(a, b)
    assert list(t2.baseline.values) == list(t1.baseline.values)
    s1, s2 = t1.opt.state_dict()["state"], t2.opt.state_dict()["state"]
    assert s1.keys() == s2.keys() and sum(float(v["exp_avg"].abs().sum()) for v in s2.values()) > 0
    assert all(torch.equal(s1[i]["exp_avg_sq"], s2[i]["exp_avg_sq"]) for i in s1)
    t2.train(3)
    assert t2.step == 3 and len(t2.history) == 3
    assert all(h["details"]["chars"] > 0 for h in t2.history)  # the reward's parts are logged each step


@pytest.mark.slow
def test_two_processes_train_data_parallel(tmp_path):
    """torchrun with 2 CPU processes (gloo): both ranks end with identical weights."""
    script = Path(__file__).parent / "helpers" / "rl_ddp.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29533", str(script), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    sums = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sums[0]["world"] == 2 and sums[0]["param_sum"] == pytest.approx(sums[1]["param_sum"], abs=1e-6)
    assert sums[0]["prompts_seen"] != sums[1]["prompts_seen"]  # each rank rolls out its own states
    assert sums[0]["changed"]


@pytest.mark.slow
def test_rl_stage_writes_agent_curves_and_skips_when_complete(tmp_path, data_dir, monkeypatch):
    from partner.config import load_config, DEFAULT_CONFIG
    from partner.policy import PartnerPolicy
    from partner.stages import rl as stage

    cfg = load_config(DEFAULT_CONFIG, [f"run_dir={tmp_path}", "policy.backbone=tiny-gpt2", "policy.max_edits=1",
                                       "policy.max_sentence_tokens=4", "rl.steps=2", "rl.batch_size=2",
                                       "rl.samples_per_state=2", "rl.kl_coef=0.1", "rl.save_every=1",
                                       f"data_dir={data_dir}"])
    tiny_policy().save_pretrained(tmp_path / "warmstart" / "policy")
    (tmp_path / "warmstart" / ".complete").write_text("ok\n")
    out = stage.run(cfg, reward_fn=stop_reward)
    for name in ("policy/policy_config.json", "history.json", "curves.png", ".complete"):
        assert (out / name).exists(), name
    assert len(json.loads((out / "history.json").read_text())) == 2
    PartnerPolicy.load(str(out / "policy"))  # the agent loads back
    calls = []
    stage.run(cfg, reward_fn=lambda *a: calls.append(1))
    assert not calls  # complete: skipped
    # a higher rl.steps continues the finished run from its last checkpoint
    cfg.rl.steps = 3
    stage.run(cfg, reward_fn=stop_reward)
    history = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in history] == [1, 2, 3]
    assert json.loads((out / ".complete").read_text())["steps"] == 3


@pytest.mark.slow
def test_the_reward_state_is_checkpointed_and_restored(tmp_path):
    """A stateful reward (r_n's memory of recent episodes) resumes where it was, so scores match an unbroken run."""
    from rewards.novelty import NoveltyPenalty

    class Novel:
        def __init__(self):
            self.pen = NoveltyPenalty(window=64)

        def __call__(self, seekers, originals, rewrites, edits):
            return RewardOutput(self.pen(seekers, originals, rewrites, edits))

        def state_dict(self):
            return self.pen.state_dict()

        def load_state_dict(self, state):
            self.pen.load_state_dict(state)

    cfg = RLConfig(method="reinforce", steps=2, batch_size=2, lr=1e-2, save_every=1, kl_coef=0.0, seed=5)
    t1 = RLTrainer(tiny_policy(), Novel(), PROMPTS, cfg, tmp_path)
    t1.train(2)
    assert len(t1.reward_fn.pen.memory) == 4
    t2 = RLTrainer(tiny_policy(), Novel(), PROMPTS, cfg, tmp_path)
    assert t2.resume() and t2.reward_fn.pen.memory == t1.reward_fn.pen.memory


@pytest.mark.slow
def test_max_minutes_stops_at_a_checkpoint_and_a_rerun_continues(tmp_path, data_dir):
    """rl.max_minutes (a leased GPU): the run stops after the step that passes the limit, saved, with the
    policy written at that step; the same command again goes on towards rl.steps."""
    from partner.config import load_config, DEFAULT_CONFIG
    from partner.stages import rl as stage

    cfg = load_config(DEFAULT_CONFIG, [f"run_dir={tmp_path}", "policy.backbone=tiny-gpt2", "policy.max_edits=1",
                                       "policy.max_sentence_tokens=4", "rl.steps=3", "rl.batch_size=2",
                                       "rl.samples_per_state=2", "rl.kl_coef=0.0", "rl.save_every=10",
                                       "rl.max_minutes=1e-9", f"data_dir={data_dir}"])
    tiny_policy().save_pretrained(tmp_path / "warmstart" / "policy")
    (tmp_path / "warmstart" / ".complete").write_text("ok\n")
    out = stage.run(cfg, reward_fn=stop_reward)
    assert json.loads((out / ".complete").read_text())["steps"] == 1  # one step, then out of time
    assert (out / "checkpoints" / "step-1" / ".complete").exists()   # saved although save_every is 10
    assert (out / "policy" / "policy_config.json").exists()
    stage.run(cfg, reward_fn=stop_reward)
    assert json.loads((out / ".complete").read_text())["steps"] == 2
    cfg.rl.max_minutes = 0.0
    stage.run(cfg, reward_fn=stop_reward)
    assert [h["step"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
