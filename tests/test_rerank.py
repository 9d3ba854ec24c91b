"""Reward-ranked decoding (partner/rerank.py): selection, and the policy rewriter that uses it."""

import pytest

from conftest import ODD
from partner import rerank
from partner.rerank import Candidate


class CountingReward:
    """reward = f(text); records every call's batch."""

    def __init__(self, f):
        self.f, self.calls = f, []

    def __call__(self, seekers, originals, rewrites, edits=None):
        assert len(seekers) == len(originals) == len(rewrites) == len(edits)
        self.calls.append(list(rewrites))
        self.pairs = getattr(self, "pairs", []) + list(zip(seekers, rewrites))
        return [self.f(t) for t in rewrites]


def cands(*texts, kind=rerank.SAMPLED):
    return [Candidate(t, [], rerank.stop_info(), kind) for t in texts]


def test_select_keeps_the_highest_reward_per_input_and_scores_each_text_once():
    reward = CountingReward(len)
    sel = rerank.select(reward, ["s1", "s2"], ["o1", "o2"],
                        [cands("a", "abc", "ab", "abc"), cands("xyz", "x")])
    assert [c.text for c in sel.chosen] == ["abc", "xyz"]
    assert sel.rewards == [3.0, 3.0]
    assert reward.calls == [["a", "abc", "ab", "xyz", "x"]]  # the repeated "abc" scored once, one batch


def test_select_breaks_ties_towards_the_earlier_candidate_and_counts_kinds():
    first = Candidate("keep", [], rerank.stop_info(), rerank.ORIGINAL)
    later = Candidate("same", [{"action": "insert"}], rerank.stop_info(), rerank.GREEDY)
    sel = rerank.select(CountingReward(lambda t: 1.0), ["s"], ["keep"], [[first, later]])
    assert sel.chosen[0] is first and sel.counts == {rerank.ORIGINAL: 1}


def test_min_gain_keeps_the_original_unless_an_edit_clearly_beats_it():
    orig = Candidate("orig", [], rerank.stop_info(), rerank.ORIGINAL)
    small, big = cands("small+", "big+++")
    scores = {"orig": 1.0, "small+": 1.3, "big+++": 1.6}
    reward = CountingReward(lambda t: scores[t])
    assert rerank.select(reward, ["s"], ["orig"], [[orig, small]], min_gain=0.5).chosen[0] is orig
    assert rerank.select(reward, ["s"], ["orig"], [[orig, small, big]], min_gain=0.5).chosen[0] is big
    assert rerank.select(reward, ["s"], ["orig"], [[orig, small]], min_gain=0).chosen[0] is small
    assert rerank.select(reward, ["s"], ["orig"], [[small, big]], min_gain=5).chosen[0] is big  # no original


def test_select_accepts_a_reward_stack_output_and_refuses_bad_shapes():
    from rewards.stack import RewardOutput

    def stack(seekers, originals, rewrites, edits=None):
        return RewardOutput([-len(t) for t in rewrites], {}, {})

    assert rerank.select(stack, ["s"], ["o"], [cands("long one", "short")]).chosen[0].text == "short"
    with pytest.raises(ValueError, match="no candidates"):
        rerank.select(stack, ["s"], ["o"], [[]])
    with pytest.raises(ValueError, match="candidate lists"):
        rerank.select(stack, ["s", "t"], ["o", "p"], [cands("a")])


def _policy_rewriter(path, candidates, reward_fn, keep_original=True):
    from partner.config import PolicyConfig
    from partner.rewriters import PolicyRewriter

    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=6, max_context_tokens=32)
    return PolicyRewriter("partner", path, cfg, candidates=candidates, reward_fn=reward_fn,
                          keep_original=keep_original)


SEEKERS = ["I feel alone.", "Work is crushing me.", "I failed my exam."]
RESPONSES = ["One. Two. Three.", "Take a break.", ""]


@pytest.mark.slow
def test_ranked_rewrites_keep_the_candidate_the_reward_prefers(tiny_policy):  # noqa: F811
    reward = CountingReward(lambda t: len(t))  # longest text wins
    rw = _policy_rewriter(tiny_policy, 4, reward)
    out = rw.rewrite(SEEKERS, RESPONSES, seed=3)
    assert len(out) == 3 and len(reward.calls) == 1
    for (text, edits), seeker, original in zip(out, SEEKERS, RESPONSES):
        mine = [t for s, t in reward.pairs if s == seeker]
        assert original in mine and len(mine) >= 2  # the original and at least one policy episode
        assert text == max(mine, key=len)
        for e in edits:
            assert set(e) == {"action", "position", "sentence", "source"} and e["source"] in ("greedy", "sampled")
    assert sum(rw.chosen.values()) == 3
    # deterministic for a seed
    again = _policy_rewriter(tiny_policy, 4, CountingReward(lambda t: len(t))).rewrite(SEEKERS, RESPONSES, seed=3)
    assert again == out


@pytest.mark.slow
def test_keep_original_leaves_inputs_alone_when_no_edit_beats_them(tiny_policy):  # noqa: F811
    # a reward that punishes any change: the original (no edits) must win everywhere
    originals = set(RESPONSES)
    rw = _policy_rewriter(tiny_policy, 3, CountingReward(lambda t: 0.0 if t in originals else -1.0))
    out = rw.rewrite(SEEKERS, RESPONSES, seed=0)
    assert out == [(r, []) for r in RESPONSES]
    assert rw.chosen == {rerank.ORIGINAL: 3}
    # without it, an edited candidate is kept whenever the policy wrote one
    rw = _policy_rewriter(tiny_policy, 3, CountingReward(lambda t: 0.0 if t in originals else -1.0),
                          keep_original=False)
    assert rerank.ORIGINAL not in rw.chosen
    rw.rewrite(SEEKERS, RESPONSES, seed=0)
    assert rerank.ORIGINAL not in rw.chosen and sum(rw.chosen.values()) == 3


@pytest.mark.slow
def test_ranked_decoding_handles_odd_inputs(tiny_policy):  # noqa: F811
    rw = _policy_rewriter(tiny_policy, 2, CountingReward(lambda t: -len(t)))
    out = rw.rewrite([o["seeker_post"] for o in ODD], [o["response_post"] for o in ODD], seed=1)
    assert [t for t, _ in out] == [o["response_post"] for o in ODD]  # shortest = unchanged


def test_ranked_decoding_needs_a_reward_and_a_sane_count(tiny_policy):  # noqa: F811
    with pytest.raises(ValueError, match="reward function"):
        _policy_rewriter(tiny_policy, 2, None)
    with pytest.raises(ValueError, match="at least 1"):
        _policy_rewriter(tiny_policy, 0, None)
    from partner.config import PolicyConfig
    from partner.rewriters import PolicyRewriter

    with pytest.raises(ValueError, match="guard_retries must be 0 or more"):
        PolicyRewriter("partner", tiny_policy, PolicyConfig(backbone="tiny-gpt2"), guard_retries=-1)


class FakePreference:
    """score = number of 'kind' words minus number of 'bad' words (a stand-in PreferenceModel)."""

    def __init__(self):
        self.calls = 0

    def score(self, seekers, replies, batch_size=32):
        self.calls += 1
        return [r.lower().count("kind") - r.lower().count("bad") for r in replies]


def test_preference_reward_is_the_score_gain_over_the_original():
    from rewards.preference import PreferenceReward

    fake = FakePreference()
    r = PreferenceReward(fake)
    assert r(["s", "s"], ["kind.", "plain."], ["kind. kind.", "bad plain."]) == [1, -1]
    assert r(["s"], ["kind."], ["kind. kind."]) == [1] and fake.calls == 1  # cached
    with pytest.raises(ValueError):
        r(["s"], ["a", "b"], ["c"])


def test_pool_candidates_are_ranked_by_preference_and_tagged(tiny_policy):  # noqa: F811
    from partner.config import PolicyConfig
    from partner.rewriters import PolicyRewriter, insert_sentence
    from rewards.preference import PreferenceReward

    def retrieved(seekers, responses):
        return [[insert_sentence(r, "A kind word."), insert_sentence(r, "A bad word.")] for r in responses]

    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=6, max_context_tokens=32)
    rw = PolicyRewriter("partner", tiny_policy, cfg, candidates=2, reward_fn=PreferenceReward(FakePreference()),
                        pool=[(rerank.RETRIEVAL, retrieved)], rank_by="preference")
    out = rw.rewrite(SEEKERS, RESPONSES, seed=0)
    for (text, edits), r in zip(out, RESPONSES):
        assert text == insert_sentence(r, "A kind word.")[0]  # the tiny policy writes no 'kind'
        assert edits == [{"action": "insert", "position": 0, "sentence": "A kind word.", "source": "retrieval"}]
    assert rw.chosen == {rerank.RETRIEVAL: 3} and "retrieval candidates" in rw.describe()
    # nothing beats the original: it is kept
    rw = PolicyRewriter("partner", tiny_policy, cfg, candidates=2, reward_fn=PreferenceReward(FakePreference()),
                        pool=[(rerank.RETRIEVAL, lambda s, r: [[insert_sentence(x, "A bad word.")] for x in r])],
                        rank_by="preference")
    originals = [r for r in RESPONSES]
    kept = rw.rewrite(SEEKERS, [o + " kind" for o in originals], seed=0)
    assert all(edits == [] or "bad" not in text.lower() for text, edits in kept)


def test_preference_guard_reverts_edits_scored_below_the_original(tiny_policy):  # noqa: F811
    from partner.config import PolicyConfig
    from partner.rewriters import PolicyRewriter
    from rewards.preference import PreferenceReward

    class Lower:  # every change scores below the original
        def score(self, seekers, replies, batch_size=32):
            return [0.0 if r in RESPONSES else -1.0 for r in replies]

    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=6, max_context_tokens=32)
    plain = PolicyRewriter("partner", tiny_policy, cfg).rewrite(SEEKERS, RESPONSES, seed=0)
    rw = PolicyRewriter("partner", tiny_policy, cfg, preference_guard=PreferenceReward(Lower()))
    out = rw.rewrite(SEEKERS, RESPONSES, seed=0)
    assert out == [(r, []) for r in RESPONSES]
    assert rw.reverted == sum(t != r for (t, _), r in zip(plain, RESPONSES))


@pytest.mark.slow
def test_shipped_agent_with_the_real_reward_stack(tmp_path):
    """Ranking by the training reward: shipped policy, guard, RewardStack from the config."""
    from partner.config import DEFAULT_CONFIG, SHIPPED_MODELS, load_config
    from partner.rewriters import build_rewriter

    if not (SHIPPED_MODELS / "policy_rl" / "policy_config.json").exists():
        pytest.skip("no shipped PARTNER agent in models/policy_rl")
    cfg = load_config(DEFAULT_CONFIG, ["rewrite.candidates=2", "rewrite.rank_by=reward", "rewrite.pool=[policy]"])
    rw = build_rewriter("partner", cfg)
    seekers = ["My dog died yesterday and I can't stop crying.", "I finally got the job I wanted!"]
    responses = ["Get another dog.", "Congrats, that is awesome! You earned it."]
    out = rw.rewrite(seekers, responses, seed=0)
    assert len(out) == 2 and sum(rw.chosen.values()) == 2
    for (text, edits), original in zip(out, responses):
        assert (text == original) == (not edits)
    assert "best of 2 episodes" in rw.describe() and "training reward" in rw.describe()
    assert rw.min_gain == 0.5  # the reward ranker's default


@pytest.mark.slow
def test_the_default_rewriter_ranks_the_pool_by_the_preference_model(tmp_path):
    """What partner-rewrite does with no options: the shipped agent's greedy episode, retrieved human-written
    sentences and the zero-shot sentence, ranked by the shipped preference model; each edit names its source."""
    from partner.config import DEFAULT_CONFIG, SHIPPED_MODELS, load_config
    from partner.rewriters import build_rewriter

    if not all((SHIPPED_MODELS / m).exists() for m in ("policy_rl/policy_config.json", "preference")):
        pytest.skip("no shipped agent or preference model")
    cfg = load_config(DEFAULT_CONFIG)
    rw = build_rewriter("partner", cfg)
    assert rw.rank_by == "preference" and rw.min_gain == 0.0 and [k for k, _ in rw.pool] == ["retrieval", "zeroshot"]
    seekers = ["My dog died yesterday and I can't stop crying.", "I failed my driving test again."]
    responses = ["Get another dog.", "Just take it again."]
    out = rw.rewrite(seekers, responses, seed=0)
    assert sum(rw.chosen.values()) == 2
    for (text, edits), original in zip(out, responses):
        assert (text == original) == (not edits)
        assert all(e["source"] in ("greedy", "retrieval", "zeroshot") for e in edits)
    # every pool source offered a candidate for each input
    assert all({c["source"] for c in cands} == {"greedy", "retrieval", "zeroshot"} for cands in rw.last_pool)
    assert "by the preference model" in rw.describe()


def test_min_gain_defaults_to_the_rankers_own_unit():
    from partner.config import load_config
    from partner.rewriters import min_gain_of

    assert min_gain_of(load_config(None).rewrite) == 0.0
    assert min_gain_of(load_config(None, ["rewrite.rank_by=reward"]).rewrite) == 0.5
    assert min_gain_of(load_config(None, ["rewrite.rank_by=reward", "rewrite.min_gain=0.2"]).rewrite) == 0.2


@pytest.mark.slow
def test_the_pool_goes_on_without_retrieval_when_the_data_is_missing(tmp_path, caplog):
    from partner.config import load_config
    from partner.rewriters import _pool_sources, SentenceGuard

    cfg = load_config(None, [f"data_dir={tmp_path}", "rewrite.pool=[policy,retrieval,template]"])
    with caplog.at_level("WARNING"):
        kinds = [k for k, _ in _pool_sources(cfg.rewrite, cfg, SentenceGuard.from_config(cfg.rewrite), None)]
    assert kinds == [rerank.TEMPLATE]
    assert "retrieval left out" in caplog.text and "PARTNER_DATA" in caplog.text


def test_recorded_pool_is_ranked_again_without_generating(tiny_policy, tmp_path):  # noqa: F811
    import json

    from partner.config import PolicyConfig
    from partner.rewrite_jsonl import rewrite_records
    from partner.rewriters import PolicyRewriter, RecordedPoolRewriter, insert_sentence
    from rewards.preference import PreferenceReward

    def retrieved(seekers, responses):
        return [[insert_sentence(r, "A kind word."), insert_sentence(r, "A bad word.")] for r in responses]

    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=6, max_context_tokens=32)
    rw = PolicyRewriter("partner", tiny_policy, cfg, candidates=2, reward_fn=PreferenceReward(FakePreference()),
                        pool=[(rerank.RETRIEVAL, retrieved)], rank_by="preference")
    rw.record_candidates = True
    recs = rewrite_records([{"seeker_post": s, "response_post": r} for s, r in zip(SEEKERS, RESPONSES)], rw, seed=0)
    assert all({c["source"] for c in rec["candidates"]} >= {"greedy", "sampled", "retrieval"} for rec in recs)
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    # the same ranking from the record gives the same rewrites
    again = RecordedPoolRewriter("partner", str(path), PreferenceReward(FakePreference()), {"greedy", "sampled",
                                                                                              "retrieval"})
    assert again.rewrite(SEEKERS, RESPONSES) == [(r["rewritten_response"], r["edits"]) for r in recs]
    # only the policy's greedy candidate, no original: the greedy episode itself
    greedy = RecordedPoolRewriter("partner", str(path), PreferenceReward(FakePreference()), {"greedy"},
                                  keep_original=False)
    want = [next(c for c in r["candidates"] if c["source"] == "greedy")["text"] for r in recs]
    assert [t for t, _ in greedy.rewrite(SEEKERS, RESPONSES)] == want
    with pytest.raises(KeyError):
        again.rewrite(["unknown post"], ["x"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({k: v for k, v in recs[0].items() if k != "candidates"}) + "\n")
    from core.jsonio import DataError

    with pytest.raises(DataError, match="record_candidates"):
        RecordedPoolRewriter("partner", str(bad), None, {"greedy"})


def test_reward_stack_carries_the_preference_term():
    from rewards.config import RewardConfig
    from rewards.stack import RewardStack

    cfg = RewardConfig(w_empathy=0, w_fluency=0, w_coherence=0, w_mi=0, w_preference=2.0)
    stack = RewardStack(cfg, preference_model=FakePreference())
    out = stack(["s", "s"], ["plain.", "kind."], ["kind plain.", "bad."])
    assert out.components["preference"] == [1.0, -2.0] and out.total == [2.0, -4.0]
    assert "preference" not in RewardStack(RewardConfig(w_empathy=0, w_fluency=0, w_coherence=0, w_mi=0)).components
