"""r_x, the post-specificity reward: the part of r_e that depends on the seeker post.

Not in the paper. A rewrite's empathy gain r_e = f_e(S, R̂) − f_e(S, R) can come from sentences
that would raise the score under any post: "I'm so sorry to hear that.", "Have you tried talking to
someone?". `partner-eval rewrites --context-check` measured this: scored under an unrelated seeker
post, every rewriter we trained keeps all of its gain (models/policy_rl/README.md, session 9), and
RL against r_e alone collapses onto such sentences (the 90-step H100 run, the 100-step s9a run).

r_x pays only for the gain that the rewrite's own post explains. With S' another seeker post,

    r_x = [f_e(S, R̂) − f_e(S, R)] − [f_e(S', R̂) − f_e(S', R)],

a difference in differences: a sentence that raises the total by the same amount under both posts
earns 0; one that raises it only under its own post (it answers what the seeker wrote) earns its
whole gain. With the paper's r_e beside it (``w_empathy``), the total pays a post-specific gain
``1 + w_context`` times and a generic one once. The classifier must see context for this to work:
the shipped one does (the probe in models/epitome/README.md), a response-only one gives r_x = 0.
Measured in session 10 (models/policy_rl/README.md, four runs on an H100): at weights 1 and 2, r_x
stayed near 0 and never rose, and the agents collapsed onto generic questions as the control did.
The shipped classifier's context sensitivity is too weak to steer a policy by, so r_x is off by
default; it is here for a classifier that holds added sentences to the post.

S' comes from the same batch: the distinct seeker posts of the batch, in order of first appearance,
each take the next one's (the last takes the first's). All samples of one state share the same S',
so a leave-one-out baseline over those samples compares them under the same unrelated post. A batch
with a single distinct post borrows the latest post of earlier batches that differs from its own; before
any such post was seen, r_x is 0. The two latest distinct posts are the reward's state (``state_dict``),
so a resumed run scores as an unbroken one.
"""

from __future__ import annotations

from .edit import Scores, check_batch


def unrelated_posts(seekers: list[str], earlier: list[str] = ()) -> list[str | None]:
    """For each sample, another seeker post: the batch's distinct posts rotated by one; for a batch of one
    distinct post, the first of ``earlier`` that differs from it; else None."""
    distinct = list(dict.fromkeys(seekers))
    if len(distinct) > 1:
        nxt = {p: distinct[(k + 1) % len(distinct)] for k, p in enumerate(distinct)}
        return [nxt[s] for s in seekers]
    other = next((p for p in earlier if distinct and p != distinct[0]), None)
    return [other] * len(seekers)


class OwnMinusUnrelated:
    """A reward that compares each sample under its own seeker post and under another (``unrelated_posts``):
    subclasses give ``parts`` -> (own, unrelated) per sample, and call ``unrelated`` for the other posts;
    the reward is own - unrelated. The two latest distinct posts are the state, for checkpoints."""

    def __init__(self):
        self.recent: list[str] = []   # the two latest distinct seeker posts, newest first

    def unrelated(self, seekers: list[str]) -> list[str | None]:
        """The other post of each sample (None where there is none yet); remembers this batch's posts."""
        others = unrelated_posts(list(seekers), self.recent)
        self.recent = list(dict.fromkeys(list(reversed(seekers)) + self.recent))[:2]
        return others

    def parts(self, seekers, originals, rewrites) -> tuple[list[float], list[float]]:
        raise NotImplementedError

    def __call__(self, seekers, originals, rewrites, edits=None) -> Scores:
        check_batch(seekers, originals, rewrites, edits)
        own, unrelated = self.parts(seekers, originals, rewrites)
        return Scores((a - b for a, b in zip(own, unrelated)), {f"{self.name}_unrelated": unrelated})

    def state_dict(self) -> dict:
        return {"recent": list(self.recent)}

    def load_state_dict(self, state: dict) -> None:
        self.recent = list(state.get("recent", []))[:2]


class ContextReward(OwnMinusUnrelated):
    """r_x for a batch; shares the ``EmpathyReward`` (scorer, cache, mechanism weights) of r_e."""

    name = "context"

    def __init__(self, empathy):
        super().__init__()
        self.empathy = empathy

    def parts(self, seekers, originals, rewrites) -> tuple[list[float], list[float]]:
        """(gain under the own post, gain under the unrelated post) per sample; a sample with no unrelated
        post gets its own gain for both (so r_x = 0)."""
        check_batch(seekers, originals, rewrites)
        before, after = self.empathy.parts(seekers, originals, rewrites)  # r_e's totals: cached when r_e is on
        own = [a - b for b, a in zip(before, after)]
        others = self.unrelated(seekers)
        idx = [i for i, o in enumerate(others) if o is not None]
        other_before, other_after = self.empathy.parts([others[i] for i in idx], [originals[i] for i in idx],
                                                       [rewrites[i] for i in idx])
        unrelated = list(own)
        for k, i in enumerate(idx):
            unrelated[i] = other_after[k] - other_before[k]
        return own, unrelated
