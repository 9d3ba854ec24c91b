"""Coherence pairs and the pair classifier (tiny BERT, fast); the shipped model's meaning is slow."""

import pytest

from classifiers.coherence_data import Doc, make_pairs

DOCS = [
    Doc("a", "g1", ["I lost my dog last week.", "He was fourteen years old.", "I miss him every day."]),
    Doc("a", "g1", ["Losing a pet is so hard.", "Take care of yourself."]),
    Doc("a", "g2", ["My exams went badly.", "I studied for weeks.", "My parents are upset."]),
    Doc("b", "g3", ["Work has been stressful lately.", "My boss keeps yelling at me."]),
    Doc("b", "g4", ["I cannot sleep at night.", "My mind keeps racing."]),
]


def _origin(sentence):
    return next(d for d in DOCS if sentence in d.sentences)


def test_pairs_follow_the_paper_definition():
    pairs = make_pairs(DOCS, seed=0, per_doc=10)
    pos = [p for p in pairs if p.label == 1]
    neg = [p for p in pairs if p.label == 0]
    assert len(pos) == len(neg) == 3 + 1 + 3 + 1 + 1
    for p in pos:  # two sentences of one response
        assert _origin(p.a) is _origin(p.b)
    for p in neg:  # a sentence of a response to ANOTHER seeker post, from the same corpus
        da, db = _origin(p.a), _origin(p.b)
        assert da.group != db.group and da.corpus == db.corpus == p.corpus


def test_pair_caps_keep_the_balance():
    assert len([p for p in make_pairs(DOCS, seed=0, per_doc=1) if p.label == 1]) == 5
    capped = make_pairs(DOCS, seed=0, per_doc=10, max_pairs=6)
    assert len(capped) == 6 and sum(p.label for p in capped) == 3


@pytest.mark.slow
def test_train_save_load_roundtrip_is_order_free(tmp_path):
    from classifiers.coherence import CoherenceScorer, train
    from classifiers.config import CoherenceConfig

    cfg = CoherenceConfig(backbone="tiny-bert", batch_size=4, epochs=1, max_pairs=16, max_heldout=8)
    meta = train(cfg, tmp_path, docs={"train": DOCS, "heldout": DOCS}, device="cpu")
    assert {"accuracy", "roc_auc", "n"} <= set(meta["heldout"]["all"])
    assert (tmp_path / "adapter" / "adapter_config.json").exists() and (tmp_path / "head.safetensors").exists()
    scorer = CoherenceScorer.load(tmp_path, device="cpu")
    a, b = ["I lost my dog.", "My exams went badly."], ["I miss him.", "The sky is blue today."]
    p = scorer.prob(a, b)
    assert all(0.0 < x < 1.0 for x in p) and len(p) == 2
    assert scorer.prob(b, a) == pytest.approx(p, abs=1e-6)  # symmetric pair features
    assert scorer.prob(a[:1], b[:1]) == pytest.approx(p[:1], abs=1e-6)  # batch composition
    assert scorer.prob([], []) == []
    with pytest.raises(ValueError):
        scorer.prob(a, b[:1])
