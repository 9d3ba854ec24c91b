"""The retrieval baseline's index: high-empathy sentences from the EPITOME *train* split.

Which sentences count as high-empathy: the sentences of a training response that carry an EPITOME
rationale span of Emotional Reactions or Explorations annotated at level 2 (strong) for that
response. That is, human annotators marked them as the evidence of strong empathy; no classifier
is involved, so the index does not change when a classifier is retrained. Interpretations are left
out: their level-2 rationales are mostly the responder's own experience ("I set an alarm to wake
me up at 12"), which reads wrong when inserted into someone else's response. Sentences of 4-30 words (configurable), without
links, deduplicated case-insensitively. The dev and test splits are never read.

The index (sentences + MiniLM embeddings, safetensors) is built once into
``<cache>/retrieval/<key>/``, where the key hashes the source files' bytes, the split seed, the
filters and the embedder name, so a change in any of them builds a new index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.corpora import DataError, default_data_dir, EPITOME_FILES, epitome_splits
from core.jsonio import atomic_write_json
from core.registry import cache_dir, load_sentence_embedder
from core.text import split_sentences

log = logging.getLogger(__name__)

INDEX_VERSION = 2
MECHANISMS = ("ER", "EX")
SPLIT_SEED = 13  # core.corpora.epitome_splits' default: the project's one EPITOME split


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def empathic_sentences(pairs, min_words: int = 4, max_words: int = 30,
                       mechanisms: tuple[str, ...] = MECHANISMS) -> list[dict]:
    """[{"sentence", "mechanisms", "sp_id", "rp_id"}] from rationales of level-2 ``mechanisms``."""
    out: dict[str, dict] = {}
    for p in pairs:
        spans = [(m, _norm(p.response_post[a:b])) for m, lv in p.levels.items() if lv == 2 and m in mechanisms
                 for a, b in p.rationales.get(m, [])]
        spans = [(m, s) for m, s in spans if len(s) >= 3]
        if not spans:
            continue
        for sent in split_sentences(p.response_post):
            ns = _norm(sent)
            mechs = sorted({m for m, s in spans if s in ns or ns in s})
            n_words = len(sent.split())
            if not mechs or not min_words <= n_words <= max_words:
                continue
            if re.search(r"https?://|www\.|\[|\]", sent) or not re.search(r"[A-Za-z]", sent):
                continue
            key = ns.rstrip(".!? ")
            if key in out:
                out[key]["mechanisms"] = sorted(set(out[key]["mechanisms"]) | set(mechs))
            else:
                out[key] = {"sentence": sent.strip(), "mechanisms": mechs, "sp_id": p.sp_id, "rp_id": p.rp_id}
    return list(out.values())


def _sources_key(data_dir: Path, min_words: int, max_words: int, embedder: str) -> str:
    h = hashlib.sha256(f"v{INDEX_VERSION}|seed{SPLIT_SEED}|{MECHANISMS}|{min_words}-{max_words}|{embedder}".encode())
    for name in sorted(EPITOME_FILES.values()):
        path = data_dir / "epitome-reddit" / name
        if not path.is_file():
            raise DataError(path, None, None, "file not found")
        h.update(name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


@dataclass
class RetrievalIndex:
    sentences: list[str]
    embeddings: "object"  # torch.FloatTensor [N, d], L2-normalised
    embedder: object      # SentenceTransformer used for queries
    path: Path | None = None

    @classmethod
    def build_or_load(cls, data_dir: str | os.PathLike | None = None, embedder: str = "minilm",
                      min_words: int = 4, max_words: int = 30, device: str | None = None) -> "RetrievalIndex":
        from filelock import FileLock
        from safetensors.torch import load_file

        data_dir = Path(data_dir) if data_dir else default_data_dir()
        key = _sources_key(data_dir, min_words, max_words, embedder)  # checks the data before any weights load
        model = load_sentence_embedder(embedder, device=device)
        root = cache_dir() / "retrieval"
        root.mkdir(parents=True, exist_ok=True)
        final = root / key
        with FileLock(str(root / f"{key}.lock")):
            if not (final / ".complete").exists():
                if final.exists():
                    shutil.rmtree(final)
                tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
                try:
                    _build(tmp, data_dir, model, embedder, min_words, max_words)
                    (tmp / ".complete").write_text("ok\n")
                    os.replace(tmp, final)
                finally:
                    if tmp.exists():
                        shutil.rmtree(tmp, ignore_errors=True)
        meta = json.loads((final / "sentences.json").read_text(encoding="utf-8"))
        emb = load_file(str(final / "embeddings.safetensors"))["embeddings"]
        log.info("retrieval index %s: %d high-empathy sentences from the EPITOME train split", final,
                 len(meta["sentences"]))
        return cls([s["sentence"] for s in meta["sentences"]], emb, model, final)

    def nearest(self, queries: list[str], exclude: list[str] | None = None) -> list[str]:
        """The indexed sentence most similar to each query, skipping any already in ``exclude[i]``."""
        return [found[0] for found in self.nearest_k(queries, 1, exclude)]

    def nearest_k(self, queries: list[str], k: int, exclude: list[str] | None = None) -> list[list[str]]:
        """The ``k`` indexed sentences most similar to each query, best first, skipping any in ``exclude[i]``
        (the most similar one when every near sentence is excluded)."""
        import torch

        q = torch.as_tensor(self.embedder.encode(list(queries), normalize_embeddings=True, convert_to_numpy=True,
                                                show_progress_bar=False))
        sims = q @ self.embeddings.T
        top = torch.topk(sims, k=min(k + 4, sims.shape[1]), dim=1).indices.tolist()
        out = []
        for i, cands in enumerate(top):
            avoid = {_norm(s) for s in (exclude[i] if exclude else [])}
            keep = [self.sentences[c] for c in cands if _norm(self.sentences[c]) not in avoid][:k]
            out.append(keep or [self.sentences[cands[0]]])
        return out


def _build(out: Path, data_dir: Path, model, embedder: str, min_words: int, max_words: int) -> None:
    import torch
    from safetensors.torch import save_file

    train = epitome_splits(data_dir, seed=SPLIT_SEED)["train"]
    sents = empathic_sentences(train, min_words, max_words)
    if not sents:
        raise RuntimeError("no high-empathy sentences found in the EPITOME train split")
    log.info("building the retrieval index: %d sentences from %d train pairs (once)", len(sents), len(train))
    emb = model.encode([s["sentence"] for s in sents], batch_size=64, normalize_embeddings=True,
                       convert_to_numpy=True, show_progress_bar=True)
    save_file({"embeddings": torch.as_tensor(emb).contiguous()}, str(out / "embeddings.safetensors"))
    atomic_write_json(out / "sentences.json", {
        "source": "EPITOME Reddit train split (core.corpora.epitome_splits, seed 13): sentences carrying "
                  f"a rationale span of {'/'.join(MECHANISMS)} annotated at level 2",
        "embedder": embedder, "train_pairs": len(train), "min_words": min_words, "max_words": max_words,
        "sentences": sents,
    })
