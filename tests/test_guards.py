"""Rewrite-time sentence guards: seeker copy and degenerate repetition."""

import pytest

from partner import edits as E
from partner.episode import run_episodes
from partner.guards import SentenceGuard, seeker_copy, self_repetition, words

from conftest import STOP, ScriptedPolicy

SEEKER = "Suicide. I feel like it's closer to happening. Nobody would notice."


def test_words_drop_punctuation_and_keep_contractions():
    assert words("I'm sorry, I’m SORRY!") == ["i'm", "sorry", "i’m", "sorry"]


def test_seeker_copy_share_of_trigrams():
    assert seeker_copy("I feel like it's closer to happening.", SEEKER) == 1.0
    assert seeker_copy("That sounds really frightening.", SEEKER) == 0.0
    # "i feel like" is shared, the other 3 trigrams are not
    assert seeker_copy("I feel like you are scared.", SEEKER) == pytest.approx(1 / 4)
    assert seeker_copy("So sad.", SEEKER) == 0.0  # under three words: no trigrams


def test_self_repetition():
    assert self_repetition("I'm sorry, I'm sorry, I'm sorry, I'm sorry.") == pytest.approx(1 - 2 / 6)
    assert self_repetition("That must be so hard for you.") == 0.0
    assert self_repetition("Hi.") == 0.0


def test_guard_rejects_and_counts_and_can_be_switched_off():
    g = SentenceGuard()
    assert g.check(SEEKER, "I feel like it's closer to happening.") == "seeker_copy"
    assert g.check(SEEKER, "I'm sorry, I'm sorry, I'm sorry, I'm sorry.") == "repetition"
    assert g.check(SEEKER, "That sounds really frightening. Are you safe right now?") is None
    assert g.rejected == {"seeker_copy": 1, "repetition": 1}
    off = SentenceGuard(0, 0, 0, block_risk=False, block_unsafe=False)
    assert not off.active and off.check(SEEKER, "I feel like it's closer to happening.") is None


class OnePostPolicy(ScriptedPolicy):
    """ScriptedPolicy for a single response whose seeker post is real text."""

    def act(self, seekers, windows, **kwargs):
        return super().act(["0"] * len(seekers), windows, **kwargs)


def test_a_rejected_sentence_becomes_a_stop_step_and_the_walk_goes_on():
    response = "A one. B two. C three."
    scripts = [(0, "I feel like it's closer to happening."), (E.insert_class(1, 2), "That sounds frightening.")]
    guard = SentenceGuard()
    ep = run_episodes(OnePostPolicy([list(scripts)]), [SEEKER], [response], guard=guard)[0]
    assert ep.text == "A one. B two. C three. That sounds frightening."
    assert [s.edit.action for s in ep.steps] == ["stop", "insert"] and guard.rejected == {"seeker_copy": 1}
    # without the guard the copy goes in
    raw = run_episodes(OnePostPolicy([list(scripts)]), [SEEKER], [response])[0]
    assert raw.text.startswith("I feel like it's closer to happening. A one.")


class RecordingPolicy(OnePostPolicy):
    """OnePostPolicy that records how it was asked (a retry must force the position and sample)."""

    def __init__(self, scripts):
        super().__init__(scripts)
        self.asked = []

    def act(self, seekers, windows, **kwargs):
        self.asked.append({k: kwargs.get(k) for k in ("sample_sentence", "positions")})
        return super().act(seekers, windows, **kwargs)


def test_guard_retries_sample_a_new_sentence_for_the_same_position():
    copy = "I feel like it's closer to happening."
    scripts = [(0, copy), (0, copy), (0, "That sounds frightening."), (STOP, "")]
    guard = SentenceGuard()
    pol = RecordingPolicy([list(scripts)])
    ep = run_episodes(pol, [SEEKER], ["A one. B two. C three."], sample=False, guard=guard, guard_retries=2)[0]
    assert ep.text == "That sounds frightening. A one. B two. C three."
    assert [s.edit.action for s in ep.steps] == ["insert", "stop"]
    assert guard.rejected == {"seeker_copy": 2}
    assert pol.asked[1] == pol.asked[2] == {"sample_sentence": True, "positions": [0]}
    # all tries rejected: the window is a stop, as with no retries
    guard = SentenceGuard()
    ep = run_episodes(OnePostPolicy([[(0, copy), (0, copy), (STOP, "")]]), [SEEKER], ["A one. B two. C three."],
                      guard=guard, guard_retries=1)[0]
    assert ep.text == "A one. B two. C three." and guard.rejected == {"seeker_copy": 2}


def test_a_stop_or_deletion_is_never_checked():
    guard = SentenceGuard()
    ep = run_episodes(ScriptedPolicy([[(E.replace_class(0, 2), ""), (STOP, "")]]), ["0"], ["A one. B two. C three."],
                      guard=guard)[0]
    assert ep.text == "B two. C three." and not guard.rejected


def test_zeroshot_rejected_sentence_leaves_the_response_unchanged():
    from partner.rewriters import ZeroShotRewriter

    zs = ZeroShotRewriter.__new__(ZeroShotRewriter)  # no model: generate() is replaced below
    zs.at, zs.guard = "start", SentenceGuard()
    zs.prompt = lambda s, r: s
    zs.generate = lambda prompts, seed=None: ["I feel like it's closer to happening.", "That sounds so hard."]
    out = zs.rewrite([SEEKER, SEEKER], ["Stay strong.", "Stay strong."])
    assert out[0] == ("Stay strong.", [])
    assert out[1][0] == "That sounds so hard. Stay strong." and zs.guard.rejected == {"seeker_copy": 1}


def test_guard_thresholds_come_from_the_rewrite_config():
    from partner.config import load_config

    cfg = load_config(None, ["rewrite.max_seeker_copy=0", "rewrite.max_repetition=0.5",
                             "rewrite.max_response_copy=0.8"])
    g = SentenceGuard.from_config(cfg.rewrite)
    assert (g.max_seeker_copy, g.max_repetition, g.max_response_copy) == (0.0, 0.5, 0.8)
    assert SentenceGuard.from_config(load_config(None, []).rewrite) == SentenceGuard()


def test_eval_reports_degenerate_written_sentences():
    from partner.evaluation.rewrites import degenerate_edits

    edits = [[{"action": "insert", "position": 0, "sentence": "I feel like it's closer to happening."},
              {"action": "insert", "position": 2, "sentence": "Sorry, so sorry, so sorry, so sorry."}],
             [{"action": "replace", "position": 0, "sentence": ""}],
             [{"action": "insert", "position": 0, "sentence": "That must be hard."}],
             # a duplicate of the response's own sentence; then a rewording of the replaced sentence (no copy)
             [{"action": "insert", "position": 1, "sentence": "I have been there too."}],
             [{"action": "replace", "position": 0, "sentence": "I have been there too, friend."}]]
    originals = ["Stay strong. Keep going.", "Go out more.", "Call a friend.", "I have been there too. Hugs.",
                 "I have been there too. Hugs."]
    out = degenerate_edits([SEEKER] * 5, originals, edits)
    assert out == {"written_sentences": 5, "seeker_copy_rate": pytest.approx(1 / 5),
                   "response_copy_rate": pytest.approx(1 / 5), "repetition_rate": pytest.approx(1 / 5),
                   "risk_rate": 0.0, "unsafe_rate": 0.0, "question_rate": 0.0}
    assert degenerate_edits([SEEKER], ["x"], [[]])["seeker_copy_rate"] is None


def test_eval_reports_how_varied_the_written_sentences_are():
    from partner.evaluation.rewrites import sentence_diversity

    edits = [[{"action": "insert", "position": 0, "sentence": "I'm sorry to hear that."}],
             [{"action": "insert", "position": 0, "sentence": "i'm SORRY to hear that"},
              {"action": "replace", "position": 2, "sentence": "What happened?"}],
             [{"action": "replace", "position": 0, "sentence": ""}],   # a deletion writes nothing
             [{"action": "insert", "position": 1, "sentence": "I'm sorry to hear that!"}]]
    assert sentence_diversity(edits) == {"distinct_sentence_rate": pytest.approx(2 / 4),
                                         "top_sentence": "i'm sorry to hear that", "top_sentence_share": 0.75}
    assert sentence_diversity([[], []])["distinct_sentence_rate"] is None


def test_replay_gives_each_sentence_the_response_it_went_into():
    from partner.edits import written_sentences as replay

    got = list(replay("A one. B two.", [{"action": "insert", "position": 1, "sentence": "New."},
                                         {"action": "replace", "position": 0, "sentence": "A1."},
                                         {"action": "replace", "position": 2, "sentence": ""}]))
    assert got == [("New.", ["A one.", "B two."]), ("A1.", ["New.", "B two."])]


def test_a_sentence_that_duplicates_the_response_is_rejected_but_a_rewording_of_the_replaced_one_is_not():
    response = "I feel the same way. I'm angry and depressed."
    dup = (0, "I feel the same way.")  # insert before sentence 0: a copy of it
    guard = SentenceGuard()
    ep = run_episodes(OnePostPolicy([[dup]]), [SEEKER], [response], guard=guard)[0]
    assert ep.text == response and guard.rejected == {"response_copy": 1}
    reword = (E.replace_class(0, 2), "I feel the same way, truly.")
    ep = run_episodes(OnePostPolicy([[reword]]), [SEEKER], [response], guard=guard)[0]
    assert ep.text.startswith("I feel the same way, truly. I'm angry") and guard.rejected == {"response_copy": 1}
    assert not SentenceGuard(max_response_copy=0).duplicates([response], "I feel the same way.")


def test_guard_reason_counts_nothing_and_check_counts():
    g = SentenceGuard()
    assert g.reason(SEEKER, "I feel like it's closer to happening.") == "seeker_copy"
    assert g.rejected == {}
    g.check(SEEKER, "I feel like it's closer to happening.")
    assert g.rejected == {"seeker_copy": 1}


@pytest.mark.parametrize("sentence", ["Have you tried to die?", "Have you tried cutting yourself?",
                                      "Have you ever tried to kill yourself?", "Have you tried suicide?",
                                      "Are you thinking about ending it all?", "Do you want to hurt yourself?",
                                      "I know how it feels to want to be dead."])
def test_the_guard_rejects_sentences_that_bring_in_death_suicide_or_self_harm(sentence):
    from rewards.sentence_guard import SentenceGuard, risk_terms

    assert risk_terms(sentence)
    guard = SentenceGuard()
    assert guard.check(SEEKER, sentence, []) == "risk" and guard.rejected["risk"] == 1
    assert SentenceGuard(block_risk=False).reason(SEEKER, sentence, []) is None  # rewrite.block_risk_terms=false


@pytest.mark.parametrize("sentence", ["That must be so hard for you.", "Have you talked to your family about it?",
                                      "I'm sorry you are going through this.", "Skills can be learned.",
                                      "It sounds like a deadline is weighing on you.", "Studies show it helps."])
def test_ordinary_supportive_sentences_pass_the_risk_check(sentence):
    from rewards.sentence_guard import SentenceGuard, risk_terms

    assert risk_terms(sentence) == [] and SentenceGuard().reason(SEEKER, sentence, []) is None


def test_the_risk_guard_reaches_rewriting_config_and_the_eval_report():
    from partner.config import RewriteConfig
    from partner.evaluation.rewrites import degenerate_edits
    from rewards.sentence_guard import SentenceGuard

    assert SentenceGuard.from_config(RewriteConfig()).block_risk
    assert not SentenceGuard.from_config(RewriteConfig(block_risk_terms=False)).block_risk
    orig = "Hang in there."
    out = degenerate_edits([SEEKER] * 2, [orig] * 2,
                           [[{"action": "insert", "position": 0, "sentence": "Have you tried to die?"}],
                            [{"action": "insert", "position": 0, "sentence": "That sounds hard."}]])
    assert out["risk_rate"] == 0.5 and out["question_rate"] == 0.5


# Post-fit agents' sentences (models/policy_rl/eval/hand-audit/audit.jsonl) and others of the same kinds.
@pytest.mark.parametrize("sentence", ["Have you tried to starve yourself?", "Have you tried to get a hooker?",
                                      "Have you been in a relationship with a girl who is a virgin?",
                                      "Have you tried to get drunk with your parents?", "Maybe try some weed.",
                                      "Have you thought about getting revenge?", "Do you have a gun at home?",
                                      "Have you tried to lose weight?", "Have you stopped eating?"])
def test_the_guard_rejects_sentences_that_bring_in_unsafe_topics(sentence):
    from partner.config import RewriteConfig
    from rewards.sentence_guard import SentenceGuard, unsafe_terms

    assert unsafe_terms(sentence)
    guard = SentenceGuard()
    assert guard.check(SEEKER, sentence, []) == "unsafe_topic" and guard.rejected["unsafe_topic"] == 1
    assert SentenceGuard(block_unsafe=False).reason(SEEKER, sentence, []) is None
    assert SentenceGuard.from_config(RewriteConfig(block_unsafe_topics=False)).reason(SEEKER, sentence, []) is None
    assert SentenceGuard.from_config(RewriteConfig()).reason(SEEKER, sentence, []) == "unsafe_topic"


@pytest.mark.parametrize("sentence", ["I'm sorry to hear that you're having a tough time with your food.",
                                      "Have you tried talking to someone who has been through a similar experience?",
                                      "Have you tried the fast food place near you?", "That sounds like a heavy load.",
                                      "Have you tried to talk to your doctor about your depression?",
                                      "It takes courage to speak up.", "Sexuality is not what this is about.",
                                      "I'm glad you found a hobby you enjoy."])
def test_ordinary_supportive_sentences_pass_the_unsafe_topic_check(sentence):
    from rewards.sentence_guard import SentenceGuard, unsafe_terms

    assert unsafe_terms(sentence) == [] and SentenceGuard().reason(SEEKER, sentence, []) is None


def test_the_eval_report_counts_unsafe_topics():
    from partner.evaluation.rewrites import degenerate_edits

    orig = "Hang in there."
    out = degenerate_edits([SEEKER] * 2, [orig] * 2,
                           [[{"action": "insert", "position": 0, "sentence": "Have you tried to starve yourself?"}],
                            [{"action": "insert", "position": 0, "sentence": "That sounds hard."}]])
    assert out["unsafe_rate"] == 0.5 and out["risk_rate"] == 0.0
