"""Micromodels (seed 001 §3, Appendix B): an empathy classifier that never reads the seeker post.

One micromodel per mechanism (ER, IP, EX), seeded with that mechanism's annotated rationales in the
training split (levels 1 and 2 alike: one seed set per mechanism, as in the paper). A response is
split into sentences; each sentence is embedded (MiniLM, ``registry.load_sentence_embedder``) and
compared with every seed by cosine similarity. Then:

- levels: the features of a response are, per mechanism, the maximum similarity over its sentences
  and that mechanism's seeds (paper Eq. 2); one explainable boosting machine per mechanism
  (``interpret``'s ExplainableBoostingClassifier, main effects only) reads all three features and
  predicts the level, as the authors' code does;
- rationales: the sentences whose maximum similarity to the mechanism's seeds passes a threshold
  (paper Eq. 1; 0.7 there), chosen per mechanism on the dev split here.

Two choices of ours, both said where they matter: a training response's features leave out the
seeds cut from that same response (otherwise every annotated training response matches itself at
cosine 1 and the boosting machine learns a cut no test response reaches); and the machines have no
pairwise interaction terms, so a fitted model is a few arrays that load without pickle.

A model folder holds ``config.json`` (format, embedder, thresholds, seed texts) and
``model.safetensors`` (seed vectors and each machine's bin cuts, bin scores and intercept).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np

from .epitome_metrics import MECHANISMS

log = logging.getLogger(__name__)

FORMAT = "partner-micromodels/1"
THRESHOLDS = tuple(round(0.20 + 0.05 * i, 2) for i in range(16))  # 0.20 .. 0.95, paper's 0.7 inside
PAPER_THRESHOLD = 0.7
# The token grid rationale metrics are computed on: the shipped classifier's (models/epitome/config.json:
# backbone minilm, max_len 64), so micromodels and the shipped model are scored on the same tokens.
GRID_TOKENIZER, GRID_MAX_LEN = "minilm", 64


# ------------------------------------------------------------------------------------ embedding

class CachedEmbedder:
    """Embeds each distinct text once: unit vectors kept in memory and, with ``path``, on disk
    (``path``.safetensors + ``path``.json, written atomically by ``save``)."""

    def __init__(self, embedder, path: str | Path | None = None):
        self.embedder = embedder
        self.path = Path(path) if path else None
        self.vectors: dict[str, np.ndarray] = {}
        self.added = 0
        if self.path and self.path.with_suffix(".json").exists():
            from safetensors.numpy import load_file

            texts = json.loads(self.path.with_suffix(".json").read_text(encoding="utf-8"))
            mat = load_file(str(self.path.with_suffix(".safetensors")))["vectors"]
            self.vectors = dict(zip(texts, mat))
            log.info("embedding cache %s: %d texts", self.path, len(texts))

    def encode(self, texts: list[str]) -> np.ndarray:
        new = sorted({t for t in texts if t not in self.vectors})
        if new:
            mat = np.asarray(self.embedder.encode(new), dtype=np.float32)
            mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
            self.vectors.update(zip(new, mat))
            self.added += len(new)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.vectors[t] for t in texts])

    @property
    def dim(self) -> int:
        if self.vectors:
            return len(next(iter(self.vectors.values())))
        return int(np.asarray(self.embedder.encode(["x"])).shape[1])

    def save(self) -> None:
        if not self.path or not self.added:
            return
        from safetensors.numpy import save_file

        from core.jsonio import atomic_write_text

        texts = list(self.vectors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".safetensors.tmp")
        save_file({"vectors": np.stack([self.vectors[t] for t in texts])}, str(tmp))
        tmp.replace(self.path.with_suffix(".safetensors"))
        atomic_write_text(self.path.with_suffix(".json"), json.dumps(texts, ensure_ascii=False))
        self.added = 0


class _SentenceTransformerEncoder:
    """registry.load_sentence_embedder, loaded on first use, with a progress bar."""

    def __init__(self, name: str, device: str | None = None):
        self.name, self.device, self._model = name, device, None

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            from core.registry import load_sentence_embedder

            self._model = load_sentence_embedder(self.name, self.device)
        return self._model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                  show_progress_bar=len(texts) > 256)


def default_embedder(name: str = "minilm", device: str | None = None, cache: bool = True) -> CachedEmbedder:
    """The embedder by registry name, cached on disk under the project cache (one file per name)."""
    from core.registry import cache_dir

    path = cache_dir() / "micromodels" / f"embeddings-{name}" if cache else None
    return CachedEmbedder(_SentenceTransformerEncoder(name, device), path)


# ------------------------------------------------------------------------------------ sentences

def sentence_spans(text: str) -> list[tuple[str, int, int]]:
    """The response's sentences (``text.split_sentences``) with their character spans in ``text``.

    The splitter collapses whitespace, so each sentence is found again word by word, left to right.
    """
    from core.text import split_sentences

    out, cursor = [], 0
    for sent in split_sentences(text or ""):
        pattern = r"\s+".join(re.escape(w) for w in sent.split())
        m = re.compile(pattern).search(text, cursor)
        if m is None:  # cannot happen for split_sentences' output; keep the sentence without a span
            out.append((sent, cursor, cursor))
            continue
        out.append((sent, m.start(), m.end()))
        cursor = m.end()
    return out


def seed_texts(pairs, mechanism: str) -> list[tuple[str, int]]:
    """(rationale text, index of its pair) for every annotated rationale of ``mechanism`` at level > 0."""
    out = []
    for i, p in enumerate(pairs):
        if p.levels[mechanism] > 0:
            for s, e in p.rationales[mechanism]:
                text = " ".join(p.response_post[s:e].split())
                if text:
                    out.append((text, i))
    return out


# ------------------------------------------------------------------------------------ boosting

@dataclasses.dataclass
class AdditiveLevels:
    """A main-effects EBM as arrays: per feature, bin cuts and [bins + 2, 3] scores; an intercept."""

    cuts: list[np.ndarray]
    scores: list[np.ndarray]
    intercept: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: list[int], seed: int = 0) -> "AdditiveLevels":
        from interpret.glassbox import ExplainableBoostingClassifier

        classes = sorted(set(y))
        if len(classes) == 1:  # nothing to learn: a constant
            intercept = np.full(3, -30.0)
            intercept[classes[0]] = 0.0
            return cls([np.zeros(0)] * x.shape[1], [np.zeros((2, 3))] * x.shape[1], intercept)
        logging.getLogger("interpret").setLevel(logging.WARNING)  # it logs every boosting round at INFO
        ebm = ExplainableBoostingClassifier(interactions=0, random_state=seed, n_jobs=1)
        ebm.fit(x, y)
        return cls.from_ebm(ebm, x.shape[1])

    @classmethod
    def from_ebm(cls, ebm, n_features: int) -> "AdditiveLevels":
        """The fitted machine's arrays, as 3-level logits (a level absent from training gets -30)."""
        cls_idx = [int(c) for c in ebm.classes_]
        scores = []
        for j in range(n_features):
            s = np.asarray(ebm.term_scores_[j], dtype=np.float64)
            full = np.zeros((s.shape[0], 3))
            if len(cls_idx) == 2:  # binary: one logit for the second class
                full[:, cls_idx[1]] = s
            else:
                full[:, cls_idx] = s
            scores.append(full)
        icpt = np.full(3, -30.0)
        raw = np.atleast_1d(np.asarray(ebm.intercept_, dtype=np.float64))
        if len(cls_idx) == 2:
            icpt[cls_idx[0]], icpt[cls_idx[1]] = 0.0, raw[0]
        else:
            icpt[cls_idx] = raw
        return cls([np.asarray(ebm.bins_[j][0], dtype=np.float64) for j in range(n_features)], scores, icpt)

    def logits(self, x: np.ndarray) -> np.ndarray:
        out = np.tile(self.intercept, (x.shape[0], 1))
        for j, (cuts, scores) in enumerate(zip(self.cuts, self.scores)):
            # interpret's bins: 0 = missing, 1 .. len(cuts) + 1 = the value's bin, last = unknown
            out += scores[np.searchsorted(cuts, x[:, j], side="right") + 1]
        return out

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------ the model

class Micromodels:
    """Three micromodels and their level machines. ``fit`` builds one; ``save``/``load`` a folder."""

    def __init__(self, seeds: dict[str, list[str]], seed_vectors: dict[str, np.ndarray],
                 machines: dict[str, AdditiveLevels], thresholds: dict[str, float], embedder_name: str = "minilm",
                 embedder=None, meta: dict | None = None):
        self.seeds, self.seed_vectors, self.machines = seeds, seed_vectors, machines
        self.thresholds, self.embedder_name = thresholds, embedder_name
        self._embedder = embedder
        self.meta = meta or {}

    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = default_embedder(self.embedder_name)
        return self._embedder

    # -------------------------------------------------------------- similarities and features

    def sentence_similarities(self, responses: list[str]) -> list[tuple[list[tuple[str, int, int]], np.ndarray]]:
        """Per response: its sentences with spans, and [sentences, 3] max cosine to each mechanism's seeds."""
        sents = [sentence_spans(r) for r in responses]
        flat = [s for ss in sents for s, _, _ in ss]
        vecs = self.embedder.encode(flat)
        sims = np.zeros((len(flat), len(MECHANISMS)), dtype=np.float32)
        for j, m in enumerate(MECHANISMS):
            if len(flat) and len(self.seed_vectors[m]):
                sims[:, j] = (vecs @ self.seed_vectors[m].T).max(axis=1)
        out, k = [], 0
        for ss in sents:
            out.append((ss, sims[k:k + len(ss)]))
            k += len(ss)
        return out

    @staticmethod
    def features(sims) -> np.ndarray:
        """[N, 3]: per response and mechanism, the max over its sentences (0 for an empty response)."""
        return np.stack([s.max(axis=0) if len(s) else np.zeros(len(MECHANISMS), dtype=np.float32)
                         for _, s in sims]) if sims else np.zeros((0, len(MECHANISMS)), dtype=np.float32)

    def predict(self, responses: list[str], sims=None) -> dict:
        """Per mechanism: [N, 3] level probabilities and, per response, the character spans of the
        sentences that pass the mechanism's threshold (whatever the predicted level)."""
        sims = self.sentence_similarities(responses) if sims is None else sims
        x = self.features(sims).astype(np.float64)
        out = {}
        for j, m in enumerate(MECHANISMS):
            probs = self.machines[m].proba(x)
            empty = [not (r or "").strip() for r in responses]
            probs[empty] = [1.0, 0.0, 0.0]  # an empty response communicates nothing
            spans = [[(a, b) for (_, a, b), v in zip(ss, s[:, j]) if v >= self.thresholds[m]] for ss, s in sims]
            out[m] = {"probs": probs, "spans": spans}
        return out

    # -------------------------------------------------------------- training

    @classmethod
    def fit(cls, train, dev, embedder=None, embedder_name: str = "minilm", seed: int = 0,
            grid_tokenizer=None, leave_own_out: bool = True) -> "Micromodels":
        """Seeds from ``train``'s rationales, machines on ``train``, thresholds picked on ``dev``.
        ``leave_own_out=False`` featurises training responses against all seeds, their own included,
        as the authors' code does."""
        embedder = embedder if embedder is not None else default_embedder(embedder_name)
        raw = {m: seed_texts(train, m) for m in MECHANISMS}
        seeds, seed_vectors = {}, {}
        for m in MECHANISMS:
            texts = list(dict.fromkeys(t for t, _ in raw[m]))
            seeds[m] = texts
            seed_vectors[m] = embedder.encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        model = cls(seeds, seed_vectors, {}, {m: PAPER_THRESHOLD for m in MECHANISMS}, embedder_name, embedder)

        # Training features leave out the seeds cut from the same response (module docstring).
        sents = [sentence_spans(p.response_post) for p in train]
        owner = np.array([i for i, ss in enumerate(sents) for _ in ss], dtype=np.int64)
        vecs = embedder.encode([s for ss in sents for s, _, _ in ss])
        x = np.full((len(train), len(MECHANISMS)), -np.inf)
        for j, m in enumerate(MECHANISMS):
            if not raw[m] or not len(vecs):
                continue
            sv = embedder.encode([t for t, _ in raw[m]])
            so = np.array([i for _, i in raw[m]], dtype=np.int64)
            sim = vecs @ sv.T
            if leave_own_out:
                sim[owner[:, None] == so[None, :]] = -1.0
            per_sentence = sim.max(axis=1)
            np.maximum.at(x[:, j], owner, per_sentence)
        x[~np.isfinite(x)] = 0.0  # no sentence, or no seed: as ``features`` says for an empty response
        for j, m in enumerate(MECHANISMS):
            model.machines[m] = AdditiveLevels.fit(x, [p.levels[m] for p in train], seed)
        model.thresholds = model.pick_thresholds(dev, grid_tokenizer) if dev else model.thresholds
        model.meta.update(train_pairs=len(train), dev_pairs=len(dev), seed=seed, leave_own_out=leave_own_out,
                          seeds={m: len(seeds[m]) for m in MECHANISMS})
        return model

    def pick_thresholds(self, dev, grid_tokenizer=None) -> dict[str, float]:
        """Per mechanism, the threshold in THRESHOLDS with the best mean of T-F1 and IOU-F1 (seed 001's
        convention) on ``dev``; ties go to the one nearest the paper's 0.7."""
        from .epitome_metrics import rationale_metrics

        sims = self.sentence_similarities([p.response_post for p in dev])
        preds = self.predict([p.response_post for p in dev], sims)
        out, self.meta["dev_threshold_search"] = {}, {}
        for j, m in enumerate(MECHANISMS):
            gold = [p.levels[m] for p in dev]
            lv = preds[m]["probs"].argmax(-1).tolist()
            scored = []
            for t in THRESHOLDS:
                spans = [[(a, b) for (_, a, b), v in zip(ss, s[:, j]) if v >= t] for ss, s in sims]
                gm, pm = token_masks([p.response_post for p in dev], [p.rationales[m] for p in dev], spans,
                                     grid_tokenizer)
                r = rationale_metrics(gm, pm, gold, lv, "empty")
                scored.append(((r["t_f1"] + r["iou_f1"]) / 2, -abs(t - PAPER_THRESHOLD), t))
            best = max(scored)
            out[m] = best[2]
            self.meta["dev_threshold_search"][m] = {f"{t:.2f}": round(s, 4) for s, _, t in scored}
        return out

    # -------------------------------------------------------------- folders

    def save(self, out_dir: str | Path) -> None:
        from safetensors.numpy import save_file

        from core.jsonio import atomic_write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for m in MECHANISMS:
            tensors[f"seeds.{m}"] = np.ascontiguousarray(self.seed_vectors[m], dtype=np.float32)
            mach = self.machines[m]
            tensors[f"{m}.intercept"] = mach.intercept
            for j, (c, s) in enumerate(zip(mach.cuts, mach.scores)):
                tensors[f"{m}.cuts.{j}"] = np.ascontiguousarray(c, dtype=np.float64)
                tensors[f"{m}.scores.{j}"] = np.ascontiguousarray(s, dtype=np.float64)
        tmp = out / ".model.safetensors.tmp"
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
        tmp.replace(out / "model.safetensors")
        atomic_write_json(out / "config.json", {
            "format": FORMAT, "embedder": self.embedder_name, "features": list(MECHANISMS),
            "thresholds": self.thresholds, "meta": self.meta, "seeds": self.seeds})

    @classmethod
    def load(cls, path: str | Path, embedder=None) -> "Micromodels":
        from safetensors.numpy import load_file

        path = Path(path)
        cfg_file = path / "config.json"
        if not cfg_file.exists():
            raise FileNotFoundError(f"no micromodels at {path} (expected config.json and model.safetensors)")
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        if cfg.get("format") != FORMAT:
            raise ValueError(f"{cfg_file}: format {cfg.get('format')!r}, expected {FORMAT}")
        t = load_file(str(path / "model.safetensors"))
        n = len(cfg["features"])
        machines = {m: AdditiveLevels([t[f"{m}.cuts.{j}"] for j in range(n)], [t[f"{m}.scores.{j}"] for j in range(n)],
                                      t[f"{m}.intercept"]) for m in MECHANISMS}
        return cls(cfg["seeds"], {m: t[f"seeds.{m}"] for m in MECHANISMS}, machines,
                   {m: float(v) for m, v in cfg["thresholds"].items()}, cfg["embedder"], embedder, cfg.get("meta"))


def is_micromodels_folder(path: str | Path) -> bool:
    f = Path(path) / "config.json"
    if not f.exists():
        return False
    try:
        return json.loads(f.read_text(encoding="utf-8")).get("format") == FORMAT
    except (json.JSONDecodeError, OSError):
        return False


# ------------------------------------------------------------------------------------ evaluation

def token_masks(responses: list[str], gold_spans: list, pred_spans: list, tokenizer=None,
                max_len: int = GRID_MAX_LEN) -> tuple[list[list[int]], list[list[int]]]:
    """Gold and predicted rationale masks on the shipped classifier's token grid (tokens that overlap
    a span are 1; special tokens dropped; truncated at ``max_len`` as that classifier is)."""
    tok = tokenizer if tokenizer is not None else grid_tokenizer()
    enc = tok([r or "" for r in responses], return_offsets_mapping=True, truncation=True, max_length=max_len)
    gm, pm = [], []
    for offs, gs, ps in zip(enc["offset_mapping"], gold_spans, pred_spans):
        real = [(s, e) for s, e in offs if e > s]
        gm.append([int(any(s < b and a < e for a, b in gs)) for s, e in real])
        pm.append([int(any(s < b and a < e for a, b in ps)) for s, e in real])
    return gm, pm


_GRID = {}


def grid_tokenizer():
    if "tok" not in _GRID:
        from core.registry import load_tokenizer

        _GRID["tok"] = load_tokenizer(GRID_TOKENIZER)
    return _GRID["tok"]


def predictions(model: Micromodels, pairs, tokenizer=None) -> dict:
    """Per mechanism, gold and predicted levels, rationale masks and probabilities on ``pairs``, in the
    shape of ``partner.evaluation.classifier.predict_model``'s output."""
    responses = [p.response_post for p in pairs]
    pred = model.predict(responses)
    out = {}
    for m in MECHANISMS:
        gm, pm = token_masks(responses, [p.rationales[m] for p in pairs], pred[m]["spans"], tokenizer)
        out[m] = {"gold": [p.levels[m] for p in pairs], "pred": pred[m]["probs"].argmax(-1).tolist(),
                  "gmask": gm, "pmask": pm, "probs": pred[m]["probs"].tolist()}
    return out


def fingerprint(pairs) -> str:
    """A short hash of the pairs a model was fitted on (ids, levels, rationales), for reports."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(f"{p.sp_id}\x00{p.rp_id}\x00{p.levels}\x00{p.rationales}\x01".encode())
    return h.hexdigest()[:12]


# ------------------------------------------------------------------------------------ scorer API

class MicromodelScorer:
    """``EmpathyScorer``'s ``score`` API on micromodels: the seeker posts are checked for count and
    ignored, so a context probe's drop is zero by construction."""

    def __init__(self, model: Micromodels):
        self.model = model

    @classmethod
    def load(cls, path: str | Path | None = None, embedder=None) -> "MicromodelScorer":
        return cls(Micromodels.load(path or SHIPPED, embedder))

    def score(self, seekers: list[str], responses: list[str], batch_size: int = 32, rationales: bool = True,
              progress: bool = False) -> list:
        from .scorer import EmpathyResult

        if len(seekers) != len(responses):
            raise ValueError(f"{len(seekers)} seeker posts but {len(responses)} responses")
        sims = self.model.sentence_similarities(list(responses))
        pred = self.model.predict(list(responses), sims)
        if isinstance(self.model.embedder, CachedEmbedder):
            self.model.embedder.save()
        out = []
        for i, text in enumerate(responses):
            levels, probs, spans = {}, {}, {}
            for m in MECHANISMS:
                p = pred[m]["probs"][i]
                probs[m] = [round(float(v), 6) for v in p]
                levels[m] = int(p.argmax())
                spans[m] = [text[a:b] for a, b in pred[m]["spans"][i]] if rationales and levels[m] > 0 else []
            expected = sum(float(pred[m]["probs"][i] @ np.arange(3)) for m in MECHANISMS)
            out.append(EmpathyResult(levels, sum(levels.values()), probs, expected, spans))
        return out


SHIPPED = Path(__file__).resolve().parent.parent / "models" / "micromodels"
