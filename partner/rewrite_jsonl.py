"""Rewrite a JSONL file: one output line per input line, in order, resumable (partner-rewrite).

Each output line is the input's fields plus ``rewritten_response``, ``edits``, ``empathy``:
``{"before": ..., "after": ...}`` (``EmpathyScorer`` JSON, or null when scoring is switched off) and
``method``. Batches go through ``core.jsonio.process_jsonl``: a bad line becomes an error
record with its line number, and re-running onto an existing output skips the lines it holds.

Determinism: every batch is rewritten with a seed derived from ``--seed`` and the batch's own text,
so the same input, seed and batch size give the same output, also across an interrupted and
resumed run (whose batches are whole batches of the first run, as process_jsonl writes them).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from classifiers.scorer import EmpathyScorer
from core.jsonio import process_jsonl
from partner.config import SHIPPED_MODELS, RewriteConfig

log = logging.getLogger(__name__)


class ScorerUnavailable(RuntimeError):
    pass


def load_scorer(spec: str = "", device=None):
    """EmpathyScorer for ``spec`` ("" = the shipped models/epitome, a folder, or "none" -> None);
    "micromodels" or a micromodels folder gives the context-free micromodels baseline (same ``score`` API)."""
    if spec == "none":
        return None
    from classifiers.micromodels import SHIPPED as MICROMODELS
    from classifiers.micromodels import MicromodelScorer, is_micromodels_folder

    if spec == "micromodels" or (spec and is_micromodels_folder(spec)):
        path = MICROMODELS if spec == "micromodels" else Path(spec)
        if not (path / "config.json").exists():
            raise ScorerUnavailable(f"no micromodels at {path} (fit them with `partner-train micromodels`)")
        return MicromodelScorer.load(path)
    path = Path(spec) if spec else SHIPPED_MODELS / "epitome"
    if not path.exists():
        raise ScorerUnavailable(
            f"no empathy classifier at {path} (train one with partner-train classifier, or pass --scorer none "
            "to rewrite without the before/after empathy scores)")
    return EmpathyScorer.load(str(path), device=device)


def batch_seed(seed: int, records: list[dict]) -> int:
    """A seed for one batch from the run's seed and the batch's text (stable across resumes)."""
    h = hashlib.sha256(str(seed).encode())
    for r in records:
        h.update(b"\x00" + str(r.get("seeker_post", "")).encode() + b"\x01" + str(r.get("response_post", "")).encode())
    return int.from_bytes(h.digest()[:4], "little")


def empathy_json(result) -> dict[str, Any]:
    return result.to_json() if hasattr(result, "to_json") else dict(result)


def rewrite_records(records: list[dict], rewriter, scorer=None, seed: int = 0,
                    score_batch_size: int = 32) -> list[dict]:
    """Rewrite and score one batch of input records; returns the output records."""
    seekers = [r["seeker_post"] for r in records]
    responses = [r["response_post"] for r in records]
    outs = rewriter.rewrite(seekers, responses, seed=batch_seed(seed, records))
    if len(outs) != len(records):
        raise RuntimeError(f"{rewriter.name} returned {len(outs)} rewrites for {len(records)} inputs")
    empathy: list[dict | None] = [None] * len(records)
    if scorer is not None:
        scored = scorer.score(seekers + seekers, responses + [t for t, _ in outs], batch_size=score_batch_size,
                              rationales=True)
        n = len(records)
        empathy = [{"before": empathy_json(b), "after": empathy_json(a)} for b, a in zip(scored[:n], scored[n:])]
    out = [{**rec, "rewritten_response": text, "edits": edits, "empathy": emp, "method": rewriter.name}
           for rec, (text, edits), emp in zip(records, outs, empathy)]
    if getattr(rewriter, "record_candidates", False) and len(getattr(rewriter, "last_pool", [])) == len(out):
        for rec, pool in zip(out, rewriter.last_pool):
            rec["candidates"] = pool
    return out


def rewrite_file(in_path, out_path, rewriter, scorer=None, batch_size: int = RewriteConfig.batch_size,
                 seed: int = 0, overwrite: bool = False, run_key=None, shard: tuple[int, int] = (0, 1)):
    """Rewrite a JSONL file resumably (see module doc); returns core.jsonio.RunStats.

    ``run_key`` is what a resumed run must share with the first one (partner-rewrite passes the
    method, model, seed and config); the rewriter's name, the scorer and the batch size are always
    part of it. An empty seeker post is an error record: there is nothing to be empathic about.
    ``shard`` = (rank, processes) under a multi-process launch (``core.jsonio.launched_shard``).
    """
    key = {"command": "partner-rewrite", "method": rewriter.name, "scorer": getattr(scorer, "path", None) if scorer
           else None, "seed": seed, "batch_size": batch_size, "run": run_key}
    return process_jsonl(in_path, out_path, lambda recs: rewrite_records(recs, rewriter, scorer, seed),
                         batch_size=batch_size, overwrite=overwrite, desc=f"rewrite ({rewriter.name})",
                         nonblank=("seeker_post",), run_key=key, shard=shard)
