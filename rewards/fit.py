"""r_p, the post-fit reward: how much closer a rewrite's new sentences are to its seeker post than to another.

Not in the paper. Every reward built on the EPITOME classifier (r_e, and r_x from the same classifier)
is met by sentences that fit any post: "I'm so sorry to hear that.", "Have you tried talking to
someone?". RL drifts onto them (docs/experiments.md, "Rewriting and RL"), and r_x could not pull it
off, because the classifier's own context sensitivity is small. r_p measures fit with a sentence
embedder instead (all-MiniLM-L6-v2 by default), which sees the topic by construction. With S' another
seeker post of the batch (``rewards.context.unrelated_posts``: the batch's distinct posts rotated by
one; a batch of one post borrows an earlier post),

    r_p = mean over the rewrite's new sentences s of [cos(s, S) - cos(s, S')],

so a generic sentence, about as close to every post, earns about 0, and one that takes up what this
seeker wrote earns more. Two guards keep fit honest:
- a sentence that copies the seeker post (the sentence guard's seeker-copy check, at its
  ``max_seeker_copy``) earns 0: fit must not come from quoting the seeker back; nor does one that
  copies the response's other sentences (its ``max_response_copy``), which are close to
  the post already (the first r_p run, on the CPU, wrote such copies that the guard then rejected);
- a rewrite with no new sentence (a stop, a deletion) earns 0.

"New sentences" are the rewrite's sentences that are not the original's (``rewards.sentence_guard``), as for
r_g and r_n. The two latest distinct posts are the state (``state_dict``), so a resumed run scores
as an unbroken one. Off unless ``rewards.w_fit`` > 0; measured in docs/experiments.md,
"a post-fit reward".
"""

from __future__ import annotations

from .context import OwnMinusUnrelated
from .edit import check_batch
from .sentence_guard import SentenceGuard, new_sentence_indices


class PostFitReward(OwnMinusUnrelated):
    """r_p for a batch: mean over new sentences of cos(sentence, own post) - cos(sentence, another post)."""

    name = "fit"

    def __init__(self, embedder=None, name: str = "minilm", device: str | None = None,
                 guard: SentenceGuard | None = None, batch_size: int = 64):
        """``guard``: whose seeker-copy and response-copy checks zero a sentence (its defaults when None)."""
        super().__init__()
        self._embedder = embedder
        self.embedder_name = name
        self.device = device
        self.guard = guard or SentenceGuard()
        self.batch_size = int(batch_size)

    @property
    def embedder(self):
        if self._embedder is None:
            from core.registry import load_sentence_embedder

            self._embedder = load_sentence_embedder(self.embedder_name, self.device)
        return self._embedder

    def _encode(self, texts: list[str]):
        return self.embedder.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)

    def _copies(self, seeker: str, sents: list[str], i: int) -> bool:
        """Does sentence i copy the seeker post or the response's other sentences (the guard's checks)?"""
        return (self.guard.copies(seeker, sents[i])
                or self.guard.duplicates([s for j, s in enumerate(sents) if j != i], sents[i]))

    def parts(self, seekers, originals, rewrites) -> tuple[list[float], list[float]]:
        """(mean cos to the own post, mean cos to the unrelated post) per sample, over the new sentences
        that copy neither the seeker nor the response; (0, 0) for a sample with none of them or no unrelated post."""
        check_batch(seekers, originals, rewrites)
        seekers = list(seekers)
        others = self.unrelated(seekers)
        kept: list[list[str]] = []
        for seeker, original, rewrite, other in zip(seekers, originals, rewrites, others):
            sents, new = new_sentence_indices(original, rewrite)
            ok = [sents[i] for i in new if sents[i].strip() and not self._copies(seeker, sents, i)]
            kept.append(ok if other is not None else [])
        flat = [s for ok in kept for s in ok]
        own = [0.0] * len(seekers)
        unrelated = [0.0] * len(seekers)
        if not flat:
            return own, unrelated
        posts = list(dict.fromkeys(seekers + [o for o in others if o is not None]))
        vecs = self._encode(posts + flat)
        post_vec = dict(zip(posts, vecs[: len(posts)]))
        sent_vecs = vecs[len(posts):]
        k = 0
        for i, ok in enumerate(kept):
            if not ok:
                continue
            block = sent_vecs[k: k + len(ok)]
            k += len(ok)
            own[i] = float((block @ post_vec[seekers[i]]).mean())
            unrelated[i] = float((block @ post_vec[others[i]]).mean())
        return own, unrelated
