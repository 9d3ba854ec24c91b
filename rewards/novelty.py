"""r_n, the novelty penalty: minus the share of recent episodes that wrote the same new sentence.

Not in the paper. RL against an EPITOME classifier finds its cheapest cue and writes it
everywhere: the 90-step H100 run (``configs/gpu.yaml``) put "I'm so sorry to hear that." into 90 %
of its edits, and that one fixed sentence alone gains as much as the agent (``partner-eval stock``;
docs/experiments.md). No per-sample term sees this, because each rewrite on its own is fine.
r_n looks across episodes: a rewrite's new sentence costs the share of the last ``window`` episodes
(the current batch included) that also wrote it. A sentence every episode writes costs 1 (times
``w_novelty``); one written once in 256 episodes costs 0.004. So RL can still use a good stock
sentence, but only where it pays more than the penalty its popularity brings.

"New sentences" are those of the rewrite that are not the original's (as r_g counts them,
``rewards.sentence_guard``). Sentences are compared after lower-casing and dropping punctuation
("I'm so sorry to hear that!" is "I'm so sorry to hear that."), nothing fuzzier: a reworded
sentence is a different sentence. With ``words=k`` only a sentence's first k words are compared, so
one opening written with ever-new endings ("Have you tried ...?", "Have you talked ...?": the
question collapse in docs/experiments.md) counts as one sentence; k = 0 compares whole sentences. A rewrite
with several new sentences pays for its most common one; a stop or a deletion pays nothing.

The penalty has state (the recent episodes), so it is stateful across calls: ``state_dict`` /
``load_state_dict`` let the RL trainer checkpoint it, so a resumed run scores exactly as an unbroken
one. Under data-parallel training each process keeps the memory of its own episodes.
"""

from __future__ import annotations

from collections import Counter, deque

from .edit import check_batch
from .sentence_guard import new_sentence_indices, words


def sentence_key(sentence: str, n_words: int = 0) -> str:
    """The form sentences are compared in: lower case, words only; the first ``n_words`` of them if > 0."""
    w = words(sentence)
    return " ".join(w[:n_words] if n_words > 0 else w)


def new_sentences(original: str, rewrite: str, n_words: int = 0) -> list[str]:
    """The rewrite's sentences that are not the original's (as r_g counts them), as keys."""
    sents, new = new_sentence_indices(original, rewrite)
    return [k for k in (sentence_key(sents[i], n_words) for i in new) if k]


class NoveltyPenalty:
    """r_n for a batch: minus the share of the last ``window`` episodes (this batch included) that wrote the
    rewrite's most common new sentence (or opening: ``words``); 0 for a rewrite with no new sentence."""

    name = "novelty"

    def __init__(self, window: int = 256, words: int = 0):
        if window < 1:
            raise ValueError(f"novelty window must be at least 1 episode, got {window}")
        if words < 0:
            raise ValueError(f"novelty words must be 0 (whole sentences) or more, got {words}")
        self.window = int(window)
        self.words = int(words)
        self.memory: deque[tuple[str, ...]] = deque(maxlen=self.window)

    def __call__(self, seekers, originals, rewrites, edits=None) -> list[float]:
        check_batch(seekers, originals, rewrites, edits)
        batch = [tuple(dict.fromkeys(new_sentences(o, r, self.words))) for o, r in zip(originals, rewrites)]
        # The batch counts in full even when it is larger than the window; older episodes fill the rest.
        keep = self.window - len(batch)
        recent = list(self.memory)[-keep:] if keep > 0 else []
        episodes = recent + batch
        counts = Counter(key for ep in episodes for key in ep)
        n = len(episodes)
        out = [-max((counts[k] / n for k in ep), default=0.0) for ep in batch]
        self.memory.extend(batch)
        return out

    def share(self, sentence: str) -> float:
        """The share of the remembered episodes that wrote ``sentence`` (for logs and tests)."""
        key = sentence_key(sentence, self.words)
        return sum(key in ep for ep in self.memory) / len(self.memory) if self.memory else 0.0

    def state_dict(self) -> dict:
        return {"window": self.window, "words": self.words, "memory": [list(ep) for ep in self.memory]}

    def load_state_dict(self, state: dict) -> None:
        if int(state.get("words", 0)) != self.words:
            raise ValueError(f"novelty memory was kept with words={state.get('words', 0)}, "
                             f"this run compares words={self.words}: resume with the same rewards.novelty_words")
        self.memory = deque((tuple(ep) for ep in state.get("memory", [])), maxlen=self.window)
