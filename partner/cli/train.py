"""partner-train: the training pipeline and its stages.

Each stage is a function ``run(cfg: PartnerConfig, force: bool) -> Path`` in its own module under
``partner.stages``, listed in STAGES in pipeline order; a stage module is imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from core.configuration import describe
from partner.config import DEFAULT_CONFIG, PartnerConfig, load_config

from .common import add_common, add_config, run

log = logging.getLogger(__name__)

# stage -> module; the order is the pipeline order.
STAGES = {
    "classifier": "partner.stages.classifier",
    "coherence": "partner.stages.coherence",
    "reverse": "partner.stages.reverse",
    "warmstart": "partner.stages.warmstart",
    "rl": "partner.stages.rl",
    "micromodels": "partner.stages.micromodels",
    "preference": "partner.stages.preference",
}
OUT_OF_PIPELINE = {"micromodels", "preference"}  # baselines and the ratings-learned reward: run only when named

# stage -> the config sections (or keys) it reads, for `partner-train STAGE --help`
STAGE_KEYS = {
    "classifier": ("classifier.",),
    "coherence": ("coherence.",),
    "reverse": ("reverse.", "policy.backbone"),
    "warmstart": ("warmstart.", "policy."),
    "rl": ("rl.", "rewards.", "policy."),
    "micromodels": ("classifier.",),
    "preference": ("preference.",),
}


def stage_keys(stage: str) -> str:
    """The --set keys ``stage`` reads, with defaults and help (``configuration.describe``)."""
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


def _main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    stage = args.stage or args.stage_opt
    for name in ([stage] if stage else [s for s in STAGES if s not in OUT_OF_PIPELINE]):
        out = importlib.import_module(STAGES[name]).run(cfg, force=args.force)
        log.info("stage %s: %s", name, out)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    wants_help = any(a in ("-h", "--help") for a in argv)
    return run(_main, build_parser(_stage_in(argv) if wants_help else None), argv)


if __name__ == "__main__":
    raise SystemExit(main())
