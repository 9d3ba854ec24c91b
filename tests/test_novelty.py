"""r_n, the novelty penalty (rewards/novelty.py): shares over recent episodes, state across calls and checkpoints."""

import pytest

from rewards.novelty import NoveltyPenalty, new_sentences, sentence_key

SEEKER = "My dog died last week and I can't stop crying."
ORIG = "Dogs are great."
SORRY = "I'm so sorry to hear that."


def test_only_new_sentences_count_and_punctuation_and_case_do_not():
    assert sentence_key("I'm SO sorry to hear that!!") == sentence_key(SORRY)
    assert new_sentences(ORIG, f"{SORRY} {ORIG}") == [sentence_key(SORRY)]
    assert new_sentences(ORIG, ORIG) == []                      # stop: nothing new
    assert new_sentences(f"{ORIG} {ORIG}", ORIG) == []          # deletion: nothing new
    assert new_sentences(ORIG, f"{ORIG} {ORIG}") == [sentence_key(ORIG)]  # a copy kept twice is new once


def test_share_of_the_batch_and_the_memory():
    pen = NoveltyPenalty(window=8)
    rewrites = [f"{SORRY} {ORIG}", f"{SORRY} {ORIG}", f"That sounds lonely. {ORIG}", ORIG]
    out = pen([SEEKER] * 4, [ORIG] * 4, rewrites)
    assert out == [-0.5, -0.5, -0.25, 0.0]                       # 2 of 4 episodes, 1 of 4, a stop pays nothing
    # The next batch is judged against the 4 remembered episodes too: 3 of the 6 wrote the sorry sentence.
    out = pen([SEEKER] * 2, [ORIG] * 2, [f"{SORRY} {ORIG}", f"What happened? {ORIG}"])
    assert out == [pytest.approx(-3 / 6), pytest.approx(-1 / 6)]
    assert pen.share(SORRY) == pytest.approx(3 / 6)


def test_the_window_forgets_old_episodes_and_a_rewrite_pays_for_its_most_common_sentence():
    pen = NoveltyPenalty(window=4)
    pen([SEEKER] * 4, [ORIG] * 4, [f"{SORRY} {ORIG}"] * 4)
    out = pen([SEEKER] * 2, [ORIG] * 2, [f"What happened? {ORIG}", f"What happened? {SORRY} {ORIG}"])
    # the window keeps 2 old sorry episodes + this batch: "what happened" 2/4, sorry 3/4 for the second rewrite
    assert out == [-0.5, -0.75]
    assert len(pen.memory) == 4
    # a batch larger than the window is counted in full
    big = NoveltyPenalty(window=2)
    assert big([SEEKER] * 3, [ORIG] * 3, [f"{SORRY} {ORIG}"] * 3) == [-1.0] * 3
    with pytest.raises(ValueError, match="window"):
        NoveltyPenalty(window=0)


def test_state_round_trips_so_a_resumed_run_scores_the_same():
    a = NoveltyPenalty(window=16)
    a([SEEKER] * 3, [ORIG] * 3, [f"{SORRY} {ORIG}", ORIG, f"Hugs. {ORIG}"])
    b = NoveltyPenalty(window=16)
    b.load_state_dict(a.state_dict())
    batch = ([SEEKER] * 2, [ORIG] * 2, [f"{SORRY} {ORIG}", f"Hugs. {ORIG}"])
    assert a(*batch) == b(*batch)


def test_in_the_stack_weighted_off_by_default_and_checkpointed(tmp_path):
    from partner.config import PartnerConfig
    from rewards.config import RewardConfig
    from rewards.stack import RewardStack

    assert RewardConfig().w_novelty == 0.0  # not in the paper: off unless a config asks for it
    cfg = PartnerConfig()
    cfg.rewards = RewardConfig(w_empathy=0, w_fluency=0, w_coherence=0, w_mi=0, w_novelty=2.0, novelty_window=4)
    stack = RewardStack.from_config(cfg)
    assert set(stack.components) == {"novelty"}
    out = stack([SEEKER] * 2, [ORIG] * 2, [f"{SORRY} {ORIG}", ORIG])
    assert out.components["novelty"] == [-0.5, 0.0] and out.total == [-1.0, 0.0]
    fresh = RewardStack.from_config(cfg)
    fresh.load_state_dict(stack.state_dict())
    assert fresh.components["novelty"].memory == stack.components["novelty"].memory
    cfg.rewards.w_novelty = 0.0
    assert RewardStack.from_config(cfg).state_dict() == {}


@pytest.mark.slow
def test_reranking_leaves_the_novelty_penalty_out():
    from partner.config import PartnerConfig
    from partner.rewriters import build_rewriter

    cfg = PartnerConfig()
    cfg.rewards.w_novelty = 1.0
    cfg.rewrite.candidates = 2
    cfg.rewrite.rank_by, cfg.rewrite.pool = "reward", ["policy"]
    rw = build_rewriter("partner", cfg)
    assert "novelty" not in rw.reward_fn.components


