"""Stage `coherence`: train the sentence-pair coherence classifier into ``run_dir/coherence``.

The folder is what ``classifiers.coherence.CoherenceScorer.load`` reads; the shipped model in
``models/coherence`` is a copy of it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from classifiers.coherence import train
from core.jsonio import atomic_write_text

log = logging.getLogger(__name__)


def run(cfg, force: bool = False) -> Path:
    out = Path(cfg.run_dir) / "coherence"
    if (out / ".complete").exists() and not force:
        log.info("coherence: %s is complete; skipping (--force retrains)", out)
        return out
    if out.exists():
        shutil.rmtree(out)
    meta = train(cfg.coherence, out, data_dir=cfg.data_path(), split_seed=cfg.classifier.split_seed)
    held = meta["heldout"]["all"]
    log.info("coherence: held-out accuracy %.3f, ROC-AUC %.3f on %d pairs; saved to %s",
             held["accuracy"], held["roc_auc"], held["n"], out)
    atomic_write_text(out / ".complete", "ok\n")
    return out
