"""Baseline rewriters: identity, template, retrieval (index building and lookup), zero-shot parsing."""

import numpy as np
import pytest

from core.corpora import EpitomePair
from core.text import split_sentences
from partner import rewriters
from partner.edits import apply_edits
from partner.retrieval import RetrievalIndex, empathic_sentences


def test_identity_changes_nothing():
    out = rewriters.IdentityRewriter().rewrite(["s1", "s2"], ["Keep this. Exactly.", ""])
    assert out == [("Keep this. Exactly.", []), ("", [])]


def test_template_inserts_one_sentence_with_an_honest_edit():
    t = rewriters.TemplateRewriter("That must be really hard for you.")
    (text, edits), (empty_text, empty_edits) = t.rewrite(["s", "s"], ["Just study harder.\nOr not.", ""])
    assert text == "That must be really hard for you. Just study harder.\nOr not."
    assert edits == [{"action": "insert", "position": 0, "sentence": "That must be really hard for you."}]
    assert empty_text == "That must be really hard for you." and empty_edits[0]["position"] == 0
    end = rewriters.TemplateRewriter("I hear you.", at="end").rewrite(["s"], ["One. Two."])[0]
    assert end == ("One. Two. I hear you.", [{"action": "insert", "position": 2, "sentence": "I hear you."}])
    # The edits reproduce the rewrite from the original's sentences.
    assert apply_edits("One. Two.", end[1]) == end[0]
    assert split_sentences(text) == ["That must be really hard for you.", "Just study harder.", "Or not."]


def test_apply_edits_replace_and_delete():
    edits = [{"action": "replace", "position": 1, "sentence": "Two, kinder."}, {"action": "replace", "position": 0, "sentence": ""}]
    assert apply_edits("One. Two. Three.", edits) == "Two, kinder. Three."


@pytest.mark.parametrize("raw, want", [
    ("I'm so sorry to hear that. It sounds hard.", "I'm so sorry to hear that."),
    ('Sure! Here is the new sentence: "That sounds really painful."', "That sounds really painful."),
    ("\n\n  That sounds lonely.\nMore text", "That sounds lonely."),
    ("...", ""),
    ("", ""),
    ("Go for a walk.", ""),  # copied from the response: no new sentence
])
def test_parse_zeroshot(raw, want):
    assert rewriters.parse_zeroshot(raw, "Go for a walk. Exercise helps.") == want


def _pair(rp_id, response, levels, rationales):
    return EpitomePair("sp-" + rp_id, rp_id, "seeker", response, levels, rationales)


def test_empathic_sentences_take_level2_er_ex_rationale_sentences():
    r1 = "That sounds so painful and scary for you. Go to a doctor now please."
    r2 = "What happened after that conversation with him? I had the same thing once long ago."
    r3 = "I set my alarm at noon every single day lately. It helps."
    pairs = [
        _pair("1", r1, {"ER": 2, "IP": 0, "EX": 0}, {"ER": [(0, r1.index("scary") + 5)]}),
        _pair("2", r2, {"ER": 0, "IP": 2, "EX": 2}, {"EX": [(0, 20)], "IP": [(r2.index("I had"), len(r2))]}),
        _pair("3", r3, {"ER": 1, "IP": 2, "EX": 0}, {"ER": [(0, 10)], "IP": [(0, len(r3))]}),  # ER level 1 only
        _pair("4", r1, {"ER": 2, "IP": 0, "EX": 0}, {"ER": [(0, 20)]}),  # duplicate sentence
    ]
    got = empathic_sentences(pairs, min_words=4, max_words=30)
    assert [g["sentence"] for g in got] == ["That sounds so painful and scary for you.",
                                            "What happened after that conversation with him?"]
    assert got[0]["mechanisms"] == ["ER"] and got[1]["mechanisms"] == ["EX"]
    assert [g["sentence"] for g in empathic_sentences(pairs, min_words=8, max_words=30)] == [got[0]["sentence"]]


class _BowEmbedder:
    """Bag-of-words hashing embedder with SentenceTransformer.encode's signature."""

    def encode(self, texts, batch_size=32, normalize_embeddings=False, convert_to_numpy=True, show_progress_bar=None):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace("?", " ").replace(".", " ").split():
                out[i, sum(map(ord, w)) % 64] += 1.0
        out += 1e-6
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_retrieval_inserts_the_nearest_sentence_not_already_there():
    import torch

    sents = ["I am so sorry about your dog.", "How is your exam prep going?", "That job news is wonderful."]
    emb = _BowEmbedder()
    index = RetrievalIndex(sents, torch.as_tensor(emb.encode(sents, normalize_embeddings=True)), emb)
    r = rewriters.RetrievalRewriter(index)
    out = r.rewrite(["my dog died and i miss my dog", "my exam went badly"], ["Get another dog.", "Study more."])
    assert out[0][0] == "I am so sorry about your dog. Get another dog."
    assert out[1][1] == [{"action": "insert", "position": 0, "sentence": "How is your exam prep going?"}]
    # never inserts a sentence the response already has
    again = r.rewrite(["my dog died and i miss my dog"], ["I am so sorry about your dog."])[0][1][0]["sentence"]
    assert again != "I am so sorry about your dog."


def test_policy_methods_fail_clearly_without_a_policy(tmp_path):
    from partner.config import PartnerConfig

    with pytest.raises(rewriters.MethodUnavailable, match="no trained policy"):
        rewriters.build_rewriter("warmstart", PartnerConfig(), model=str(tmp_path / "no-policy"))


@pytest.mark.slow
def test_retrieval_index_uses_train_split_only(data_dir, tmp_path, monkeypatch):
    from core.corpora import epitome_splits

    monkeypatch.setenv("PARTNER_CACHE", str(tmp_path))
    index = RetrievalIndex.build_or_load(data_dir)
    assert 100 < len(index.sentences) == index.embeddings.shape[0]
    import json

    meta = json.loads((index.path / "sentences.json").read_text())
    train_ids = {p.sp_id for p in epitome_splits(data_dir)["train"]}
    assert all(s["sp_id"] in train_ids for s in meta["sentences"])
    again = RetrievalIndex.build_or_load(data_dir)  # cached: same folder, no rebuild
    assert again.path == index.path
    found = index.nearest(["My dog died yesterday and the house feels so empty."])[0]
    assert found in index.sentences
