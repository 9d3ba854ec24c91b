"""partner-train: the training pipeline and its stages.

Each stage is a function ``run(cfg: PartnerConfig, force: bool) -> Path`` in its own module,
listed in STAGES; a stage whose module does not exist yet reports "not implemented yet".
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .common import NOT_IMPLEMENTED, add_common, add_config, not_implemented, run

log = logging.getLogger(__name__)

# stage -> (module, issue that delivers it); order is the pipeline order.
STAGES = {
    "classifier": ("partner.stages.classifier", "EPITOME empathy classifier"),
    "coherence": ("partner.stages.coherence", "Reward stack"),
    "reverse": ("partner.stages.reverse", "Reward stack"),
    "warmstart": ("partner.stages.warmstart", "PARTNER policy, sentence-level edits and the supervised warm start"),
    "rl": ("partner.stages.rl", "RL training"),
}


# stage -> the config sections (or keys) it reads, for `partner-train STAGE --help`
STAGE_KEYS = {
    "classifier": ("classifier.",),
    "coherence": ("coherence.",),
    "reverse": ("reverse.", "policy.backbone"),
    "warmstart": ("warmstart.", "policy."),
    "rl": ("rl.", "rewards.", "policy."),
}


def stage_keys(stage: str) -> str:
    """The --set keys ``stage`` reads, with defaults and help (``configuration.describe``)."""
    from core.configuration import describe
    from partner.config import PartnerConfig

    lines = [line for line in describe(PartnerConfig)
             if "." not in line.split(" = ")[0] or line.startswith(STAGE_KEYS[stage])]
    return f"--set keys of the {stage} stage (KEY = default  help):\n" + "\n".join(f"  {line}" for line in lines)


def _stage_in(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg in STAGES:
            return arg
        if arg == "--stage" and i + 1 < len(argv) and argv[i + 1] in STAGES:
            return argv[i + 1]
        if arg.startswith("--stage=") and arg.split("=", 1)[1] in STAGES:
            return arg.split("=", 1)[1]
    return None


def build_parser(stage: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``stage``, its help ends with that stage's --set keys."""
    if stage:
        epilog = f"{stage_keys(stage)}\n\nExample: partner-train {stage} --config configs/default.yaml --set KEY=VALUE"
    else:
        epilog = ("Example: partner-train --config configs/default.yaml --set rl.steps=500\n"
                  "`partner-train STAGE --help` lists the --set keys of that stage.")
    p = argparse.ArgumentParser(
        prog="partner-train",
        description="Train PARTNER end to end: classifier -> coherence -> reverse -> warmstart -> rl. "
                    "Without a stage name it runs the whole pipeline, skipping stages whose outputs "
                    "exist in run_dir; `partner-train STAGE` runs one stage.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
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
    for name in ([stage] if stage else list(STAGES)):
        mod = _stage_module(name)
        if mod is None:
            status = not_implemented(f"partner-train {name}", STAGES[name][1])
            if stage or status == NOT_IMPLEMENTED:
                return status
        out = mod.run(cfg, force=args.force)
        log.info("stage %s: %s", name, out)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    wants_help = any(a in ("-h", "--help") for a in argv)
    return run(_main, build_parser(_stage_in(argv) if wants_help else None), argv)


if __name__ == "__main__":
    raise SystemExit(main())
