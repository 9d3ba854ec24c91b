"""Sentence pairs for the coherence classifier (paper §5.5; partner-method.md §2.1, item 3).

A **positive** pair is two sentences of one response. A **negative** pair puts a sentence of a
response next to a sentence taken from a response to a *different* seeker post, drawn from the
same corpus (so the classifier learns topical fit, not which corpus a sentence came from).

Corpora: EPITOME Reddit (its grouped TRAIN split for training, its DEV split held out; the TEST
split is never read here), CounselChat (grouped by question) and ESConv (grouped by seeker post);
for those two, the grouped hash split's ``train`` part trains and its ``dev`` part is held out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from core.corpora import epitome_splits, load_counselchat, load_esconv, split_of
from core.text import split_sentences

MIN_WORDS = 3  # shorter fragments ("Hi.", "Hugs!") fit anywhere and teach nothing


@dataclass
class Doc:
    corpus: str
    group: str  # the seeker post a response answers; negatives never share it
    sentences: list[str]


@dataclass
class SentencePair:
    a: str
    b: str
    label: int  # 1 = both from one response, 0 = from responses to different seeker posts
    corpus: str


def _sentences(text: str) -> list[str]:
    return [s for s in split_sentences(text) if len(s.split()) >= MIN_WORDS]


def collect_docs(data_dir=None, split_seed: int = 13) -> dict[str, list[Doc]]:
    """{"train": [...], "heldout": [...]} responses as sentence lists, grouped by seeker post."""
    out: dict[str, list[Doc]] = {"train": [], "heldout": []}
    splits = epitome_splits(data_dir, seed=split_seed)
    for split, target in (("train", "train"), ("dev", "heldout")):
        for p in splits[split]:
            out[target].append(Doc("epitome", f"epitome-{p.sp_id}", _sentences(p.response_post)))
    base = None if data_dir is None else data_dir
    counsel = load_counselchat(None if base is None else f"{base}/counsel-chat/counsel-chat.csv")
    esconv = load_esconv(None if base is None else f"{base}/esconv/esconv-dev-pairs.jsonl")
    others = [(f"counselchat-{p.meta['question_id']}", "counselchat", p) for p in counsel]
    others += [(f"esconv-{p.seeker_post.strip().lower()}", "esconv", p) for p in esconv]
    for group, corpus, p in others:
        split = split_of(group, split_seed)
        if split == "test":
            continue  # kept unseen, like EPITOME's test split
        out["train" if split == "train" else "heldout"].append(Doc(corpus, group, _sentences(p.response_post)))
    return out


def make_pairs(docs: list[Doc], seed: int = 42, max_pairs: int = 0, per_doc: int = 4) -> list[SentencePair]:
    """Balanced positives and negatives: one negative for every positive.

    ``per_doc`` caps the positives drawn from one response (CounselChat answers are long and would
    otherwise dominate); ``max_pairs`` caps the total (0 = no cap), keeping the balance.
    """
    rng = random.Random(seed)
    by_corpus: dict[str, list[tuple[str, str]]] = defaultdict(list)  # corpus -> (group, sentence)
    for d in docs:
        for s in d.sentences:
            by_corpus[d.corpus].append((d.group, s))
    pairs: list[SentencePair] = []
    for d in docs:
        n = len(d.sentences)
        if n < 2:
            continue
        combos = [(i, j) for i in range(n) for j in range(i + 1, n)]
        rng.shuffle(combos)
        pool = by_corpus[d.corpus]
        for i, j in combos[:per_doc]:
            a, b = d.sentences[i], d.sentences[j]
            if rng.random() < 0.5:
                a, b = b, a
            pairs.append(SentencePair(a, b, 1, d.corpus))
            for _ in range(20):  # a sentence from a response to another seeker post
                group, other = pool[rng.randrange(len(pool))]
                if group != d.group:
                    break
            else:
                continue
            neg = (other, b) if rng.random() < 0.5 else (b, other)
            pairs.append(SentencePair(neg[0], neg[1], 0, d.corpus))
    rng.shuffle(pairs)
    if max_pairs and len(pairs) > max_pairs:
        pos = [p for p in pairs if p.label == 1][: max_pairs // 2]
        neg = [p for p in pairs if p.label == 0][: max_pairs - len(pos)]
        pairs = pos + neg
        rng.shuffle(pairs)
    return pairs
