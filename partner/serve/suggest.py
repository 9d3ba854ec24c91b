"""Sentence-level suggestions for a supporter's draft: the rewriter's candidates, ranked by the preference model.

For one (seeker post, draft reply):

1. Every source proposes single edits against the draft's sentences (``core.text.split_sentences``):
   ``insert`` a sentence before draft sentence ``position`` (``position`` = number of sentences: at the end)
   or ``replace`` draft sentence ``position``. Sources are the shipped rewriter's candidate pool: the
   policy's episodes (greedy and sampled; each of an episode's edits becomes its own proposal, its position
   mapped back onto the draft), the nearest high-empathy EPITOME-train sentences (``partner.retrieval``) and
   the zero-shot sentence (``partner.rewriters.ZeroShotRewriter``).
2. The sentence guard (``rewards.sentence_guard.SentenceGuard``, as in ``partner-rewrite``) rejects risk words, unsafe
   topics, copies of the seeker post or of the draft, and loops. Deletions are never suggested.
3. The preference model scores the draft and the draft with each edit applied, alone; the gain is the
   difference (Bradley-Terry logits, so sigmoid(gain) is the predicted chance a reader prefers the edited
   reply). Only edits that gain more than ``min_gain`` are kept, best first, at most ``k``, one per sentence:
   no suggestion where none beats the draft. A caller may ask only some sources: the page asks the quick one
   (retrieval) first, so the first suggestions come while the policy and the zero-shot model still write.
4. The EPITOME classifier scores each kept sentence (given the seeker post) for the mechanism it carries,
   and the reply before and after for the mechanisms whose level the edit raises.

The person decides; nothing here changes the draft on its own.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import asdict, dataclass, field

from core.text import join_sentences, split_sentences

log = logging.getLogger(__name__)

MECHANISM_NAMES = {"ER": "emotional reaction", "IP": "interpretation", "EX": "exploration"}


@dataclass
class Proposal:
    action: str      # insert | replace
    position: int    # draft sentence index (insert: before it; len(draft) = at the end)
    sentence: str
    source: str      # policy | retrieval | zeroshot


@dataclass
class Suggestion:
    id: str
    action: str
    position: int
    sentence: str
    sources: list[str]
    replaced: str | None       # the draft sentence a replace removes
    gain: float                # preference score of the edited reply minus the draft's
    win_prob: float            # sigmoid(gain)
    mechanism: str | None      # the EPITOME mechanism the sentence carries most strongly (None: none)
    sentence_levels: dict      # EPITOME levels of the sentence alone, given the seeker post
    adds: list[str]            # mechanisms whose level in the whole reply the edit raises
    reply: str                 # the draft with this edit alone applied

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    request_id: str
    draft_sentences: list[str]
    draft_spans: list[list[int]] | None               # [start, end) of each sentence in the draft (None: not found)
    draft_score: float
    suggestions: list[Suggestion]
    considered: int                                   # distinct proposals that passed the guard
    rejected: dict = field(default_factory=dict)      # guard reason -> count
    seconds: dict = field(default_factory=dict)       # time per stage


def apply_one(draft_sentences: list[str], action: str, position: int, sentence: str) -> str:
    """The draft with one edit applied (draft coordinates), sentences joined by spaces."""
    sents = list(draft_sentences)
    if action == "insert":
        sents.insert(max(0, min(position, len(sents))), sentence)
    elif action == "replace" and 0 <= position < len(sents):
        sents[position] = sentence
    else:
        raise ValueError(f"cannot {action} at {position} in a draft of {len(sents)} sentences")
    return join_sentences(sents)


def sentence_spans(text: str, sentences: list[str]) -> list[list[int]] | None:
    """[start, end) of each sentence in ``text``, found in order, so an edit can keep the rest of the text as the
    person wrote it (line breaks included); None if a sentence is not found verbatim."""
    spans, at = [], 0
    for s in sentences:
        i = text.find(s, at)
        if i < 0:
            return None
        spans.append([i, i + len(s)])
        at = i + len(s)
    return spans


def to_draft_edits(n_draft: int, edits: list[dict]) -> list[tuple[str, int, str]]:
    """(action, draft position, sentence) for each written sentence of an episode's ``edits``, whose positions
    count the response as it stood before each edit (``partner.rewriters``). A replace of a sentence that an
    earlier edit inserted (or replaced), and deletions, give nothing; a deletion still shifts the later positions,
    so a sentence written after a deleted one goes before it in the draft."""
    origin: list[int | None] = list(range(n_draft))  # draft index of each current sentence, None if inserted
    replaced: set[int] = set()
    out = []
    for e in edits:
        pos, sentence = int(e["position"]), (e.get("sentence") or "").strip()
        if e["action"] == "insert" and sentence:
            p = max(0, min(pos, len(origin)))
            out.append(("insert", sum(o is not None for o in origin[:p]), sentence))
            origin.insert(p, None)
        elif e["action"] == "replace" and 0 <= pos < len(origin):
            if not sentence:
                origin.pop(pos)
            elif origin[pos] is not None and origin[pos] not in replaced:
                out.append(("replace", origin[pos], sentence))
                replaced.add(origin[pos])
    return out


class PolicySource:
    """The shipped policy's episodes: one greedy and ``samples`` sampled (top-p), batched in one call each."""

    name = "policy"
    quick = False  # a few seconds of generation on a CPU

    def __init__(self, policy, cfg, samples: int = 3, greedy: bool = True, guard=None):
        self.policy, self.cfg, self.samples, self.greedy, self.guard = policy, cfg, int(samples), greedy, guard

    @classmethod
    def load(cls, path, policy_cfg, samples: int = 3, greedy: bool = True, guard=None, device=None):
        from partner.policy import PartnerPolicy
        from partner.rewriters import _trained_context

        cfg = _trained_context(path, policy_cfg)
        return cls(PartnerPolicy.load(str(path), cfg=cfg, device=device), cfg, samples, greedy, guard)

    def propose(self, seeker: str, draft: str, seed: int = 0) -> list[Proposal]:
        import torch

        from partner.episode import run_episodes
        from partner.rewriters import PolicyRewriter

        n = len(split_sentences(draft))
        gen = torch.Generator().manual_seed(seed)
        episodes = []
        if self.greedy:
            episodes += run_episodes(self.policy, [seeker], [draft], self.cfg, sample=False, guard=self.guard)
        if self.samples:
            episodes += run_episodes(self.policy, [seeker] * self.samples, [draft] * self.samples, self.cfg,
                                     sample=True, generator=gen, guard=self.guard)
        return [Proposal(a, p, s, self.name) for ep in episodes
                for a, p, s in to_draft_edits(n, PolicyRewriter._edits_json(ep.edits))]


class RetrievalSource:
    """The ``n`` high-empathy EPITOME-train sentences nearest the seeker post, inserted at the start and at the end."""

    name = "retrieval"
    quick = True  # one MiniLM embedding and a dot product

    def __init__(self, index, n: int = 3, places: tuple[str, ...] = ("start", "end")):
        self.index, self.n, self.places = index, int(n), places

    def propose(self, seeker: str, draft: str, seed: int = 0) -> list[Proposal]:
        sents = split_sentences(draft)
        [found] = self.index.nearest_k([seeker], self.n, exclude=[sents])
        return [Proposal("insert", 0 if at == "start" else len(sents), s, self.name) for s in found for at in self.places]


class ZeroShotSource:
    """The instruction-tuned backbone's one sentence (``ZeroShotRewriter``), inserted where it puts it."""

    name = "zeroshot"
    quick = False

    def __init__(self, rewriter):
        self.rewriter = rewriter

    def propose(self, seeker: str, draft: str, seed: int = 0) -> list[Proposal]:
        n = len(split_sentences(draft))
        [(_, edits)] = self.rewriter.rewrite([seeker], [draft], seed=seed)
        return [Proposal(a, p, s, self.name) for a, p, s in to_draft_edits(n, edits)]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class Suggester:
    """Proposals from ``sources``, through ``guard``, ranked by ``preference.score``, described by ``scorer``.

    ``preference``: anything with ``score(seeker_posts, replies) -> list[float]`` (``classifiers.preference.
    PreferenceModel``); ``scorer``: anything with ``score(seekers, responses, rationales=False)`` returning
    objects with ``levels`` (``classifiers.scorer.EmpathyScorer``), or None to leave mechanisms out."""

    def __init__(self, sources: list, preference, scorer=None, guard=None, k: int = 3, min_gain: float = 0.0):
        if not sources:
            raise ValueError("a suggester needs at least one candidate source")
        self.sources, self.preference, self.scorer, self.guard = list(sources), preference, scorer, guard
        self.k, self.min_gain = int(k), float(min_gain)

    def describe(self) -> dict:
        return {"sources": [s.name for s in self.sources],
                "quick": [s.name for s in self.sources if getattr(s, "quick", False)], "k": self.k,
                "min_gain": self.min_gain, "guard": self.guard is not None and self.guard.active}

    def suggest(self, seeker: str, draft: str, k: int | None = None, seed: int = 0,
                sources: list[str] | None = None) -> Result:
        """``sources``: the names of the sources to ask (default all): the page asks the quick ones first, so the
        first suggestions come in a second, then all of them."""
        k = self.k if k is None else int(k)
        names = [s.name for s in self.sources]
        unknown = set(sources or ()) - set(names)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; this suggester has {', '.join(names)}")
        sents = split_sentences(draft)
        seconds: dict[str, float] = {}
        proposals: list[Proposal] = []
        for src in self.sources:
            if sources is not None and src.name not in sources:
                continue
            t = time.perf_counter()
            proposals += src.propose(seeker, draft, seed=seed)
            seconds[src.name] = round(time.perf_counter() - t, 3)

        rejected: dict[str, int] = {}
        kept: dict[tuple, Proposal] = {}
        sources_of: dict[tuple, list[str]] = {}
        in_draft = {_norm(s) for s in sents}
        for p in proposals:
            key = (p.action, p.position, _norm(p.sentence))
            if key in kept:
                if p.source not in sources_of[key]:
                    sources_of[key].append(p.source)
                continue
            if not p.sentence.strip() or _norm(p.sentence) in in_draft:
                continue  # nothing new: the draft already says it
            others = [s for i, s in enumerate(sents) if not (p.action == "replace" and i == p.position)]
            why = self.guard.reason(seeker, p.sentence, others) if self.guard is not None else None
            if why is not None:
                rejected[why] = rejected.get(why, 0) + 1
                continue
            kept[key], sources_of[key] = p, [p.source]

        cands = list(kept.items())
        replies = [apply_one(sents, p.action, p.position, p.sentence) for _, p in cands]
        t = time.perf_counter()
        plain = join_sentences(sents)  # the draft as the edited replies are written: a fair comparison
        scores = [float(x) for x in self.preference.score([seeker] * (len(replies) + 1), [plain] + replies)]
        seconds["preference"] = round(time.perf_counter() - t, 3)
        base = scores[0]
        ranked = sorted(range(len(cands)), key=lambda i: -scores[i + 1])
        chosen, seen = [], set()
        for i in ranked:
            gain = scores[i + 1] - base
            if len(chosen) >= k or not gain > self.min_gain:
                break
            if _norm(cands[i][1].sentence) in seen:
                continue  # the same sentence elsewhere, ranked lower: one place per sentence
            seen.add(_norm(cands[i][1].sentence))
            chosen.append((i, gain))

        described = self._mechanisms(seeker, plain, [cands[i][1].sentence for i, _ in chosen],
                                     [replies[i] for i, _ in chosen], seconds)
        out = []
        for (i, gain), (mech, levels, adds) in zip(chosen, described):
            key, p = cands[i]
            out.append(Suggestion(
                id=uuid.uuid4().hex[:12], action=p.action, position=p.position, sentence=p.sentence,
                sources=sources_of[key], replaced=sents[p.position] if p.action == "replace" else None,
                gain=round(gain, 4), win_prob=round(1 / (1 + math.exp(-gain)), 4), mechanism=mech,
                sentence_levels=levels, adds=adds, reply=replies[i]))
        return Result(uuid.uuid4().hex, sents, sentence_spans(draft, sents), round(base, 4), out, len(cands), rejected,
                      seconds)

    def _mechanisms(self, seeker, draft, sentences, replies, seconds):
        """(strongest mechanism of the sentence, its levels, mechanisms the reply gains) per suggestion."""
        if self.scorer is None or not sentences:
            return [(None, {}, []) for _ in sentences]
        t = time.perf_counter()
        texts = [draft] + list(sentences) + list(replies)
        res = self.scorer.score([seeker] * len(texts), texts, rationales=False)
        seconds["epitome"] = round(time.perf_counter() - t, 3)
        before, alone, after = res[0], res[1:1 + len(sentences)], res[1 + len(sentences):]
        out = []
        for a, r in zip(alone, after):
            levels = dict(a.levels)
            best = max(levels, key=lambda m: (levels[m], a.probs[m][levels[m]] if a.probs else 0))
            out.append((best if levels[best] > 0 else None, levels,
                        [m for m in r.levels if r.levels[m] > before.levels.get(m, 0)]))
        return out


SOURCES = ("policy", "retrieval", "zeroshot")


def build_suggester(cfg, sources=SOURCES, preference: str | None = None, scorer: str | None = None,
                    model: str | None = None, samples: int = 3, k: int = 3, min_gain: float = 0.0,
                    device=None) -> Suggester:
    """The shipped models behind a Suggester: ``sources`` from the policy (``model``, default the shipped agent),
    the retrieval index and the zero-shot backbone (``cfg.rewrite``, ``cfg.policy``); the preference model at
    ``preference`` (default ``models/preference``); the EPITOME classifier at ``scorer`` (default the shipped one;
    "none" leaves mechanisms out)."""
    from partner.config import SHIPPED_MODELS
    from partner.rewriters import MethodUnavailable, ZeroShotRewriter, policy_path
    from rewards.sentence_guard import SentenceGuard

    unknown = set(sources) - set(SOURCES)
    if unknown or not sources:
        raise ValueError(f"unknown or no sources {sorted(unknown)}; choose from {', '.join(SOURCES)}")
    try:
        from classifiers.preference import PreferenceModel
    except ImportError as exc:
        raise MethodUnavailable(f"the preference model's code (classifiers/preference.py) is not here ({exc}); "
                                "partner-serve ranks suggestions with it") from exc
    pref = PreferenceModel.from_pretrained(preference or str(SHIPPED_MODELS / "preference"), device=device)
    rc = cfg.rewrite
    guard = SentenceGuard.from_config(rc)
    built = []
    for name in sources:
        if name == "policy":
            path = policy_path("partner", model)
            if not path.exists():
                raise MethodUnavailable(f"no trained policy at {path}")
            built.append(PolicySource.load(path, cfg.policy, samples=samples, guard=guard, device=device))
        elif name == "retrieval":
            from partner.retrieval import RetrievalIndex

            index = RetrievalIndex.build_or_load(cfg.data_path(), embedder=rc.retrieval_embedder,
                                                 min_words=rc.retrieval_min_words, max_words=rc.retrieval_max_words,
                                                 device=device)
            built.append(RetrievalSource(index, n=rc.pool_retrieved))
        else:
            built.append(ZeroShotSource(ZeroShotRewriter(
                rc.zeroshot_backbone or cfg.policy.backbone, decoding="greedy",
                max_new_tokens=rc.zeroshot_max_new_tokens, max_input_tokens=rc.max_input_tokens, at=rc.insert_at,
                device=device, guard=guard)))
    split_sentences("Load the sentence splitter now. Its first call takes seconds.")
    epitome = None
    if (scorer or "").lower() != "none":
        from classifiers.scorer import EmpathyScorer

        epitome = EmpathyScorer.load(scorer or None, device=device)
    return Suggester(built, pref, epitome, guard=guard, k=k, min_gain=min_gain)
