"""r_n, the novelty penalty: minus the share of recent episodes that wrote the same new sentence.

Not in the paper. RL against an EPITOME classifier finds its cheapest cue and writes it
everywhere: the 90-step H100 run (``configs/gpu.yaml``) put "I'm so sorry to hear that." into 90 %
of its edits, and that one fixed sentence alone gains as much as the agent (``partner-eval stock``;
docs/experiments.md). No per-sample term sees this, because each rewrite on its own is fine.
r_n looks across episodes: a rewrite's new sentence costs the share of the last ``window`` episodes
(the current batch included) that also wrote it. A sentence every episode writes costs 1 (times
``w_novelty``); one written once in 256 episodes costs 0.004. So RL can still use a good stock
sentence, but only where it pays more than the penalty its popularity brings.

"New sentences" are those of the rewrite that are not the original's
(``rewards.sentence_guard.new_sentence_indices``). Sentences are compared after lower-casing and dropping punctuation
("I'm so sorry to hear that!" is "I'm so sorry to hear that."), nothing fuzzier: a reworded
sentence is a different sentence. A rewrite with several new sentences pays for its most common
one; a stop or a deletion pays nothing.

The penalty has state (the recent episodes), so it is stateful across calls: ``state_dict`` /
``load_state_dict`` let the RL trainer checkpoint it, so a resumed run scores exactly as an unbroken
one. Under data-parallel training each process keeps the memory of its own episodes.
"""

from __future__ import annotations

from collections import Counter, deque

from .edit import check_batch
from .sentence_guard import new_sentence_indices, words


def sentence_key(sentence: str) -> str:
    """The form sentences are compared in: lower case, words only."""
    return " ".join(words(sentence))


def new_sentences(original: str, rewrite: str) -> list[str]:
    """The rewrite's sentences that are not the original's, as keys."""
    sents, new = new_sentence_indices(original, rewrite)
    return [k for k in (sentence_key(sents[i]) for i in new) if k]


class NoveltyPenalty:
    """r_n for a batch: minus the share of the last ``window`` episodes (this batch included) that wrote the
    rewrite's most common new sentence; 0 for a rewrite with no new sentence."""

    name = "novelty"

    def __init__(self, window: int = 256):
        if window < 1:
            raise ValueError(f"novelty window must be at least 1 episode, got {window}")
        self.window = int(window)
        self.memory: deque[tuple[str, ...]] = deque(maxlen=self.window)

    def __call__(self, seekers, originals, rewrites, edits=None) -> list[float]:
        check_batch(seekers, originals, rewrites, edits)
        batch = [tuple(dict.fromkeys(new_sentences(o, r))) for o, r in zip(originals, rewrites)]
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
        key = sentence_key(sentence)
        return sum(key in ep for ep in self.memory) / len(self.memory) if self.memory else 0.0

    def state_dict(self) -> dict:
        return {"window": self.window, "memory": [list(ep) for ep in self.memory]}

    def load_state_dict(self, state: dict) -> None:
        if int(state.get("words", 0)):  # a checkpoint of the retired rewards.novelty_words option
            raise ValueError(f"novelty memory was kept comparing the first {state['words']} words of sentences "
                             "(rewards.novelty_words, retired); resume it with the code of commit 3e68535")
        self.memory = deque((tuple(ep) for ep in state.get("memory", [])), maxlen=self.window)
