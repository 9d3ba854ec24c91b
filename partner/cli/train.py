"""partner-train: the training pipeline and its stages.

Each stage is a function ``run(cfg: PartnerConfig, force: bool) -> Path`` in its own module,
listed in STAGES; a stage whose module does not exist yet reports "not implemented yet".
"""

from __future__ import annotations

import argparse
import importlib
import logging

from .common import NOT_IMPLEMENTED, add_common, add_config, not_implemented, run

log = logging.getLogger(__name__)

# stage -> (module, issue that delivers it); order is the pipeline order.
STAGES = {
    "classifier": ("partner.stages.classifier", "EPITOME empathy classifier"),
    "coherence": ("partner.stages.coherence", "Reward stack"),
    "reverse": ("partner.stages.reverse", "Reward stack"),
    "warmstart": ("partner.stages.warmstart", "PARTNER policy, sentence-level edits and the supervised warm start"),
    "rl": ("partner.stages.rl", "RL training"),
    # not part of the pipeline: learns from partner-ab ratings (run it by name)
    "preference": ("partner.stages.preference", "preference reward model"),
}
PIPELINE = ["classifier", "coherence", "reverse", "warmstart", "rl"]


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


def _stage_module(name: str):
    module, _ = STAGES[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def _main(args: argparse.Namespace) -> int:
    from partner.config import DEFAULT_CONFIG, load_config

    cfg = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    stage = args.stage or args.stage_opt
    for name in ([stage] if stage else PIPELINE):
        mod = _stage_module(name)
        if mod is None:
            status = not_implemented(f"partner-train {name}", STAGES[name][1])
            if stage or status == NOT_IMPLEMENTED:
                return status
        out = mod.run(cfg, force=args.force)
        log.info("stage %s: %s", name, out)
    return 0


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
