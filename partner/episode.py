"""The rewriting episode: how the policy walks over a response (the paper leaves this open, §1.1).

For each response (batched over responses):

1. Split it into sentences; the first window starts at j = 0. An empty response has one empty
   window, where only "insert into slot 0" and stop are valid.
2. At every step the policy acts once on the window R[j : j+k]: it picks a position class
   (insert / replace / stop) and writes a sentence, and the edit is applied to the response.
3. The next window starts right after the current window's content, as edited: j += len(window)
   + 1 after a non-empty insertion, - 1 after a deletion (replacement by the empty sentence), + 0
   otherwise. So every original sentence is seen in exactly one window, an inserted sentence is
   never edited again in the same episode, and the last window's last insert slot covers "append
   at the end".
4. STOP means "nothing to do in this window" and moves on to the next one. The episode ends when
   the windows run out or after ``cfg.max_edits`` non-stop edits, whichever comes first.

So a response of n sentences takes at most ceil(n / k) (+ deletions) steps, and at most
``max_edits`` edits. Every step, stop steps included, is an action with log-probabilities, kept
in ``Episode.steps`` for the policy gradient; the reward is meant to be computed once on the final
text (a terminal reward, so the discount does not matter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.text import split_sentences

from . import edits as E


@dataclass
class Step:
    index: int                 # response index in the batch
    seeker: str
    window: list[str]          # the window before the edit (the state)
    window_start: int
    position: int              # position class
    sentence_ids: torch.Tensor
    sentence: str              # the decoded candidate (raw)
    logp_position: float
    logp_sentence: float
    edit: E.Edit

    def edit_info(self):
        """This step as a ``rewards.edit.EditInfo``."""
        return E.to_edit_info(self.window, self.edit)


@dataclass
class Episode:
    seeker: str
    original: str
    sentences: list[str]
    steps: list[Step] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The original response with this episode's edits made in place (``partner.edits.render``)."""
        return E.render(self.original, self.edits)

    @property
    def edits(self) -> list[E.Edit]:
        """The edits that changed something (stop steps left out)."""
        return [s.edit for s in self.steps if s.edit.action != E.STOP]

    def edit_infos(self) -> list:
        return [s.edit_info() for s in self.steps if s.edit.action != E.STOP]

    def reward_edit(self):
        """The ``rewards.edit.EditInfo`` the reward sees for this episode: its last real edit, or a stop.
        Training and reward-ranked decoding both score an episode with it."""
        real = [s for s in self.steps if s.edit.action != E.STOP]
        return (real[-1] if real else self.steps[0]).edit_info()


def run_episodes(policy, seekers: list[str], responses: list[str], cfg=None, sample: bool = True,
                 generator: torch.Generator | None = None, sample_sentence: bool | None = None,
                 top_p: float | None = None, temperature: float | None = None, guard=None,
                 guard_retries: int = 0) -> list[Episode]:
    """Run the episode above for every (seeker, response), acting on all live responses at once.

    ``guard`` (a ``partner.guards.SentenceGuard``, rewriting only): an insert or replace whose
    sentence it rejects becomes a stop step in that window, unless ``guard_retries`` > 0: then the
    policy writes up to that many new sentences for the same position, sampled (top-p, with
    ``generator``), and the first one the guard passes is used; stop only if all are rejected.
    """
    if len(seekers) != len(responses):
        raise ValueError("seekers and responses must have the same length")
    cfg = cfg or policy.cfg
    k = policy.k
    max_edits = int(cfg.max_edits)
    episodes = [Episode(s, r, split_sentences(r)) for s, r in zip(seekers, responses)]
    starts = [0] * len(episodes)
    n_edits = [0] * len(episodes)
    live = [True] * len(episodes)
    max_steps = [len(E.window_starts(len(ep.sentences), k)) + max_edits for ep in episodes]
    prefixes: dict = {}  # the seeker part of every state's prompt, computed once (policy.act's prefix_cache)
    while True:
        idx = [i for i, ep in enumerate(episodes) if live[i]]
        if not idx:
            break
        windows = [E.window_of(episodes[i].sentences, starts[i], k) for i in idx]
        seekers_now = [episodes[i].seeker for i in idx]
        acts = policy.act(seekers_now, windows, sample=sample, generator=generator,
                          sample_sentence=sample_sentence, top_p=top_p, temperature=temperature,
                          prefix_cache=prefixes)
        # per state: (position, sentence, sentence ids, logp position, logp sentence)
        chosen = [(int(acts.positions[b]), acts.sentences[b], acts.sentence_ids[b], float(acts.logp_position[b]),
                   float(acts.logp_sentence[b])) for b in range(len(idx))]
        if guard is not None:
            def rejected(b: int) -> bool:
                ep, (pos, sent) = episodes[idx[b]], chosen[b][:2]
                edit = E.apply_edit(ep.sentences, starts[idx[b]], k, pos, sent)[1]
                if edit.action == E.STOP or not edit.sentence:
                    return False
                others = E.other_sentences(ep.sentences, edit.position if edit.action == E.REPLACE else None)
                return guard.check(ep.seeker, edit.sentence, others) is not None

            todo = [b for b in range(len(idx)) if rejected(b)]
            for _ in range(guard_retries):
                if not todo:
                    break
                again = policy.act([seekers_now[b] for b in todo], [windows[b] for b in todo], sample=False,
                                   sample_sentence=True, generator=generator, top_p=top_p, temperature=temperature,
                                   positions=[chosen[b][0] for b in todo], prefix_cache=prefixes)
                for j, b in enumerate(todo):
                    chosen[b] = (chosen[b][0], again.sentences[j], again.sentence_ids[j], chosen[b][3],
                                 float(again.logp_sentence[j]))
                todo = [b for b in todo if rejected(b)]
            for b in todo:  # every try rejected: this window is a stop (the step keeps the raw sentence)
                chosen[b] = (E.stop_class(k), *chosen[b][1:])
        for b, i in enumerate(idx):
            ep, window = episodes[i], windows[b]
            pos, sent, sent_ids, lp_pos, lp_sent = chosen[b]
            sentences, edit = E.apply_edit(ep.sentences, starts[i], k, pos, sent)
            ep.sentences = sentences
            ep.steps.append(Step(i, ep.seeker, window, starts[i], pos, sent_ids, sent, lp_pos, lp_sent, edit))
            shift = len(window)
            if edit.action != E.STOP:
                n_edits[i] += 1
                if edit.action == E.INSERT and edit.sentence:
                    shift += 1
                elif edit.action == E.REPLACE and not edit.sentence:
                    shift -= 1
            starts[i] += shift
            if (n_edits[i] >= max_edits or starts[i] >= len(ep.sentences)
                    or len(ep.steps) >= max_steps[i]):
                live[i] = False
    return episodes


def rewrite_one_batch(policy, seekers: list[str], responses: list[str], cfg=None, sample: bool = False,
                      generator: torch.Generator | None = None, sample_sentence: bool | None = None,
                      guard=None, guard_retries: int = 0) -> list[tuple[str, list[E.Edit]]]:
    """(rewritten text, edits) per response. ``sample=False``: most likely position, greedy
    sentence (set ``sample_sentence=True`` to sample the sentence at the most likely position)."""
    eps = run_episodes(policy, seekers, responses, cfg, sample=sample, generator=generator,
                       sample_sentence=sample_sentence, guard=guard, guard_retries=guard_retries)
    return [(ep.text, ep.edits) for ep in eps]
