"""partner-train warmstart: build the heuristic data, fine-tune the policy, save it.

Writes into ``<run_dir>/warmstart/``:

- ``data.jsonl`` (all examples), ``data_report.json`` (sizes, label distribution),
  ``sentence_scores.json`` (the classifier's sentence scores, a cache for resuming);
- ``checkpoints/`` (Trainer checkpoints; a re-run resumes from the last one);
- ``tensorboard/`` (losses, learning rate, held-out metrics);
- ``policy/`` (the trained adapter + position head, loadable by ``PartnerPolicy.load``);
- ``metrics.json`` (losses, held-out position accuracy and sentence perplexity before / after);
- ``.complete``, written last.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from classifiers.scorer import EmpathyScorer
from core.jsonio import atomic_write_json, atomic_write_text

from .. import warmstart_data as D, warmstart_trainer as W
from ..policy import PartnerPolicy

log = logging.getLogger(__name__)


def _classifier_path(cfg) -> str | None:
    if cfg.warmstart.classifier:
        return cfg.warmstart.classifier
    trained = Path(cfg.run_dir) / "classifier"
    if (trained / ".complete").exists():
        for cand in (trained / "model", trained):
            if (cand / "config.json").exists() or any(cand.glob("*.safetensors")):
                return str(cand)
    return None  # the shipped models/epitome


def build_data(cfg, out: Path, labeller=None):
    """Examples and report, from ``data.jsonl`` if it was built before."""
    data_path = out / "data.jsonl"
    report_path = out / "data_report.json"
    if data_path.exists() and report_path.exists():
        return D.read_jsonl(data_path), json.loads(report_path.read_text())
    w = cfg.warmstart
    sources = D.collect_sources(cfg.data_path(), [c.strip() for c in w.corpora.split(",") if c.strip()])
    if w.max_sources and len(sources) > w.max_sources:
        import random

        sources = random.Random(w.seed).sample(sources, w.max_sources)
    if labeller is None:
        path = _classifier_path(cfg)
        log.info("labelling sentences with the EPITOME classifier at %s", path or "models/epitome (shipped)")
        labeller = D.scorer_labeller(EmpathyScorer.load(path))
    examples, report = D.build_examples(sources, labeller, k=cfg.policy.window, threshold=w.sentence_threshold,
                                        stop_fraction=w.stop_fraction, max_examples=w.max_examples, seed=w.seed,
                                        max_sentences=w.max_sentences, cache_path=out / "sentence_scores.json")
    train, heldout = D.split_heldout(examples, w.heldout_fraction)
    report.splits = {"train": len(train), "heldout": len(heldout)}
    D.write_jsonl(data_path, examples)
    atomic_write_json(report_path, report.to_json())
    log.info("warm-start data: %s", json.dumps(report.to_json()))
    return examples, report.to_json()


def run(cfg, force: bool = False, labeller=None) -> Path:
    out = Path(cfg.run_dir) / "warmstart"
    done = out / ".complete"
    if done.exists() and not force:
        log.info("warmstart: %s is complete; skipping (--force to retrain)", out)
        return out
    if force and done.exists():
        done.unlink()
    out.mkdir(parents=True, exist_ok=True)
    examples, report = build_data(cfg, out, labeller)
    train, heldout = D.split_heldout(examples, cfg.warmstart.heldout_fraction)
    heldout = heldout[: cfg.warmstart.max_heldout] if cfg.warmstart.max_heldout else heldout
    policy = PartnerPolicy.from_backbone(cfg.policy.backbone, cfg.policy, finetune=cfg.warmstart.finetune,
                                         seed=cfg.warmstart.seed)
    metrics = W.train(policy, train, heldout, cfg.warmstart, out, resume=not force)
    policy.save_pretrained(out / "policy", half=False,
                           extra={"warmstart": {"examples": len(train), "steps": metrics["steps"],
                                                "heldout_after": metrics["heldout_after"]}})
    atomic_write_text(done, "ok\n")
    log.info("warmstart: position accuracy %.3f -> %.3f, sentence perplexity %.1f -> %.1f",
             metrics["heldout_before"].get("position_accuracy", float("nan")),
             metrics["heldout_after"].get("position_accuracy", float("nan")),
             metrics["heldout_before"].get("sentence_perplexity", float("nan")),
             metrics["heldout_after"].get("sentence_perplexity", float("nan")))
    return out
