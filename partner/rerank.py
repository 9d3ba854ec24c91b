"""Reward-ranked decoding: several episodes per input, keep the one the training reward prefers.

With ``rewrite.candidates`` N > 1, ``partner-rewrite --method partner|warmstart`` runs the policy's
greedy episode and N − 1 sampled ones (positions and sentences sampled, top-p ``policy.top_p``;
every candidate sentence passes the sentence guard) and keeps the candidate with the highest
training reward, ``RewardStack`` with the ``rewards.*`` weights: change in empathy, fluency,
coherence and mutual information, as in RL. With ``rewrite.keep_original`` (default on), the
unchanged response is a candidate too, and an edit must beat it by ``rewrite.min_gain`` (under
``rank_by reward`` 0.5 by default: with the paper's weights, in effect an empathy gain; fluency,
coherence and MI differences between candidates are tenths; under ``rank_by preference``, partner-rewrite's
default, 0 logits). A rewrite is then never worse than the input under the reward, an
input that is already empathic is left alone rather than edited down, and no sentence is added
that gains nothing.

This is best-of-N sampling (rejection sampling against a reward model), a decoding method, not a
change to the policy: N = 1 is the policy's own greedy episode, which is what the paper evaluates.
The reranker and ``partner-eval`` use the same classifier by default, so part of the measured
gain is selection against the evaluator itself. Check it by scoring the rewrites with a classifier
the reranker never saw: ``partner-eval rewrites ... --scorer OTHER_CLASSIFIER``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rewards.edit import EditInfo

ORIGINAL = "original"
GREEDY = "greedy"
SAMPLED = "sampled"
RETRIEVAL = "retrieval"  # a human-written EPITOME-train sentence (partner.retrieval), inserted
ZEROSHOT = "zeroshot"    # the instruction-tuned LM's sentence (rewriters.ZeroShotRewriter), inserted
TEMPLATE = "template"    # the fixed sentence rewrite.template (the stock-sentence baseline), inserted


@dataclass
class Candidate:
    text: str
    edits: list            # what the rewriter returns for this candidate
    edit_info: object      # rewards.edit.EditInfo the reward sees (its last real edit, or a stop)
    kind: str              # ORIGINAL | GREEDY | SAMPLED | RETRIEVAL | ZEROSHOT: the candidate's source


def insertion_info(response: str, edits: list[dict]):
    """The EditInfo of one inserted sentence (a retrieval or zero-shot candidate), for rewards that read it."""
    from core.text import split_sentences
    from rewards.edit import EditInfo

    if not edits:
        return stop_info()
    e = edits[0]
    sents = split_sentences(response)
    pos = int(e["position"])
    return EditInfo(candidate=e["sentence"], window=sents[max(0, pos - 1):pos + 1], replaced=None, action="insert",
                    position=pos)


def tagged(c: Candidate) -> list[dict]:
    """The chosen candidate's edits, each saying where its sentence came from."""
    return [{**e, "source": c.kind} for e in c.edits]


@dataclass
class Selection:
    chosen: list[Candidate]
    rewards: list[float]          # the chosen candidate's total reward, per input
    counts: Counter = field(default_factory=Counter)  # how often each kind won


def stop_info():
    """The EditInfo of leaving the response as it is."""
    return EditInfo(candidate="", window=[], replaced=None, action="stop")


def select(reward_fn, seekers: list[str], originals: list[str], candidates: list[list[Candidate]],
           min_gain: float = 0.0) -> Selection:
    """Score every candidate of every input with ``reward_fn`` (one batched call; texts that repeat
    within an input are scored once) and keep the best per input; ties go to the earlier candidate.

    ``min_gain``: an edited candidate must beat the input's ORIGINAL candidate (if it has one) by at
    least this much, else the original is kept: an edit that gains no empathy is not worth its risk."""
    if not (len(seekers) == len(originals) == len(candidates)):
        raise ValueError(f"{len(seekers)} seekers, {len(originals)} originals, {len(candidates)} candidate lists")
    flat: list[tuple[int, int]] = []
    for i, cands in enumerate(candidates):
        if not cands:
            raise ValueError(f"input {i} has no candidates")
        seen: set[str] = set()
        for j, c in enumerate(cands):
            if c.text not in seen:
                seen.add(c.text)
                flat.append((i, j))
    out = reward_fn([seekers[i] for i, _ in flat], [originals[i] for i, _ in flat],
                    [candidates[i][j].text for i, j in flat], [candidates[i][j].edit_info for i, j in flat])
    totals = out.total if hasattr(out, "total") else list(out)
    best: dict[int, tuple[float, int]] = {}
    for (i, j), r in zip(flat, totals):
        if i not in best or r > best[i][0]:
            best[i] = (float(r), j)
    if min_gain:
        for (i, j), r in zip(flat, totals):
            if candidates[i][j].kind == ORIGINAL and best[i][1] != j and best[i][0] < float(r) + min_gain:
                best[i] = (float(r), j)
    chosen = [candidates[i][best[i][1]] for i in range(len(candidates))]
    return Selection(chosen, [best[i][0] for i in range(len(candidates))], Counter(c.kind for c in chosen))
