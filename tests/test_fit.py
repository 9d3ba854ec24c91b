"""r_p, the post-fit reward (rewards/fit.py): fit to the own post minus fit to another, copies and stops earn 0."""

import re
import zlib

import numpy as np
import pytest

from rewards.fit import PostFitReward
from rewards.sentence_guard import SentenceGuard

DOG = "My dog died last week and I can't stop crying about my dog."
EXAM = "I failed my maths exam again and my parents are furious."
ORIG = "That is rough."


class BagOfWords:
    """A stand-in sentence embedder: hashed bag of lower-cased words, L2-normalised."""

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False):
        self.calls += 1
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z']+", t.lower()):
                out[i, zlib.crc32(w.encode()) % 256] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def test_a_sentence_about_the_own_post_earns_more_than_a_generic_one():
    fit = PostFitReward(BagOfWords())
    seekers = [DOG, DOG, EXAM, EXAM]
    rewrites = [f"Losing a dog you loved hurts. {ORIG}",          # takes up the dog post
                f"I'm so sorry. {ORIG}",                           # fits any post (no shared word here)
                f"Exams and parents can be so much pressure. {ORIG}",
                ORIG]                                              # stop: no new sentence
    out = fit(seekers, [ORIG] * 4, rewrites)
    assert out[0] > 0.1 and out[2] > 0.1
    assert out[1] == pytest.approx(0.0, abs=1e-6)
    assert out[3] == 0.0
    # the same dog sentence under the exam post is a misfit: negative
    assert fit([EXAM, DOG], [ORIG] * 2, [f"Losing a dog you loved hurts. {ORIG}", ORIG])[0] < 0


def test_copying_the_seeker_earns_nothing_and_the_mean_runs_over_new_sentences():
    fit = PostFitReward(BagOfWords())
    copy = f"My dog died last week and I can't stop crying. {ORIG}"
    assert fit([DOG, EXAM], [ORIG] * 2, [copy, ORIG]) == [0.0, 0.0]
    # copying the response's own other sentence earns nothing either, though it may sit close to the post
    reply = "Your dog was lucky to have you around."
    twice = f"{reply} Your dog was lucky to have you around always."
    assert fit([DOG, EXAM], [reply] * 2, [twice, reply]) == [0.0, 0.0]
    no_check = PostFitReward(BagOfWords(), guard=SentenceGuard(max_response_copy=0))
    assert no_check([DOG, EXAM], [reply] * 2, [twice, reply])[0] > 0
    one = fit([DOG, EXAM], [ORIG] * 2, [f"Your dog sounds like family. {ORIG}", ORIG])[0]
    padded = fit([DOG, EXAM], [ORIG] * 2, [f"Your dog sounds like family. I'm so sorry. {ORIG}", ORIG])[0]
    assert 0 < padded < one      # a generic sentence beside it dilutes the fit
    with pytest.raises(ValueError):
        fit([DOG], [ORIG, ORIG], [ORIG])


def test_a_single_post_batch_borrows_an_earlier_post_and_the_state_round_trips():
    fit = PostFitReward(BagOfWords())
    dog_line = f"Losing a dog you loved hurts. {ORIG}"
    assert fit([DOG], [ORIG], [dog_line]) == [0.0]          # nothing to compare with yet
    fit([EXAM], [ORIG], [ORIG])                              # remembers the exam post
    borrowed = fit([DOG], [ORIG], [dog_line])[0]
    assert borrowed > 0.1
    resumed = PostFitReward(BagOfWords())
    resumed.load_state_dict(fit.state_dict())
    assert resumed([DOG], [ORIG], [dog_line]) == fit([DOG], [ORIG], [dog_line])


def test_in_the_stack_off_by_default_and_weighted():
    from rewards.config import RewardConfig
    from rewards.stack import RewardStack

    assert RewardConfig().w_fit == 0.0
    cfg = RewardConfig(w_empathy=0, w_fluency=0, w_coherence=0, w_mi=0, w_fit=3.0)
    stack = RewardStack(cfg)
    assert set(stack.components) == {"fit"}
    stack.components["fit"]._embedder = BagOfWords()
    out = stack([DOG, EXAM], [ORIG] * 2, [f"Losing a dog you loved hurts. {ORIG}", ORIG])
    assert out.total[0] == pytest.approx(3.0 * out.components["fit"][0]) and out.total[0] > 0.3
    assert out.total[1] == 0.0
    assert "fit" in stack.state_dict()
