"""EPITOME model, training, scorer, metrics and probe: logic on tiny-bert, behaviour on the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from classifiers.config import EpitomeConfig
from core.corpora import EpitomePair
from classifiers.epitome_metrics import iou_f1, level_metrics, rationale_metrics, runs, token_f1

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "epitome"


def _pairs(n=12):
    seekers = ["I lost my job and I feel worthless.", "My dog died yesterday, I can't stop crying.",
               "I'm so anxious about my exams.", "Nobody talks to me at school."]
    responses = ["I'm so sorry to hear that. What happened?", "I felt the same when my cat died.",
                 "Have you tried studying earlier?", "That sounds lonely. Do you want to talk?"]
    out = []
    for i in range(n):
        r = responses[i % 4]
        lv = {"ER": i % 3, "IP": (i + 1) % 3, "EX": (i + 2) % 3}
        spans = {m: ([(0, min(10, len(r)))] if lv[m] else []) for m in lv}
        out.append(EpitomePair(f"s{i}", f"r{i}", seekers[(i * 3) % 4] + f" ({i})", r, lv, spans))
    return out


def _tiny_cfg(**kw):
    # the tiny tests train frozen encoders without the ranking loss (the shipped recipe trains LoRA with it)
    base = dict(backbone="tiny-bert", max_len=24, train_layers=1, epochs=1, batch_size=4, eval_batch_size=8,
                finetune="none", context_margin=0.0, patience=2)
    base.update(kw)
    return EpitomeConfig(**base)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from classifiers.epitome_train import train

    out = tmp_path_factory.mktemp("epitome")
    pairs = _pairs()
    train(_tiny_cfg(), out, data={"train": pairs, "dev": pairs[:4]}, max_steps=2)
    return out


# ---------------------------------------------------------------------------- labels and spans

def test_token_labels_mark_overlapping_tokens_and_ignore_specials():
    from classifiers.epitome import token_labels

    offsets = torch.tensor([[[0, 0], [0, 3], [4, 8], [9, 12], [0, 0]]])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    lab = token_labels(offsets, mask, [{"ER": [(4, 10)], "IP": []}], ["ER", "IP"])
    assert lab[0, 0].tolist() == [-100, 0, 1, 1, -100]
    assert lab[0, 1].tolist() == [-100, 0, 0, 0, -100]


def test_token_spans_merge_adjacent_tokens_into_substrings():
    from classifiers.epitome import token_spans

    text = "I'm so sorry. What happened?"
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (4, 6), (7, 12), (12, 13), (14, 18), (19, 27), (27, 28), (0, 0)]
    keep = [False, False, False, False, True, True, True, False, True, True, False]
    assert token_spans(offsets, keep, text) == ["so sorry.", "happened?"]
    assert token_spans(offsets, keep, text, max_gap=1) == ["so sorry. What happened?"]
    lone = [False] * 6 + [True] + [False] * 4  # only the "." is kept: no span
    assert token_spans(offsets, lone, text) == []


# ---------------------------------------------------------------------------- metrics

def test_rationale_metrics_pinned():
    assert runs([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert token_f1([1, 1, 0, 0], [0, 1, 1, 0], both_empty=1.0) == pytest.approx(0.5)
    assert token_f1([0, 0], [0, 0], both_empty=1.0) == 1.0
    assert token_f1([0, 0], [0, 0], both_empty=0.0) == 0.0
    # one predicted span overlapping 2/3 of the gold span (IoU 2/3), one spurious span
    assert iou_f1([1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 1], both_empty=1.0) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert iou_f1([1, 1, 1, 1, 0], [0, 0, 0, 1, 0], both_empty=1.0) == 0.0  # IoU 0.25 < 0.5
    # a predicted level 0 predicts an empty mask whatever the token head says
    empty = rationale_metrics([[0, 0, 0]], [[1, 1, 1]], [0], [0], "empty")
    assert empty == {"t_f1": 1.0, "iou_f1": 1.0}
    released = rationale_metrics([[0, 0, 0]], [[0, 0, 0]], [0], [0], "released")  # both = whole response
    assert released == {"t_f1": 1.0, "iou_f1": 1.0}


def test_level_metrics_pinned():
    m = level_metrics([0, 0, 1, 2, 2, 0], [0, 1, 1, 2, 0, 0])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["mcc"] == pytest.approx(1 / 3)
    assert 0 < m["macro_f1"] < 1


# ---------------------------------------------------------------------------- model

def test_attention_ignores_seeker_padding():
    from classifiers.epitome import SeekerAttention

    torch.manual_seed(0)
    att = SeekerAttention(8, dropout=0.0).eval()
    resp, seek = torch.randn(1, 3, 8), torch.randn(1, 4, 8)
    padded = torch.cat([seek, 100 * torch.randn(1, 2, 8)], dim=1)
    a = att(resp, seek, torch.ones(1, 4))
    b = att(resp, padded, torch.tensor([[1, 1, 1, 1, 0, 0]]))
    assert torch.allclose(a, b, atol=1e-5)
    c = att(resp, padded, torch.ones(1, 6))  # without the mask the padding changes the output
    assert not torch.allclose(a, c, atol=1e-3)


def test_cached_frozen_features_match_the_live_forward():
    from classifiers.epitome import EpitomeModel
    from classifiers.epitome_train import FeatureCache, encode_batch

    torch.manual_seed(0)
    pairs = _pairs(6)
    model = EpitomeModel(_tiny_cfg()).eval()
    with torch.no_grad():  # make the trained top layer matter
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    feats = FeatureCache(model, pairs)
    batch = model.tokenize([p.seeker_post for p in pairs], [p.response_post for p in pairs])
    batch = {k: v for k, v in batch.items() if k != "offsets"}
    with torch.no_grad():
        r1, s1 = encode_batch(model, batch, pairs, feats)
        r2, s2 = encode_batch(model, batch, pairs, None)
    mask = batch["resp_mask"].bool()
    assert (r1 - r2)[mask].abs().max() < 1e-2  # fp16 cache
    assert (s1 - s2)[batch["seek_mask"].bool()].abs().max() < 1e-2


def test_only_adapters_and_heads_are_trained_and_saved(tiny_model_dir):
    from safetensors.torch import load_file

    state = load_file(str(tiny_model_dir / "model.safetensors"))
    assert state and all("lora_" in k or not k.startswith(("response_encoder", "seeker_encoder")) for k in state)
    assert not any(k.startswith("seeker_encoder") for k in state)  # frozen seeker: nothing to ship
    assert all(v.dtype == torch.float16 for v in state.values())
    meta = json.loads((tiny_model_dir / "config.json").read_text())
    assert meta["format"] == "partner-epitome/1" and meta["config"]["backbone"] == "tiny-bert"


def test_training_is_deterministic(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    from classifiers.epitome_train import train

    pairs = _pairs()
    train(_tiny_cfg(), tmp_path, data={"train": pairs, "dev": pairs[:4]}, max_steps=2)
    a, b = load_file(str(tmp_path / "model.safetensors")), load_file(str(tiny_model_dir / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_negative_and_match_losses_are_used():
    from classifiers.epitome import EpitomeModel
    from classifiers.epitome_train import compute_loss

    torch.manual_seed(0)
    pairs = _pairs(4)
    model = EpitomeModel(_tiny_cfg(negatives=0.5, lambda_match=0.2))
    batch = model.tokenize([p.seeker_post for p in pairs], [p.response_post for p in pairs],
                           spans=[p.rationales for p in pairs])
    batch.pop("offsets")
    loss, parts = compute_loss(model, batch, pairs, torch.ones(3, 3))
    assert {"ei", "re", "neg", "match"} <= set(parts)
    loss.backward()
    assert model.match.weight.grad is not None and model.match.weight.grad.abs().sum() > 0


def test_context_margin_is_a_hinge_on_present_mechanisms_only():
    from classifiers.epitome import EpitomeModel
    from classifiers.epitome_train import compute_loss

    torch.manual_seed(0)
    pairs = _pairs(4)
    model = EpitomeModel(_tiny_cfg(context_margin=0.5))
    batch = model.tokenize([p.seeker_post for p in pairs], [p.response_post for p in pairs],
                           spans=[p.rationales for p in pairs])
    batch.pop("offsets")
    loss, parts = compute_loss(model, batch, pairs, torch.ones(3, 3))
    # untrained: the own and the mismatched post give nearly the same expected level, so the hinge is ~margin
    assert {"ei", "re", "margin"} <= set(parts) and "neg" not in parts
    assert 0.3 < parts["margin"] <= 0.5 + 1e-6
    loss.backward()  # the gradient reaches the only path from the seeker post to the levels
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.attention.parameters())
    for p in pairs:  # no mechanism present in any pair: nothing to rank
        p.levels = {m: 0 for m in p.levels}
    _, parts = compute_loss(model, batch, pairs, torch.ones(3, 3))
    assert "margin" not in parts


# ---------------------------------------------------------------------------- scorer and probe

def test_scorer_api(tiny_model_dir):
    from classifiers.scorer import EmpathyResult, EmpathyScorer

    scorer = EmpathyScorer.load(str(tiny_model_dir))
    seekers = ["I feel alone.", "My exam went badly.", "x"]
    responses = ["I'm sorry. What happened?", "", "I went through the same thing last year."]
    res = scorer.score(seekers, responses, batch_size=2)
    assert len(res) == 3 and all(isinstance(r, EmpathyResult) for r in res)
    for r, text in zip(res, responses):
        assert set(r.levels) == {"ER", "IP", "EX"} and r.total == sum(r.levels.values())
        for m, p in r.probs.items():
            assert len(p) == 3 and sum(p) == pytest.approx(1, abs=1e-4) and r.levels[m] == p.index(max(p))
        assert r.expected_total == pytest.approx(sum(p[1] + 2 * p[2] for p in r.probs.values()), abs=1e-4)
        assert all(span in text for spans in r.rationales.values() for span in spans)
        j = r.to_json()
        assert set(j) == {"ER", "IP", "EX", "total", "probs", "rationales"}
    assert res[1].total == 0 and res[1].probs["ER"] == [1.0, 0.0, 0.0]  # empty response: level 0
    lv = scorer.level_tensor(seekers, responses)
    assert lv.shape == (3, 3) and lv.dtype == torch.float32
    assert lv.tolist() == [[float(r.levels[m]) for m in ("ER", "IP", "EX")] for r in res]
    ex = scorer.level_tensor(seekers, responses, mode="expected", batch_size=1)
    assert torch.allclose(ex.sum(1), torch.tensor([r.expected_total for r in res]), atol=1e-4)


def test_probe_context_free_model_shows_no_difference(tmp_path):
    from classifiers.epitome_train import train
    from classifiers.scorer import EmpathyScorer
    from partner.evaluation.probe import derangement, probe

    pairs = _pairs()
    other = derangement(pairs)
    assert all(pairs[i].sp_id != pairs[j].sp_id for i, j in enumerate(other))
    train(_tiny_cfg(context="none"), tmp_path, data={"train": pairs, "dev": pairs[:4]}, max_steps=1)
    res = probe(EmpathyScorer.load(str(tmp_path)), pairs, batch_size=8)
    a = res["context_swap"]
    assert a["share_same"] == 1.0 and a["mean_drop_expected_total"] == pytest.approx(0, abs=1e-6)
    assert a["drop_test"]["mean_diff"] == 0 and a["drop_test"]["clear_drop"] is False
    for row in res["generic_phrases"]["phrases"].values():
        assert row["mean_expected_total_own"] == pytest.approx(row["mean_expected_total_neutral"], abs=1e-6)
        assert row["drop_test"]["clear_drop"] is False


def test_probe_clear_drop_needs_a_significant_positive_mean():
    from types import SimpleNamespace as NS

    from partner.evaluation.probe import markdown, paired_drop

    own = [NS(total=t) for t in [3, 2, 4, 1, 2, 3] * 10]
    assert paired_drop(own, [NS(total=t - 1) for t in [3, 2, 4, 1, 2, 3] * 10])["clear_drop"] is True
    # A drop on a few items only: positive mean, but neither the CI nor p clears the bar.
    few = paired_drop(own, [NS(total=t - (i < 2)) for i, t in enumerate([3, 2, 4, 1, 2, 3] * 10)])
    assert few["mean_diff"] > 0 and few["p_value"] > 0.01 and few["clear_drop"] is False
    rise = paired_drop(own, [NS(total=t + 1) for t in [3, 2, 4, 1, 2, 3] * 10])
    assert rise["mean_diff"] == -1 and rise["clear_drop"] is False
    swap = {"share_drop": 1.0, "share_same": 0.0, "share_rise": 0.0, "mean_drop_expected_total": 1.0,
            "mean_total_own": 2.5, "mean_total_swapped": 1.5, "share_level_changed": {m: 1.0 for m in ("ER", "IP", "EX")},
            "drop_test": paired_drop(own, [NS(total=t - 1) for t in [3, 2, 4, 1, 2, 3] * 10])}
    md = markdown({"m": {"context_swap": swap, "generic_phrases": {"phrases": {}}}},
                  {"test_pairs": 60, "split_seed": 13, "commit": "x"})
    assert "| m | 100.0 | 0.0 | 0.0 | +1.000 [+1.00, +1.00], p " in md and "| yes |" in md


@pytest.mark.slow
def test_shipped_model_behaviour():
    if not (SHIPPED / "config.json").exists():
        pytest.skip("no shipped model in models/epitome")
    from classifiers.scorer import EmpathyScorer

    scorer = EmpathyScorer.load()
    seeker = "My mom passed away last week and I can't stop crying. I don't know how to go on."
    res = scorer.score([seeker] * 3, [
        "I'm so sorry for your loss. That must be incredibly painful.",
        "What happened? How are you coping with everything?",
        "Check out the new phone, it has a great camera.",
    ])
    assert res[0].levels["ER"] > 0
    assert res[1].levels["EX"] > 0
    assert res[2].total == 0
    assert res[0].rationales["ER"] and all(s in "I'm so sorry for your loss. That must be incredibly painful."
                                           for s in res[0].rationales["ER"])


def test_classifier_stage_trains_once_into_run_dir(tmp_path, data_dir, monkeypatch):
    import classifiers.epitome_train as et
    from partner.config import load_config
    from partner.stages.classifier import run

    real_splits = et.splits
    seen = {}

    def small_splits(cfg, data_dir=None):  # the real loader and split, a slice of each for speed
        seen["data_dir"] = data_dir
        return {k: v[:40] for k, v in real_splits(cfg, data_dir).items()}

    monkeypatch.setattr(et, "splits", small_splits)

    cfg = load_config(None, [f"run_dir={tmp_path}", f"data_dir={data_dir}", "classifier.backbone=tiny-bert",
                             "classifier.max_len=16", "classifier.epochs=1", "classifier.batch_size=20",
                             "classifier.finetune=none"])
    out = run(cfg, force=False)
    assert out == tmp_path / "classifier" and (out / ".complete").exists()
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["backbone"] == "tiny-bert" and meta["training"]["train_pairs"] == 40
    assert seen["data_dir"] == data_dir
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert run(cfg, force=False) == out and (out / "model.safetensors").stat().st_mtime_ns == stamp  # skipped


def _tiny_mpnet(tmp_path):
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    from core.registry import resolve

    tok = AutoTokenizer.from_pretrained(str(resolve("tiny-bert")))
    torch.manual_seed(0)
    cfg = MPNetConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=512)
    MPNetModel(cfg).save_pretrained(tmp_path / "tiny-mpnet")
    tok.save_pretrained(tmp_path / "tiny-mpnet")
    return str(tmp_path / "tiny-mpnet")


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_cached_lower_layers_give_the_full_forward(arch, tmp_path):
    """Training runs the top layers on cached inputs; that must equal the encoder's own forward
    (BERT layers return a tensor; MPNet layers return tuples and need the shared position bias)."""
    from classifiers.epitome import EpitomeModel

    backbone = "tiny-bert" if arch == "bert" else _tiny_mpnet(tmp_path)
    model = EpitomeModel(_tiny_cfg(backbone=backbone, train_layers=1, finetune="lora")).eval()
    assert model.first_trained == 1
    enc = model.tokenizer(["I am so sorry.", "What happened to you at work today?"], padding=True,
                          return_tensors="pt")
    with torch.no_grad():
        full = model.encode_response(enc["input_ids"], enc["attention_mask"])
        cached = model.encode_response(mask=enc["attention_mask"],
                                       lower=model.lower_response(enc["input_ids"], enc["attention_mask"]))
    keep = enc["attention_mask"].bool()
    assert torch.allclose(full[keep], cached[keep], atol=1e-5)
