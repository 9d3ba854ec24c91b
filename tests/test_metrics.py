"""Rewrite metrics on hand-computed examples (partner/metrics.py)."""

import math

import numpy as np
import pytest

from partner import metrics


def test_distinct_n_is_corpus_level_over_ngrams():
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 4 distinct / 6
    assert metrics.distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat) (cat sat) (the cat) (cat ran) -> 3 distinct / 4 bigrams (not / 6 words)
    assert metrics.distinct_n(texts, 2) == pytest.approx(3 / 4)
    # tokenised and lower-cased: "The" == "the", "sat." -> "sat" "."
    assert metrics.distinct_n(["The cat sat.", "the cat sat"], 1) == pytest.approx(4 / 7)
    assert metrics.distinct_n([], 2) == 0.0 and metrics.distinct_n(["one"], 2) == 0.0


def test_levenshtein_and_edit_rate():
    assert metrics.levenshtein("kitten", "sitting") == 3
    assert metrics.levenshtein([], ["a", "b"]) == 2
    assert metrics.edit_rate("a b c", "a x c") == pytest.approx(1 / 3)
    # inserting "that is hard ." before 3 words: 4 insertions / 3 words (can exceed 1)
    assert metrics.edit_rate("just study harder", "that is hard . just study harder") == pytest.approx(4 / 3)
    assert metrics.edit_rate("Same text.", "same  text .") == 0.0
    assert metrics.edit_rate("", "hello there") == 2.0  # empty original: divided by 1


def test_bleu_hand_example_and_word_level():
    # p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 1/3, same length -> BP = 1
    want = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    got = metrics.corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert got == pytest.approx(want, abs=1e-6)
    assert metrics.corpus_bleu(["I hear you."], [["no match here", "I hear you."]]) == pytest.approx(1.0)
    # Character n-grams (the authors' bug) would score these anagrams highly; words share nothing.
    assert metrics.corpus_bleu(["abc def ghi jkl"], ["abd cef hgi lkj"]) < 0.01
    with pytest.raises(ValueError):
        metrics.corpus_bleu(["a"], [])


def test_empathy_change_by_level():
    out = metrics.empathy_change_by_level([0, 0, 3], [2, 1, 3])
    assert out["overall"] == pytest.approx(1.0) and out["n"] == 3
    assert out["by_level"][0] == {"mean": 1.5, "n": 2}
    assert out["by_level"][3] == {"mean": 0.0, "n": 1}
    assert out["by_level"][1] == {"mean": None, "n": 0}
    assert set(out["by_level"]) == set(range(7))


def test_edited_sentence_indices_replays_edits():
    sents, idx = metrics.edited_sentence_indices("A a. B b.", [{"action": "insert", "position": 0, "sentence": "X x."}])
    assert sents == ["X x.", "A a.", "B b."] and idx == [0]
    edits = [{"action": "insert", "position": 2, "sentence": "Y y."}, {"action": "replace", "position": 0, "sentence": "Z z."}]
    sents, idx = metrics.edited_sentence_indices("A a. B b.", edits)
    assert sents == ["Z z.", "B b.", "Y y."] and idx == [0, 2]
    # an insertion before an edited sentence shifts its index; a deletion removes it
    edits = [{"action": "insert", "position": 1, "sentence": "Y y."}, {"action": "insert", "position": 0, "sentence": "X x."},
             {"action": "replace", "position": 3, "sentence": ""}]
    sents, idx = metrics.edited_sentence_indices("A a. B b.", edits)
    assert sents == ["X x.", "A a.", "Y y."] and idx == [0, 2]


def test_coherence_neighbours_single_sentence_and_no_edit():
    table = {("X x.", "A a."): 0.2, ("Y y.", "A a."): 0.6, ("Y y.", "B b."): 1.0}
    calls = []

    def prob(a, b):
        calls.append(len(a))
        return [table[p] for p in zip(a, b)]

    originals = ["A a. B b.", "A a. B b.", "", "A a."]
    edits = [[{"action": "insert", "position": 0, "sentence": "X x."}],
             [{"action": "insert", "position": 1, "sentence": "Y y."}],
             [{"action": "insert", "position": 0, "sentence": "Only one."}],
             []]
    out = metrics.coherence(originals, edits, prob)
    assert out[0] == pytest.approx(0.2)          # only neighbour: the next sentence
    assert out[1] == pytest.approx(0.8)          # mean over both neighbours
    assert out[2] == 1.0 and out[3] is None      # single-sentence output; nothing edited
    assert calls == [3]                          # one batched call
    assert metrics.mean(out) == pytest.approx((0.2 + 0.8 + 1.0) / 3)


class _FakeEmbedder:
    """Maps a few texts to fixed vectors (as SentenceTransformer.encode, normalised)."""

    vecs = {"s": [1.0, 0.0], "same": [2.0, 0.0], "orth": [0.0, 3.0], "diag": [1.0, 1.0]}

    def encode(self, texts, batch_size=32, normalize_embeddings=False, convert_to_numpy=True, show_progress_bar=None):
        v = np.array([self.vecs[t] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True) if normalize_embeddings else v


def test_specificity_is_cosine():
    got = metrics.specificity(["s", "s", "s"], ["same", "orth", "diag"], _FakeEmbedder())
    assert got == pytest.approx([1.0, 0.0, 1 / math.sqrt(2)], abs=1e-6)


@pytest.fixture(scope="module")
def tiny_lm():
    from core.registry import load_causal_lm

    return load_causal_lm("tiny-gpt2")


def test_perplexity_masks_padding_and_matches_the_unbatched_loss(tiny_lm):
    import torch

    model, tok = tiny_lm
    texts = ["I hear you.", "That sounds really hard, and I am sorry you are going through it alone.", ""]
    batched = metrics.perplexity(texts, model, tok, batch_size=3)
    single = [metrics.perplexity([t], model, tok, batch_size=1)["per_text"][0] for t in texts[:2]]
    assert batched["per_text"][:2] == pytest.approx(single, rel=1e-4)  # padding changes nothing
    assert batched["per_text"][2] is None                              # empty text: nothing to score
    # Against the model's own loss on the unpadded sequence with a start token.
    ids = torch.tensor([[tok.eos_token_id] + tok(texts[1])["input_ids"]])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    assert batched["per_text"][1] == pytest.approx(math.exp(loss.item()), rel=1e-4)
    nll = metrics.token_nll(texts, model, tok)
    assert batched["corpus"] == pytest.approx(math.exp(sum(s for s, _ in nll) / sum(n for _, n in nll)))


@pytest.mark.slow
def test_specificity_with_minilm_ranks_related_above_unrelated():
    from core.registry import load_sentence_embedder

    emb = load_sentence_embedder("minilm")
    seeker = "My dog died yesterday and the house feels so empty."
    s = metrics.specificity([seeker] * 3, [seeker, "I'm so sorry about your dog, losing a pet is awful.",
                                           "The stock market closed higher on Tuesday."], emb)
    assert s[0] == pytest.approx(1.0, abs=1e-4)
    assert s[1] > s[2] + 0.2


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    assert metrics.bootstrap_ci([]) is None
    assert metrics.bootstrap_ci([2, 2, 2]) == (2.0, 2.0)
    xs = [0, 1] * 50
    lo, hi = metrics.bootstrap_ci(xs)
    assert lo < 0.5 < hi and hi - lo < 0.3
    assert metrics.bootstrap_ci(xs, seed=3) == metrics.bootstrap_ci(xs, seed=3)


def test_paired_comparison():
    same = metrics.paired_comparison([1, 2, 3], [1, 2, 3])
    assert same["mean_diff"] == 0 and same["same"] == 3 and same["p_value"] == 1.0
    # 40 inputs, 30 better by 1, 10 unchanged: a real difference
    a, b = [1] * 30 + [0] * 10, [0] * 40
    diff = metrics.paired_comparison(a, b)
    assert diff["mean_diff"] == 0.75 and (diff["better"], diff["same"], diff["worse"]) == (30, 10, 0)
    assert diff["p_value"] < 0.001 and diff["ci95"][0] > 0.5
    # balanced gains and losses: no evidence either way
    mixed = metrics.paired_comparison([1, -1] * 20, [0] * 40)
    assert mixed["mean_diff"] == 0 and mixed["p_value"] > 0.5 and mixed["ci95"][0] < 0 < mixed["ci95"][1]
    with pytest.raises(ValueError):
        metrics.paired_comparison([1], [1, 2])
