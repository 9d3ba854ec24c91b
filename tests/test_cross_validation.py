"""k-fold cross-validation of the classifier: the fold split and the pooled report."""

import types

import pytest

from core import corpora
from classifiers.config import EpitomeConfig
from partner.evaluation import cross_validation


def test_fold_9_of_10_is_the_fixed_split_and_folds_partition_the_data(data_dir):
    pairs, _ = corpora.load_epitome(data_dir)
    fixed = corpora.grouped_split(pairs, lambda p: p.sp_id)
    f9 = corpora.grouped_split(pairs, lambda p: p.sp_id, folds=10, fold=9)
    assert {k: [p.rp_id for p in v] for k, v in fixed.items()} == {k: [p.rp_id for p in v] for k, v in f9.items()}
    tests, devs = [], []
    for i in range(5):
        s = corpora.grouped_split(pairs, lambda p: p.sp_id, folds=5, fold=i)
        assert not {p.sp_id for p in s["test"]} & {p.sp_id for p in s["train"] + s["dev"]}
        tests.append({(p.sp_id, p.rp_id) for p in s["test"]})
        devs.append({(p.sp_id, p.rp_id) for p in s["dev"]})
    assert sum(map(len, tests)) == len(pairs) == len(set().union(*tests))
    assert all(devs[i] == tests[i - 1] for i in range(5))  # dev is the fold before the test fold


@pytest.mark.parametrize("folds,fold", [(2, 0), (5, 5), (5, -1)])
def test_bad_fold_settings_are_refused(folds, fold):
    with pytest.raises(ValueError, match="fold"):
        corpora.split_of("x", folds=folds, fold=fold)


def _scorer(**cfg):
    return types.SimpleNamespace(model=types.SimpleNamespace(cfg=EpitomeConfig(**cfg)))


def _oracle(wrong_ip_level1: bool):
    """A fake predict_model: gold levels, except IP level 1 predicted as 2 when asked."""
    def predict(scorer, test):
        out = {}
        for m in ("ER", "IP", "EX"):
            gold = [p.levels[m] for p in test]
            pred = [2 if (wrong_ip_level1 and m == "IP" and g == 1) else g for g in gold]
            probs = [[0.05, 0.4, 0.55] if p != g else [0.8 if lv == g else 0.1 for lv in range(3)]
                     for g, p in zip(gold, pred)]
            out[m] = {"gold": gold, "pred": pred, "gmask": [[0]] * len(test), "pmask": [[0]] * len(test),
                      "probs": probs}
        return out
    return predict


@pytest.mark.slow
def test_cv_pools_every_pair_once_and_reports_per_level_f1(data_dir):
    models = [(f"f{i}", _scorer(folds=3, fold=i)) for i in range(3)]
    report = cross_validation.run_cv(models, data_dir, predict=_oracle(wrong_ip_level1=True),
                                   micromodels=False)  # its own test: test_micromodels.py
    pairs, _ = corpora.load_epitome(data_dir)
    assert report["test_pairs"] == len(pairs) and report["folds_present"] == [0, 1, 2]
    name = next(k for k in report["rows"] if k.endswith("pooled over folds") and "EPITOME" in k)
    row = report["rows"][name]
    assert row["metrics"]["ER"]["macro_f1"]["mean"] == 1.0
    assert row["level_f1"]["IP"]["1"]["f1"] == 0.0 and row["level_f1"]["IP"]["1"]["gold"] > 50
    assert row["metrics"]["IP"]["macro_f1"]["mean"] < 0.7
    assert "tf-idf + logistic regression: pooled over folds" in report["rows"]
    # the dev folds show the same confusion, so a dev-fitted bias of level 1 over 2 undoes it on test
    cal = report["rows"][name.replace(": pooled", ", dev-fitted level biases: pooled")]
    assert cal["metrics"]["IP"]["macro_f1"]["mean"] == 1.0 and cal["metrics"]["ER"]["macro_f1"]["mean"] == 1.0
    mix = report["rows"][name.replace(": pooled", ", mixed with tf-idf + LR (dev-fitted weight): pooled")]
    assert mix["metrics"]["ER"]["macro_f1"]["mean"] > 0.9  # the oracle's confident probabilities outweigh tf-idf
    assert all(f["tfidf_mix"]["ER"]["weight"] >= 0.5 for f in report["per_fold"])
    assert all(f["level_bias"]["IP"]["bias"][1] > f["level_bias"]["IP"]["bias"][2] and f["level_bias"]["ER"]["bias"] == [0, 0, 0]
               for f in report["per_fold"])
    md = cross_validation.markdown(report)
    assert "3-fold grouped cross-validation" in md and "| 2 | f2 |" in md


@pytest.mark.slow
def test_cv_refuses_mixed_recipes_and_duplicate_folds(data_dir, caplog):
    with pytest.raises(ValueError, match="both trained with fold 1"):
        cross_validation.run_cv([("a", _scorer(folds=3, fold=1)), ("b", _scorer(folds=3, fold=1, seed=7))], data_dir,
                             predict=_oracle(False), micromodels=False)
    with pytest.raises(ValueError, match="more than the seed and the fold"):
        cross_validation.run_cv([("a", _scorer(folds=3, fold=0)), ("b", _scorer(folds=3, fold=1, context_margin=0.0))],
                             data_dir, predict=_oracle(False), micromodels=False)
    with pytest.raises(ValueError, match="different numbers of folds"):
        cross_validation.run_cv([("a", _scorer(folds=3, fold=0)), ("b", _scorer(folds=4, fold=1))], data_dir,
                             predict=_oracle(False), micromodels=False)
    # the fixed split counts as fold 9 of 10; a missing fold is reported, not hidden
    report = cross_validation.run_cv([("fixed", _scorer()), ("f0", _scorer(folds=10, fold=0))], data_dir,
                                  predict=_oracle(False), micromodels=False)
    assert report["folds_present"] == [0, 9] and report["folds"] == 10
    assert "folds [1, 2, 3, 4, 5, 6, 7, 8] of 10 have no model" in caplog.text


def test_level_bias_fit_keeps_the_argmax_unless_dev_gains():
    from classifiers.calibration import apply_bias, fit_level_bias

    probs = [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.7, 0.2, 0.1]]
    bias, before, after = fit_level_bias(probs, [0, 1, 2, 0])  # level 1 is one small nudge away
    assert bias[0] == 0 and bias[1] > 0 and after == 1.0 > before
    assert apply_bias(probs, bias) == [0, 1, 2, 0]
    bias, before, after = fit_level_bias(probs, [0, 0, 2, 0])  # the argmax is already right: no bias
    assert bias == [0, 0, 0] and before == after


def test_probe_report_names_the_folds_and_averages_their_drops():
    from partner.evaluation.probe import fold_notes

    def res(fold, diff, clear):
        return {"context_swap": {"drop_test": {"mean_diff": diff, "clear_drop": clear}},
                "test_split": {"folds": 10, "fold": fold, "test_pairs": 250 + fold}}

    assert fold_notes({"models/epitome": {"context_swap": {}}}) == []
    lines = fold_notes({"f0": res(0, 0.2, True), "f1": res(1, 0.1, False), "shipped": {"context_swap": {}}})
    assert "f0 (fold 0 of 10, 250 pairs); f1 (fold 1 of 10, 251 pairs)." in lines[0] and "shipped" not in lines[0]
    assert "mean drop of the total is +0.150 (sd 0.071, min +0.100); 1 of 2 are clear drops." in lines[1]


def test_mixture_weight_picks_the_better_model_and_prefers_an_even_mix_on_ties():
    from classifiers.calibration import fit_mix_weight

    good = [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    bad = [[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]
    w, f1 = fit_mix_weight(good, bad, [0, 1, 2])
    assert w > 0.5 and f1 == 1.0
    assert fit_mix_weight(bad, good, [0, 1, 2])[0] < 0.5
    assert fit_mix_weight(good, good, [0, 1, 2]) == (0.5, 1.0)
