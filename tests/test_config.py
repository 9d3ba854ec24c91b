import pytest

from core.configuration import ConfigError, describe
from partner.config import PartnerConfig, load_config, DEFAULT_CONFIG, REPO_ROOT


def test_default_and_paper_configs_load():
    d = load_config(DEFAULT_CONFIG)
    assert d.policy.backbone == "smollm2-135m" and d.classifier.backbone == "minilm"
    p = load_config(REPO_ROOT / "configs" / "paper.yaml")
    assert p.policy.backbone == "microsoft/DialoGPT-medium" and p.classifier.backbone == "roberta-base"
    assert (p.policy.window, p.policy.top_p) == (2, 0.92)
    assert (p.rewards.w_empathy, p.rewards.w_fluency, p.rewards.w_coherence, p.rewards.w_mi) == (1, 10, 0.1, 0.1)
    assert p.rewards.lambda_mi == 0.5 and p.rewards.w_novelty == 0.0  # the novelty penalty is ours, not the paper's
    assert (p.rl.batch_size, p.rl.lr, p.rl.steps, p.rl.baseline_window) == (16, 1e-5, 20000, 100)


def test_overrides_are_typed():
    c = load_config(DEFAULT_CONFIG, ["policy.top_p=0.5", "rl.steps=7", "classifier.shared_encoder=true"])
    assert c.policy.top_p == 0.5 and c.rl.steps == 7 and c.classifier.shared_encoder is True


@pytest.mark.parametrize("bad, msg", [
    (["policy.top_pp=0.5"], "unknown key"),
    (["rl.steps=many"], "expected int"),
    (["rl.steps"], "section.key=value"),
])
def test_bad_overrides_are_errors(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(DEFAULT_CONFIG, bad)


def test_every_field_has_help():
    missing = [line for line in describe(PartnerConfig) if "  " not in line]
    assert not missing


def test_a_config_can_state_only_what_it_changes_over_a_base(tmp_path):
    import dataclasses

    gpu = load_config(REPO_ROOT / "configs" / "gpu.yaml")
    default = load_config(DEFAULT_CONFIG)
    assert (gpu.run_dir, gpu.rl.steps, gpu.rl.batch_size, gpu.rl.save_every) == ("runs/gpu", 400, 16, 10)
    # everything else, inside the changed section too, is the default config's
    assert dataclasses.replace(gpu.rl, steps=default.rl.steps, batch_size=default.rl.batch_size,
                               save_every=default.rl.save_every) == default.rl
    assert (gpu.classifier, gpu.rewards, gpu.policy) == (default.classifier, default.rewards, default.policy)
    (tmp_path / "a.yaml").write_text("base: b.yaml\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml not found"):
        load_config(tmp_path / "c.yaml")
    # overrides still apply last, over the base and the file
    assert load_config(REPO_ROOT / "configs" / "gpu.yaml", ["rl.steps=3"]).rl.steps == 3


@pytest.mark.parametrize("bad, msg", [
    (["rewrite.decoding=beam"], r"--set rewrite\.decoding: must be one of greedy, sample; got 'beam'"),
    (["rl.method=ppo"], r"rl\.method: must be one of reinforce, rloo; got 'ppo'"),
    (["rewrite.method=bart"], r"rewrite\.method: must be one of"),
    (["policy.top_p=1.5"], r"policy\.top_p: must be at most 1"),
    (["policy.top_p=0"], r"policy\.top_p: must be above 0"),
    (["rl.lr=-1e-4"], r"rl\.lr: must be above 0"),
    (["rewrite.batch_size=0"], r"rewrite\.batch_size: must be at least 1"),
    (["warmstart.stop_fraction=2"], r"warmstart\.stop_fraction: must be at most 1"),
    (["classifier.finetune=adapter"], r"classifier\.finetune: must be one of"),
])
def test_values_are_checked_when_loaded(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(DEFAULT_CONFIG, bad)


def test_a_bad_value_in_a_file_names_the_file_and_the_key(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("classifier:\n  epochs: many\nrewrite:\n  decoding: beam\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    # "exp.yaml, key classifier.epochs", never "exp.yaml.classifier.epochs"
    assert str(err.value).startswith(f"{f}, key classifier.epochs: expected int")
    f.write_text("rewrite:\n  decoding: beam\n")
    with pytest.raises(ConfigError, match=rf"{f}, key rewrite\.decoding: must be one of greedy, sample"):
        load_config(f)


def test_describe_lists_choices_and_ranges():
    lines = describe(PartnerConfig)
    assert any(line.startswith("policy.top_p = 0.92") and line.endswith("[> 0, <= 1]") for line in lines)
