"""Stage `reverse`: LoRA-tune the policy backbone on response -> seeker into ``run_dir/reverse``.

The adapter is p←(S | R̂) of the mutual-information reward (rewards/mi.py); the shipped model in
``models/reverse`` is a copy of this folder.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from classifiers.reverse import train
from core.jsonio import atomic_write_text

log = logging.getLogger(__name__)


def run(cfg, force: bool = False) -> Path:
    out = Path(cfg.run_dir) / "reverse"
    if (out / ".complete").exists() and not force:
        log.info("reverse: %s is complete; skipping (--force retrains)", out)
        return out
    if out.exists():
        shutil.rmtree(out)
    backbone = cfg.reverse.backbone or cfg.policy.backbone
    meta = train(cfg.reverse, backbone, out, data_dir=cfg.data_path(), split_seed=cfg.classifier.split_seed)
    ppl = meta["heldout_perplexity"]
    log.info("reverse: held-out perplexity of seeker posts %.2f untuned -> %.2f tuned (%d examples); saved to %s",
             ppl["untuned"], ppl["tuned"], meta["heldout_examples"], out)
    atomic_write_text(out / ".complete", "ok\n")
    return out
