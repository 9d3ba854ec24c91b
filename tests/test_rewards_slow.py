"""What each reward means, on the real models (SmolLM2, the shipped coherence / reverse / EPITOME models)."""

from pathlib import Path

import pytest

from rewards.edit import EditInfo

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parent.parent / "models"


def _need(name: str, marker: str):
    if not (MODELS / name / marker).exists():
        pytest.skip(f"no shipped model in models/{name} (train it with partner-train and copy it there)")


@pytest.fixture(scope="module")
def lm():
    from rewards.lm import FrozenLM

    lm = FrozenLM("smollm2-135m", device="cpu")
    if (MODELS / "reverse" / "reverse.json").exists():
        lm.attach_reverse(MODELS / "reverse")
    return lm


def test_shuffled_word_order_lowers_fluency(lm):
    import random

    from rewards.fluency import FluencyReward

    texts = ["I am so sorry that you are going through this right now.",
             "It sounds like you have been feeling really alone since the move.",
             "Have you been able to talk to anyone about how you feel?"]
    rng = random.Random(0)
    shuffled = []
    for t in texts:
        words = t.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    reward = FluencyReward(lm)
    n = len(texts)
    ok, bad = reward(["s"] * n, ["o"] * n, texts), reward(["s"] * n, ["o"] * n, shuffled)
    for a, b in zip(ok, bad):
        assert 0 < b < a <= 1


def test_off_topic_sentence_lowers_coherence():
    _need("coherence", "coherence.json")
    from rewards.coherence import CoherenceReward

    window = ["My dog passed away last week and the house feels empty.",
              "I keep expecting him to greet me at the door."]
    reward = CoherenceReward(device="cpu")
    on = EditInfo("Losing a pet who was part of your family is heartbreaking.", window)
    off = EditInfo("The quarterly earnings report is due to the finance team on Friday.", window)
    a, b = reward(["s"] * 2, ["o"] * 2, ["r"] * 2, [on, off])
    assert a > b


def test_response_under_its_own_post_has_higher_mi(lm):
    _need("reverse", "reverse.json")
    from rewards.mi import MutualInformationReward

    seekers = ["My dog died last week and I can't stop crying. He was my best friend for 12 years.",
               "I failed my final exams again and my parents say I'm a disappointment.",
               "I moved to a new city for work and I don't know anyone here. The evenings are so lonely."]
    responses = ["I'm so sorry about your dog. Twelve years is a lifetime of friendship to grieve.",
                 "Failing exams doesn't make you a disappointment. Your parents' words must really hurt.",
                 "Moving somewhere new without friends is so isolating, especially in the evenings."]
    mi = MutualInformationReward(lm, lm, lambda_mi=0.5)
    n = len(seekers)
    own = mi(seekers, responses, responses)
    other = mi([seekers[(i + 1) % n] for i in range(n)], responses, responses)
    for a, b in zip(own, other):
        assert a > b
    # left padding with position ids: a sample's score does not depend on its (longer) neighbours
    alone = MutualInformationReward(lm, lm, lambda_mi=0.5)(seekers[1:2], responses[1:2], responses[1:2])
    assert alone[0] == pytest.approx(own[1], abs=1e-4)


def test_clearly_empathic_sentence_raises_empathy():
    _need("epitome", "config.json")
    from rewards.empathy import EmpathyReward

    try:
        reward = EmpathyReward(device="cpu")
        reward.scorer  # noqa: B018 - load now, so a missing model skips instead of failing
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(f"EPITOME scorer not available: {exc}")
    seekers = ["I lost my job today and I don't know how I'll pay rent. I feel like such a failure."]
    original = ["Lots of people lose jobs."]
    rewrite = ["I'm so sorry, that sounds really scary and I can understand why you feel like a failure. "
               "Lots of people lose jobs. How are you holding up?"]
    assert reward(seekers, original, rewrite)[0] > 0
