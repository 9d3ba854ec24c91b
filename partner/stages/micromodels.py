"""Stage `micromodels`: fit the context-free micromodels baseline (seed 001) into ``run_dir/micromodels``.

Seeds and level machines from the training split of ``classifier.split_seed`` (and of
``classifier.folds`` / ``classifier.fold`` when set), rationale thresholds on its dev split. Not part
of the default pipeline: nothing downstream needs it; ``partner-eval rewrites --scorer micromodels``
reads it as a judge that cannot see the seeker post.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def run(cfg, force: bool = False) -> Path:
    from core.corpora import epitome_splits
    from core.jsonio import atomic_write_text
    from classifiers.micromodels import Micromodels, default_embedder, fingerprint

    out = Path(cfg.run_dir) / "micromodels"
    if (out / ".complete").exists() and not force:
        log.info("micromodels: %s is complete; skipping (--force refits)", out)
        return out
    if out.exists():
        shutil.rmtree(out)
    c = cfg.classifier
    splits = epitome_splits(cfg.data_path(), seed=c.split_seed, folds=c.folds, fold=c.fold)
    embedder = default_embedder("minilm")
    model = Micromodels.fit(splits["train"], splits["dev"], embedder)  # seed 0, as partner-eval's baseline row
    embedder.save()
    model.meta.update(split_seed=c.split_seed, folds=c.folds, fold=c.fold,
                      train_fingerprint=fingerprint(splits["train"]))
    model.save(out)
    log.info("micromodels: seeds %s, thresholds %s, saved to %s", model.meta["seeds"], model.thresholds, out)
    atomic_write_text(out / ".complete", "ok\n")
    return out
