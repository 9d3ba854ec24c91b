"""partner-train: the training pipeline and its stages.

Each stage is a function ``run(cfg: PartnerConfig, force: bool) -> Path`` in its own module under
``partner.stages``, listed in STAGES in pipeline order; a stage module is imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging

from partner.config import DEFAULT_CONFIG, load_config

from .common import add_common, add_config, run

log = logging.getLogger(__name__)

# stage -> module; the order is the pipeline order.
STAGES = {
    "classifier": "partner.stages.classifier",
    "coherence": "partner.stages.coherence",
    "reverse": "partner.stages.reverse",
    "warmstart": "partner.stages.warmstart",
    "rl": "partner.stages.rl",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partner-train",
        description="Train PARTNER end to end: classifier -> coherence -> reverse -> warmstart -> rl. "
                    "Without a stage name it runs the whole pipeline, skipping stages whose outputs "
                    "exist in run_dir; `partner-train STAGE` runs one stage.",
        epilog="Example: partner-train --config configs/default.yaml --set rl.steps=500",
    )
    p.add_argument("stage", nargs="?", choices=list(STAGES), help="run only this stage")
    p.add_argument("--stage", dest="stage_opt", choices=list(STAGES), help="same as the positional stage")
    p.add_argument("--force", action="store_true", help="retrain a stage even if its output exists")
    add_config(p)
    add_common(p)
    return p


def _main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    stage = args.stage or args.stage_opt
    for name in ([stage] if stage else list(STAGES)):
        out = importlib.import_module(STAGES[name]).run(cfg, force=args.force)
        log.info("stage %s: %s", name, out)
    return 0


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
