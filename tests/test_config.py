import pytest

from classifiers.configuration import ConfigError, describe
from partner.config import PartnerConfig, load_config, DEFAULT_CONFIG, REPO_ROOT


def test_default_and_paper_configs_load():
    d = load_config(DEFAULT_CONFIG)
    assert d.policy.backbone == "smollm2-135m" and d.classifier.backbone == "minilm"
    p = load_config(REPO_ROOT / "configs" / "paper.yaml")
    assert p.policy.backbone == "microsoft/DialoGPT-medium" and p.classifier.backbone == "roberta-base"
    assert (p.policy.window, p.policy.top_p) == (2, 0.92)
    assert (p.rewards.w_empathy, p.rewards.w_fluency, p.rewards.w_coherence, p.rewards.w_mi) == (1, 10, 0.1, 0.1)
    assert p.rewards.lambda_mi == 0.5 and p.rewards.w_guard == 0.0  # the guard penalty is ours, not the paper's
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
