"""Warm-start data (paper §5.6): (seeker, response without an empathic sentence) -> (position, sentence).

Sources: the EPITOME Reddit **train** split only (dev and test stay out: they are for model
selection and evaluation), the ESConv pairs and the CounselChat answers. ESConv and CounselChat
are further split by the same seeded hash as EPITOME (grouped by conversation turn / question id)
and only their non-test part is used, so an evaluation on their test buckets stays clean.

How one sentence's empathy is judged: the EPITOME classifier scores the pair (seeker post,
that sentence alone) and a sentence with a predicted total ER + IP + EX >= ``sentence_threshold``
(2, the paper's "scores >= 2") is high-empathy. Scoring sentences in isolation is what the paper's
wording implies; the response's other sentences cannot lend it their empathy. The labeller is
injectable (any ``fn(seekers, sentences) -> list[float]``), so tests use a fake one.

For a response R with sentences R_1..R_n and its most empathic high-empathy sentence R_j:

* **insert example**: the state is the seeker and a window (k sentences) of R - R_j that contains
  the gap where R_j was, chosen at random among such windows; the target is the insert slot of
  the gap and the sentence R_j. A one-sentence response gives an empty window and slot 0.
* **stop example** (``stop_fraction`` of the data): the seeker and a window of the *original* R
  that contains R_j; there is nothing to add, and the target is STOP.

Replacement is not in the heuristic data (the paper has none either); RL learns it.
Examples are deterministic given the seed and written as JSONL; ``report`` counts sources,
positions and kinds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from core import corpora as C
from core.corpora import split_of
from core.jsonio import atomic_write_json, atomic_write_text
from core.text import split_sentences

from . import edits as E

log = logging.getLogger(__name__)

Labeller = Callable[[list[str], list[str]], list[float]]
MIN_WORDS, MAX_WORDS = 3, 40


@dataclass
class Source:
    id: str
    corpus: str
    seeker: str
    response: str


@dataclass
class WarmStartExample:
    id: str
    corpus: str
    kind: str                # "insert" | "stop"
    seeker: str
    window: list[str]
    window_start: int
    position: int            # position class
    sentence: str            # "" for stop
    response: str            # the whole response the window is taken from
    sentence_score: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "WarmStartExample":
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})


@dataclass
class DataReport:
    sources: dict = field(default_factory=dict)            # corpus -> responses read
    sentences_scored: int = 0
    responses_with_empathic_sentence: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict)           # corpus -> examples
    kinds: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)          # class name -> count
    window_lengths: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)             # train / heldout sizes
    threshold: float = 2.0

    def to_json(self) -> dict:
        return asdict(self)


def _split(group: str, seed: int = 13) -> str:
    return split_of(group, seed)


def collect_sources(data_dir=None, corpora: Iterable[str] = ("epitome", "esconv", "counselchat"),
                    seed: int = 13) -> list[Source]:
    """(seeker, response) pairs for the warm start, test (and EPITOME dev) data left out."""
    data_dir = Path(data_dir) if data_dir else C.default_data_dir()
    out: list[Source] = []
    for name in corpora:
        if name == "epitome":
            train = C.epitome_splits(data_dir, seed=seed)["train"]
            out += [Source(f"epitome-{p.sp_id}-{p.rp_id}", "epitome", p.seeker_post, p.response_post) for p in train]
        elif name == "esconv":
            pairs = C.load_esconv(data_dir / "esconv" / "esconv-dev-pairs.jsonl")
            out += [Source(p.id, "esconv", p.seeker_post, p.response_post) for p in pairs
                    if _split(p.id, seed) != "test"]
        elif name == "counselchat":
            pairs = C.load_counselchat(data_dir / "counsel-chat" / "counsel-chat.csv")
            out += [Source(p.id, "counselchat", p.seeker_post, p.response_post) for p in pairs
                    if _split(f"counselchat-{p.meta['question_id']}", seed) != "test"]
        else:
            raise ValueError(f"unknown corpus {name!r} (epitome, esconv, counselchat)")
    return out


def scorer_labeller(scorer, batch_size: int = 64, progress: bool = True) -> Labeller:
    """Sentence empathy = the shipped classifier's total level (0..6) for (seeker, sentence)."""
    def label(seekers: list[str], sentences: list[str]) -> list[float]:
        results = scorer.score(seekers, sentences, batch_size=batch_size, rationales=False, progress=progress)
        return [float(r.total) for r in results]
    return label


def _key(seeker: str, sentence: str) -> str:
    return hashlib.sha1(f"{seeker}\x00{sentence}".encode()).hexdigest()[:16]


def score_sentences(sources: list[Source], labeller: Labeller, max_sentences: int = 12,
                    cache_path: str | Path | None = None) -> dict[str, list[tuple[str, float]]]:
    """Sentences of every response with their empathy score: {source id: [(sentence, score)]}.

    Only sentences of MIN_WORDS..MAX_WORDS words are candidates (others score -1). Scores are
    cached in ``cache_path`` (JSON), so an interrupted build resumes without rescoring.
    """
    cache: dict[str, float] = {}
    if cache_path and Path(cache_path).exists():
        cache = json.loads(Path(cache_path).read_text())
    split = {s.id: split_sentences(s.response)[:max_sentences] for s in sources}
    todo, seen = [], set()
    for s in sources:
        for sent in split[s.id]:
            k = _key(s.seeker, sent)
            if MIN_WORDS <= len(sent.split()) <= MAX_WORDS and k not in cache and k not in seen:
                todo.append((s.seeker, sent, k))
                seen.add(k)
    if todo:
        log.info("scoring %d sentences (%d cached)", len(todo), len(cache))
        chunk = 2048
        for a in range(0, len(todo), chunk):
            part = todo[a:a + chunk]
            scores = labeller([t[0] for t in part], [t[1] for t in part])
            cache.update({t[2]: float(x) for t, x in zip(part, scores)})
            if cache_path:
                atomic_write_json(cache_path, cache)
    out = {}
    for s in sources:
        out[s.id] = [(sent, cache.get(_key(s.seeker, sent), -1.0)) for sent in split[s.id]]
    return out


def _windows_around(n: int, gap: int, k: int) -> list[tuple[int, int]]:
    """(window start, insert slot) for every window of a length-n list that holds the gap index."""
    if n == 0:
        return [(0, 0)]
    out = []
    for start in range(max(0, gap - k), min(gap, n - 1) + 1):
        slot = gap - start
        if 0 <= slot <= min(k, n - start):
            out.append((start, slot))
    return out


def build_examples(sources: list[Source], labeller: Labeller, k: int = 2, threshold: float = 2.0,
                   stop_fraction: float = 0.2, max_examples: int = 0, seed: int = 42, max_sentences: int = 12,
                   cache_path=None) -> tuple[list[WarmStartExample], DataReport]:
    rng = random.Random(seed)
    report = DataReport(threshold=threshold)
    report.sources = dict(Counter(s.corpus for s in sources))
    scored = score_sentences(sources, labeller, max_sentences, cache_path)
    report.sentences_scored = sum(1 for v in scored.values() for _, x in v if x >= 0)
    inserts, stops = [], []
    with_emp: Counter = Counter()
    for src in sources:
        sents = scored[src.id]
        best = max(range(len(sents)), key=lambda i: (sents[i][1], -i), default=None)
        if best is None or sents[best][1] < threshold:
            continue
        with_emp[src.corpus] += 1
        sentences = [s for s, _ in sents]
        target, score = sentences[best], sents[best][1]
        rest = sentences[:best] + sentences[best + 1:]
        start, slot = rng.choice(_windows_around(len(rest), best, k))
        window = E.window_of(rest, start, k)
        inserts.append(WarmStartExample(src.id, src.corpus, "insert", src.seeker, window, start,
                                        E.insert_class(slot, k), target, E.join(rest), score))
        # the window of the original response that holds the empathic sentence: nothing to add
        s_start = rng.choice([s for s in range(max(0, best - k + 1), best + 1) if s < len(sentences)])
        stops.append(WarmStartExample(src.id, src.corpus, "stop", src.seeker, E.window_of(sentences, s_start, k),
                                      s_start, E.stop_class(k), "", E.join(sentences), score))
    report.responses_with_empathic_sentence = dict(with_emp)
    rng.shuffle(inserts)
    rng.shuffle(stops)
    n_insert = len(inserts)
    if max_examples:
        n_insert = min(n_insert, max(1, round(max_examples * (1 - stop_fraction))))
    n_stop = min(len(stops), round(n_insert * stop_fraction / max(1e-9, 1 - stop_fraction)))
    examples = inserts[:n_insert] + stops[:n_stop]
    rng.shuffle(examples)
    names = [f"{a}{'' if s is None else s}" for a, s in E.position_classes(k)]
    report.examples = dict(Counter(e.corpus for e in examples))
    report.kinds = dict(Counter(e.kind for e in examples))
    report.positions = {names[c]: n for c, n in sorted(Counter(e.position for e in examples).items())}
    report.window_lengths = dict(sorted(Counter(len(e.window) for e in examples).items()))
    return examples, report


def split_heldout(examples: list[WarmStartExample], fraction: float = 0.1, seed: int = 13):
    """Held-out examples by a hash of the source id: a response is never on both sides."""
    heldout, train = [], []
    for e in examples:
        h = int(hashlib.sha256(f"{seed}:heldout:{e.id}".encode()).hexdigest()[:8], 16) / 16 ** 8
        (heldout if h < fraction else train).append(e)
    return train, heldout


def write_jsonl(path, examples: list[WarmStartExample]) -> None:
    atomic_write_text(path, "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in examples))


def read_jsonl(path) -> list[WarmStartExample]:
    with open(path, encoding="utf-8") as fh:
        return [WarmStartExample.from_json(json.loads(line)) for line in fh if line.strip()]
