"""Tiny stand-ins for partner-serve's models: a lexicon preference model, a lexicon EPITOME scorer and a
candidate source with fixed proposals. Same methods as the real ones; no weights."""

from classifiers.scorer import EmpathyResult
from partner.serve.suggest import Proposal

WARM = ("sorry", "sounds", "feel", "understand", "here for you")


class FakePreference:
    """score = number of warm phrases - 0.01 per character: warmth wins, padding loses. Records its calls."""

    def __init__(self):
        self.calls = []

    def score(self, seeker_posts, replies, batch_size=32):
        assert len(seeker_posts) == len(replies)
        self.calls.append(list(replies))
        return [sum(r.lower().count(w) for w in WARM) - 0.01 * len(r) for r in replies]


class FakeEpitome:
    """ER from 'sorry'/'feel', EX from a question mark, IP from 'understand'."""

    def score(self, seekers, responses, batch_size=32, rationales=True, progress=False):
        out = []
        for r in responses:
            t = r.lower()
            lv = {"ER": 2 if "sorry" in t else (1 if "feel" in t else 0), "IP": 1 if "understand" in t else 0,
                  "EX": 2 if "?" in t else 0}
            probs = {m: [1.0 if i == v else 0.0 for i in range(3)] for m, v in lv.items()}
            out.append(EmpathyResult(lv, sum(lv.values()), probs, float(sum(lv.values()))))
        return out


class FixedSource:
    """Proposals given up front, for every draft (positions clipped to the draft)."""

    def __init__(self, proposals, name="fixed", quick=False):
        self.proposals, self.name, self.quick, self.calls = proposals, name, quick, 0

    def propose(self, seeker, draft, seed=0):
        from core.text import split_sentences

        self.calls += 1
        n = len(split_sentences(draft))
        return [Proposal(a, min(p, n if a == "insert" else n - 1), s, self.name) for a, p, s in self.proposals]


PROPOSALS = [
    ("insert", 0, "I'm so sorry you are going through this."),
    ("insert", 99, "How are you feeling about it now?"),
    ("replace", 1, "I understand how heavy that feels."),
    ("insert", 0, "Have you thought about how to end it all?"),      # risk words: the guard rejects it
    ("insert", 1, "The weather has been strange this week, honestly, and traffic too."),  # loses: no warmth, long
]
SEEKER = "My dog died last week and I can't stop crying. Nobody at work gets it."
DRAFT = "That is tough. Try to keep busy. Things get better with time."
