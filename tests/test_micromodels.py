"""Micromodels (seed 001): sentence spans, the boosting machines as arrays, fitting on tiny data with a
bag-of-words embedder, the folder round trip, the context-free scorer and its place in the reports."""

import hashlib
import types

import numpy as np
import pytest

from classifiers import micromodels as mm
from core.corpora import EpitomePair

ER = ["I am so sorry for your loss.", "I am so sorry you are hurting.", "So sorry for your pain, friend."]
IP = ["I understand how you feel now.", "I felt the same way last year.", "I understand that feeling well."]
EX = ["What happened after that?", "What happened with your family?", "How are you feeling about that?"]
FILLER = ["Drink some water.", "Go for a walk outside.", "Call the hotline tomorrow.", "Sleep early tonight."]


class BagOfWords:
    """Hashed word counts: sentences that share words are similar, as MiniLM would make them."""

    dim = 64

    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(".", " ").replace("?", " ").replace(",", " ").split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out


def _pair(i, parts):
    """A pair whose response joins ``parts`` ((mechanism or None, sentence)); level 2 where a mechanism
    sentence is present, its span the rationale."""
    text, levels, spans = "", {m: 0 for m in ("ER", "IP", "EX")}, {m: [] for m in ("ER", "IP", "EX")}
    for mech, sent in parts:
        start = len(text) + (1 if text else 0)
        text = f"{text} {sent}" if text else sent
        if mech:
            levels[mech] = 2
            spans[mech].append((start, start + len(sent)))
    return EpitomePair(f"s{i}", f"r{i}", f"seeker post {i}", text, levels, spans)


def _pairs(n, offset=0):
    out = []
    for i in range(n):
        parts = [(None, FILLER[i % len(FILLER)])]
        if i % 2 == 0:
            parts.append(("ER", ER[i % 3]))
        if i % 3 == 0:
            parts.append(("IP", IP[i % 3]))
        if i % 4 == 1:
            parts.append(("EX", EX[i % 3]))
        out.append(_pair(offset + i, parts))
    return out


class Grid:
    """A whitespace tokenizer with offsets, standing in for the MiniLM tokenizer's grid."""

    def __call__(self, texts, return_offsets_mapping=True, truncation=True, max_length=64):
        import re

        return {"offset_mapping": [[m.span() for m in re.finditer(r"\S+", t)][:max_length] for t in texts]}


@pytest.fixture(scope="module")
def fitted():
    emb = mm.CachedEmbedder(BagOfWords())
    train, dev = _pairs(48), _pairs(12, offset=100)
    return mm.Micromodels.fit(train, dev, emb, grid_tokenizer=Grid()), train


def test_sentence_spans_find_each_sentence_in_the_raw_text():
    text = "I'm sorry.  That is\nhard. i know   how it feels"
    spans = mm.sentence_spans(text)
    assert [s for s, _, _ in spans][0] == "I'm sorry."
    assert all(" ".join(text[a:b].split()) == s for s, a, b in spans)
    assert mm.sentence_spans("") == [] and mm.sentence_spans("   ") == []


def test_additive_levels_reproduce_the_boosting_machine():
    pytest.importorskip("interpret")
    from interpret.glassbox import ExplainableBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.random((200, 3))
    y = np.clip((x[:, 0] * 3).astype(int), 0, 2)
    probe = rng.random((50, 3)) * 1.4 - 0.2  # inside and outside the training range
    for labels in (y, np.where(y > 0, 2, 0)):  # three levels, and two (level 1 absent)
        ebm = ExplainableBoostingClassifier(interactions=0, random_state=0, n_jobs=1).fit(x, labels)
        arr = mm.AdditiveLevels.from_ebm(ebm, 3)
        got = arr.proba(probe)
        np.testing.assert_allclose(got[:, ebm.classes_], ebm.predict_proba(probe), atol=1e-9)
        if len(ebm.classes_) == 2:
            assert got[:, 1].max() < 1e-9  # the absent level is never predicted
    const = mm.AdditiveLevels.fit(x, [1] * 200)
    assert (const.proba(probe).argmax(1) == 1).all()


def test_fit_predicts_levels_and_sentence_rationales_without_the_seeker_post(fitted):
    model, train = fitted
    assert model.seeds["ER"] == sorted(set(model.seeds["ER"]), key=model.seeds["ER"].index)  # no duplicates
    assert set(model.seeds["EX"]) == set(EX)
    resp = ["Go for a walk outside. I am so sorry for your loss.", "Drink some water.",
            "What happened after that? Sleep early tonight."]
    pred = model.predict(resp)
    levels = {m: pred[m]["probs"].argmax(1).tolist() for m in ("ER", "IP", "EX")}
    assert levels["ER"] == [2, 0, 0] and levels["EX"] == [0, 0, 2] and levels["IP"] == [0, 0, 0]
    a = resp[0].index("I am")
    assert pred["ER"]["spans"][0] == [(a, len(resp[0]))]  # the sentence, not the filler before it
    assert pred["EX"]["spans"][2] == [(0, len("What happened after that?"))]
    assert all(0.2 <= t <= 0.95 for t in model.thresholds.values())
    assert set(model.meta["dev_threshold_search"]["ER"]) == {f"{t:.2f}" for t in mm.THRESHOLDS}


def test_training_features_leave_out_the_response_s_own_seeds(monkeypatch):
    # Two pairs carry ER sentences that share no word with each other: with its own seed left out, each
    # training response's ER feature is far below 1 and the machine cannot learn "match = cosine 1".
    train = [_pair(0, [("ER", "Heartbroken reading this.")]), _pair(1, [("ER", "Sending hugs always.")])]
    train += [_pair(2 + i, [(None, FILLER[i % 4])]) for i in range(6)]
    seen = {}

    def capture(x, y, seed=0):
        seen.setdefault("x", x.copy())
        return mm.AdditiveLevels([np.zeros(0)] * 3, [np.zeros((2, 3))] * 3, np.array([0.0, -30, -30]))

    monkeypatch.setattr(mm.AdditiveLevels, "fit", staticmethod(capture))
    mm.Micromodels.fit(train, [], mm.CachedEmbedder(BagOfWords()))
    assert seen["x"][0, 0] < 0.5 and seen["x"][1, 0] < 0.5
    # at prediction time the same response does match its seed
    vec = mm.CachedEmbedder(BagOfWords()).encode(["Heartbroken reading this."])
    model = mm.Micromodels({"ER": ["Heartbroken reading this."], "IP": [], "EX": []},
                           {"ER": vec, "IP": np.zeros((0, 64)), "EX": np.zeros((0, 64))}, {}, {},
                           embedder=mm.CachedEmbedder(BagOfWords()))
    assert model.features(model.sentence_similarities([train[0].response_post]))[0, 0] == pytest.approx(1.0)


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    back = mm.Micromodels.load(tmp_path / "m", embedder=mm.CachedEmbedder(BagOfWords()))
    resp = ["Go for a walk outside. I am so sorry for your loss.", "What happened with your family?", ""]
    a, b = model.predict(resp), back.predict(resp)
    for m in ("ER", "IP", "EX"):
        np.testing.assert_allclose(a[m]["probs"], b[m]["probs"])
        assert a[m]["spans"] == b[m]["spans"]
    assert b["ER"]["probs"][2].tolist() == [1.0, 0.0, 0.0]  # empty response: level 0
    assert back.thresholds == model.thresholds and mm.is_micromodels_folder(tmp_path / "m")
    assert not mm.is_micromodels_folder(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"format": "partner-epitome/1"}')
    with pytest.raises(ValueError, match="expected partner-micromodels/1"):
        mm.Micromodels.load(tmp_path / "bad")


def test_scorer_ignores_the_seeker_post_and_loads_through_load_scorer(fitted, tmp_path):
    from classifiers.scorer import EmpathyResult
    from partner.rewrite_jsonl import load_scorer

    model, _ = fitted
    scorer = mm.MicromodelScorer(model)
    resp = ["Go for a walk outside. I am so sorry for your loss.", "Drink some water."]
    own = scorer.score(["I lost my dog.", "I failed."], resp)
    other = scorer.score(["I got promoted!", "Nice weather."], resp)
    assert all(isinstance(r, EmpathyResult) for r in own)
    assert [r.to_json() for r in own] == [r.to_json() for r in other]
    assert own[0].levels["ER"] == 2 and own[0].rationales["ER"] == ["I am so sorry for your loss."]
    assert own[1].total == 0 and own[1].rationales["ER"] == []
    with pytest.raises(ValueError, match="1 seeker posts but 2 responses"):
        scorer.score(["x"], resp)
    model.save(tmp_path / "m")
    loaded = load_scorer(str(tmp_path / "m"))
    assert isinstance(loaded, mm.MicromodelScorer) and loaded.model.thresholds == model.thresholds


def test_token_masks_put_gold_and_sentences_on_one_grid():
    text = "Drink water. I am so sorry."
    a = text.index("I am")
    gm, pm = mm.token_masks([text], [[(a, a + 7)]], [[(a, len(text))]], Grid())
    assert gm == [[0, 0, 1, 1, 1, 0]] and pm == [[0, 0, 1, 1, 1, 1]]


def test_cv_report_has_a_micromodels_row_with_rationale_metrics(data_dir, monkeypatch):
    from classifiers.config import EpitomeConfig
    from partner.evaluation import cross_validation

    def fake(train, dev, test, seed=0, embedder=None):
        preds = {m: {"gold": [p.levels[m] for p in test], "pred": [p.levels[m] for p in test],
                     "gmask": [[int(p.levels[m] > 0), 0] for p in test], "pmask": [[1, 0]] * len(test),
                     "probs": [[1, 0, 0]] * len(test)}
                 for m in ("ER", "IP", "EX")}
        return preds, {"thresholds": {m: 0.7 for m in preds}, "seed_utterances": {m: len(train) for m in preds}}

    def oracle(scorer, test):
        return {m: {"gold": [p.levels[m] for p in test], "pred": [0] * len(test), "gmask": [[0]] * len(test),
                    "pmask": [[0]] * len(test), "probs": [[1, 0, 0]] * len(test)} for m in ("ER", "IP", "EX")}

    monkeypatch.setattr(cross_validation, "micromodel_preds", fake)
    models = [(f"f{i}", types.SimpleNamespace(model=types.SimpleNamespace(cfg=EpitomeConfig(folds=3, fold=i))))
              for i in range(3)]
    report = cross_validation.run_cv(models, data_dir, predict=oracle, calibrate=False)
    row = report["rows"]["micromodels (seed 001, no seeker post): pooled over folds"]
    assert row["metrics"]["EX"]["macro_f1"]["mean"] == 1.0 and row["metrics"]["EX"]["t_f1"]["mean"] == 1.0
    assert "iou_f1_released" in row["metrics"]["ER"]
    assert all(f["micromodels"]["thresholds"]["ER"] == 0.7 for f in report["per_fold"])
    md = cross_validation.markdown(report)
    assert "| micromodels (seed 001, no seeker post): pooled over folds | " in md
    assert "IOU-F1 (released conv.)" in md
    # no micromodels when asked not to
    report = cross_validation.run_cv(models, data_dir, predict=oracle, calibrate=False, micromodels=False)
    assert not any(k.startswith("micromodels") for k in report["rows"])


def test_cached_embedder_embeds_each_text_once_and_persists(tmp_path):
    inner = BagOfWords()
    emb = mm.CachedEmbedder(inner, tmp_path / "cache" / "emb")
    a = emb.encode(["one two", "three", "one two"])
    assert inner.calls == 1 and a.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    emb.encode(["three"])
    assert inner.calls == 1
    emb.save()
    again = mm.CachedEmbedder(BagOfWords(), tmp_path / "cache" / "emb")
    np.testing.assert_allclose(again.encode(["one two"]), a[:1])
    assert again.embedder.calls == 0
