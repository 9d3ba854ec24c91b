"""Stage `classifier`: train the EPITOME empathy classifier into ``run_dir/classifier``."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from classifiers.epitome_train import train
from core.jsonio import atomic_write_text

log = logging.getLogger(__name__)


def run(cfg, force: bool = False) -> Path:
    out = Path(cfg.run_dir) / "classifier"
    if (out / ".complete").exists() and not force:
        log.info("classifier: %s is complete; skipping (--force retrains)", out)
        return out
    if out.exists():
        shutil.rmtree(out)
    summary = train(cfg.classifier, out, data_dir=cfg.data_path())
    log.info("classifier: best dev macro-F1 %.2f at epoch %d, saved to %s",
             100 * summary["best_dev_macro_f1"], summary["best_epoch"], out)
    atomic_write_text(out / ".complete", "ok\n")
    return out
