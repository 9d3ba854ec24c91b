"""Preference reward model: Bradley-Terry through TRL's RewardTrainer on a tiny BERT, save/load, scoring."""

import json
import math

import pytest

from classifiers.config import PreferenceConfig
from classifiers.preference import PairExample, PreferenceModel, train
from partner.ab.pairs import PreferencePair, split_inputs
from partner.stages.preference import examples_from_pairs

POSTS = ["I lost my job today and I feel useless.", "My exam went badly, I'm scared.",
         "Nobody came to my birthday.", "I can't sleep since the breakup."]


def _examples(n=48):
    """Raters always prefer the reply that says 'that sounds hard' over the one that says 'whatever'."""
    out = []
    for i in range(n):
        post = POSTS[i % len(POSTS)]
        out.append(PairExample(post, f"That sounds hard, I am here {i}.", f"Whatever, move on {i}."))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pref")
    cfg = PreferenceConfig(backbone="tiny-bert", max_len=48, epochs=6, batch_size=8, lr=3e-3, warmup=0.0)
    model = train(cfg, _examples(), out, record={"data": {"heldout_inputs": ["x"]}})
    return out, model


def test_learns_the_preference_and_reloads_the_same_scores(trained):
    out, model = trained
    meta = json.loads((out / "preference.json").read_text())
    assert meta["format"] == "partner-preference/1" and meta["data"]["heldout_inputs"] == ["x"]
    assert meta["training"]["steps"] > 0
    assert (out / "adapter_model.safetensors").exists() and not (out / "README.md").exists()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny-bert"
    posts = ["My dog died.", "I failed again."]
    good = model.score(posts, ["That sounds hard, I am here.", "That sounds hard, I am here."])
    bad = model.score(posts, ["Whatever, move on.", "Whatever, move on."])
    assert all(g > b for g, b in zip(good, bad))  # generalises to posts and numbers it never saw
    again = PreferenceModel.from_pretrained(out, device="cpu")
    assert again.score(posts, ["That sounds hard, I am here."] * 2) == pytest.approx(good, abs=1e-4)
    p = again.win_prob(posts, ["That sounds hard, I am here."] * 2, ["Whatever, move on."] * 2)
    assert all(x > 0.5 for x in p)
    assert p[0] == pytest.approx(1 / (1 + math.exp(-(good[0] - bad[0]))), abs=1e-3)
    # batching and order do not change a score
    many = again.score(posts * 5, ["That sounds hard, I am here.", "Whatever, move on."] * 5, batch_size=3)
    assert many[0] == pytest.approx(good[0], abs=1e-4) and many[1] == pytest.approx(bad[1], abs=1e-4)


def test_score_checks_lengths_and_missing_folder(trained, tmp_path):
    _, model = trained
    with pytest.raises(ValueError):
        model.score(["a"], ["b", "c"])
    with pytest.raises(FileNotFoundError):
        PreferenceModel.from_pretrained(tmp_path)


def _pair(answer, question="overall", inp="epi-1"):
    return PreferencePair("post", "reply a", "reply b", question, answer, "r", "i1", inp, "x", "y", None, "p", "f, line 2")


def test_examples_ties_and_auxiliary_questions():
    pairs = [_pair("A"), _pair("B"), _pair("tie"), _pair("A", "fluency"), _pair("tie", "fluency"), _pair("B", "empathy")]
    drop = examples_from_pairs(pairs, PreferenceConfig())
    assert [(e.chosen, e.target, e.weight) for e in drop] == [("reply a", 1.0, 1.0), ("reply b", 1.0, 1.0)]
    half = examples_from_pairs(pairs, PreferenceConfig(ties="half", aux_questions=["fluency"], aux_weight=0.25))
    assert [(e.chosen, e.target, e.weight) for e in half] == [("reply a", 1.0, 1.0), ("reply b", 1.0, 1.0),
                                                              ("reply a", 0.5, 1.0), ("reply a", 1.0, 0.25)]
    with pytest.raises(ValueError):
        examples_from_pairs(pairs, PreferenceConfig(ties="coin"))


def test_split_is_grouped_per_source_and_seeded():
    ids = [f"epi-{i}" for i in range(40)] + [f"esc-{i}" for i in range(10)]
    train_ids, held = split_inputs(ids, 0.2, seed=13)
    assert not train_ids & held and train_ids | held == set(ids)
    assert sum(i.startswith("epi") for i in held) == 8 and sum(i.startswith("esc") for i in held) == 2
    assert split_inputs(reversed(ids), 0.2, seed=13)[1] == held
    assert split_inputs(ids, 0.2, seed=14)[1] != held


def test_folds_partition_the_posts_per_source():
    ids = [f"epi-{i}" for i in range(41)] + [f"esc-{i}" for i in range(10)]
    held = [split_inputs(ids, 0.2, seed=13, folds=4, fold=k)[1] for k in range(4)]
    assert set().union(*held) == set(ids) and sum(map(len, held)) == len(ids)  # every post held out exactly once
    assert all(sum(i.startswith("esc") for i in h) in (2, 3) for h in held)  # each corpus dealt evenly
    train_ids, h0 = split_inputs(ids, 0.2, seed=13, folds=4, fold=0)
    assert train_ids == set(ids) - h0
    for bad in ((1, 0), (4, 4), (4, -1)):
        with pytest.raises(ValueError):
            split_inputs(ids, 0.2, seed=13, folds=bad[0], fold=bad[1])


def _fold_model(trained, folder, heldout):
    """A copy of the trained model that says it held out ``heldout`` (one fold of a cross-validation)."""
    import shutil

    src, _ = trained
    shutil.copytree(src, folder)
    meta = json.loads((folder / "preference.json").read_text())
    meta["data"]["heldout_inputs"] = sorted(heldout)
    (folder / "preference.json").write_text(json.dumps(meta))
    return str(folder)


def test_eval_pools_fold_models_and_refuses_overlapping_folds(trained, tmp_path):
    from core.jsonio import UsageError
    from helpers.ab_study import make_study, prefer_overall, wide
    from partner.config import load_config
    from partner.evaluation.preference import evaluate

    _, key = make_study(tmp_path)
    (tmp_path / "study" / "ratings").mkdir()
    wide(tmp_path / "study" / "ratings" / "r1.csv", key, "R1", prefer_overall("partner"))
    inputs = sorted({k["input"] for k in key["items"].values() if not k["is_attention_check"]})
    half = len(inputs) // 2
    cfg = load_config(None, [f"preference.ratings={tmp_path / 'study'}"])
    one = _fold_model(trained, tmp_path / "f0", inputs[:half])
    two = _fold_model(trained, tmp_path / "f1", inputs[half:])
    singles = [evaluate(d, cfg, tmp_path / f"e{k}", ["length"], device="cpu") for k, d in enumerate((one, two))]
    pooled = evaluate([one, two], cfg, tmp_path / "pooled", ["length"], device="cpu")
    assert pooled["heldout_posts"] == len(inputs) and pooled["folds"] == 2
    assert pooled["decisive"] == sum(s["decisive"] for s in singles) > 0
    for name in ("preference", "length"):  # pooled accuracy = the folds' right answers over all their items
        right = sum(s["results"][name]["all"]["accuracy"] * s["decisive"] for s in singles)
        assert pooled["results"][name]["all"]["accuracy"] == pytest.approx(right / pooled["decisive"])
    assert "Grouped cross-validation: 2 models" in (tmp_path / "pooled" / "preference_eval.md").read_text()
    with pytest.raises(UsageError, match="also holds out"):
        evaluate([one, _fold_model(trained, tmp_path / "f2", inputs[:1])], cfg, tmp_path / "bad", [], device="cpu")
