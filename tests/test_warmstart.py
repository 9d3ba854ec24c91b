import json

import pytest
import torch

from partner import edits as E
from partner import warmstart_data as D

EMPATHIC = ("sorry", "hear", "understand")


def fake_labeller(calls=None):
    def label(seekers, sentences):
        if calls is not None:
            calls.append(len(sentences))
        return [3.0 if any(w in s.lower() for w in EMPATHIC) else 0.0 for s in sentences]
    return label


SOURCES = [
    D.Source("a", "epitome", "I lost my job today.", "That sucks. I'm so sorry you lost your job. Try again."),
    D.Source("b", "esconv", "I feel alone.", "I hear you, that is really hard."),           # one sentence
    D.Source("c", "counselchat", "Exams stress me out.", "Study more. Sleep early. Drink water."),  # none
    D.Source("d", "epitome", "My cat is sick.", "Vets are good. Cats recover. I understand how worried you are."),
]


def test_examples_remove_the_empathic_sentence_and_label_its_slot():
    examples, report = D.build_examples(SOURCES, fake_labeller(), k=2, stop_fraction=0.5, seed=0)
    inserts = {e.id: e for e in examples if e.kind == "insert"}
    assert set(inserts) == {"a", "b", "d"}  # "c" has nothing empathic
    a = inserts["a"]
    assert a.sentence == "I'm so sorry you lost your job."
    assert a.response == "That sucks. Try again."
    # the gap is between "That sucks." and "Try again.": re-inserting restores the response
    rest = ["That sucks.", "Try again."]
    out, _ = E.apply_edit(rest, a.window_start, 2, a.position, a.sentence)
    assert E.join(out) == SOURCES[0].response
    b = inserts["b"]
    assert b.window == [] and b.position == 0 and b.response == ""
    d = inserts["d"]
    assert d.sentence.startswith("I understand") and d.window[-1] == "Cats recover."
    assert d.position == E.insert_class(len(d.window), 2)  # appended at the window's end
    stops = [e for e in examples if e.kind == "stop"]
    assert stops and all(e.position == E.stop_class(2) and e.sentence == "" for e in stops)
    for e in stops:  # the stop window still holds the empathic sentence
        assert any(any(w in s.lower() for w in EMPATHIC) for s in e.window)
    assert report.kinds["insert"] == 3 and report.responses_with_empathic_sentence == {"epitome": 2, "esconv": 1}
    assert sum(report.positions.values()) == len(examples)


def test_threshold_cap_and_score_cache(tmp_path):
    ex, _ = D.build_examples(SOURCES, fake_labeller(), k=2, threshold=4.0)
    assert ex == []
    calls = []
    cache = tmp_path / "scores.json"
    D.build_examples(SOURCES, fake_labeller(calls), k=2, cache_path=cache, stop_fraction=0.0, max_examples=2)
    assert sum(calls) > 0 and cache.exists()
    calls.clear()
    ex, _ = D.build_examples(SOURCES, fake_labeller(calls), k=2, cache_path=cache, stop_fraction=0.0, max_examples=2)
    assert calls == [] and len(ex) == 2


def test_heldout_split_is_by_response_and_roundtrips(tmp_path):
    examples, _ = D.build_examples(SOURCES * 1, fake_labeller(), k=2, stop_fraction=0.5)
    train, held = D.split_heldout(examples, 0.5, seed=1)
    assert not ({e.id for e in train} & {e.id for e in held})
    D.write_jsonl(tmp_path / "d.jsonl", examples)
    assert D.read_jsonl(tmp_path / "d.jsonl") == examples


def test_sources_keep_epitome_test_and_dev_out(data_dir):
    from core.corpora import epitome_splits

    sources = D.collect_sources(data_dir, ["epitome"])
    splits = epitome_splits(data_dir)
    held = {f"epitome-{p.sp_id}-{p.rp_id}" for p in splits["test"] + splits["dev"]}
    assert sources and not ({s.id for s in sources} & held)
    assert len(sources) == len(splits["train"])


# ---------------------------------------------------------------------------------------------
# training on the tiny GPT-2


def _tiny_examples():
    examples, _ = D.build_examples(SOURCES, fake_labeller(), k=2, stop_fraction=0.25, seed=0)
    return examples * 4


@pytest.mark.slow
def test_short_training_run_lowers_the_loss_and_resumes(tmp_path):
    from partner.config import PolicyConfig, WarmStartConfig
    from partner.policy import PartnerPolicy
    from partner.warmstart_trainer import train

    pcfg = PolicyConfig(backbone="tiny-gpt2", max_context_tokens=24, lora_r=4, lora_alpha=8)
    policy = PartnerPolicy.from_backbone("tiny-gpt2", pcfg, finetune="lora", seed=0)
    wcfg = WarmStartConfig(batch_size=4, lr=5e-3, max_steps=8, warmup_steps=0, save_steps=4, logging_steps=2,
                           position_loss_weight=1.0)
    examples = _tiny_examples()
    metrics = train(policy, list(examples), examples[:8], wcfg, tmp_path)
    assert metrics["steps"] == 8
    assert metrics["last_logged_loss"] < metrics["first_logged_loss"]
    before, after = metrics["heldout_before"], metrics["heldout_after"]
    assert after["sentence_perplexity"] < before["sentence_perplexity"]
    assert (tmp_path / "checkpoints" / "checkpoint-8" / "position_head.safetensors").exists()
    assert (tmp_path / "checkpoints" / "checkpoint-8" / "adapter_model.safetensors").exists()
    assert any((tmp_path / "tensorboard").iterdir())
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 8
    # a longer run with the same output folder resumes from checkpoint-8 instead of restarting
    wcfg.max_steps = 10
    fresh = PartnerPolicy.from_backbone("tiny-gpt2", pcfg, finetune="lora", seed=1)
    m2 = train(fresh, list(examples), examples[:8], wcfg, tmp_path)
    assert m2["steps"] == 10
    assert m2["loss_history"][:4] == metrics["loss_history"]  # steps 1-8 were not redone
    assert m2["heldout_after"]["sentence_perplexity"] < before["sentence_perplexity"]


@pytest.mark.slow
def test_stage_builds_data_trains_and_saves(tmp_path, monkeypatch):
    from partner.config import load_config
    from partner.policy import PartnerPolicy
    from partner.stages import warmstart as stage

    monkeypatch.setattr(D, "collect_sources", lambda *a, **k: SOURCES * 3)
    cfg = load_config(None, [f"run_dir={tmp_path}", "policy.backbone=tiny-gpt2", "policy.lora_r=2",
                             "warmstart.max_steps=2", "warmstart.batch_size=4", "warmstart.heldout_fraction=0.3"])
    out = stage.run(cfg, force=False, labeller=fake_labeller())
    assert (out / ".complete").exists() and (out / "data_report.json").exists()
    report = json.loads((out / "data_report.json").read_text())
    assert report["kinds"]["insert"] == 9
    pol = PartnerPolicy.load(str(out / "policy"), cfg.policy)
    acts = pol.act(["I feel alone."], [["Hi."]], sample=False, max_new_tokens=3)
    assert acts.positions.shape == (1,)
    mtime = (out / ".complete").stat().st_mtime
    assert stage.run(cfg, force=False) == out and (out / ".complete").stat().st_mtime == mtime  # skipped
