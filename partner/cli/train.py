"""partner-train: the training pipeline and its stages."""

from __future__ import annotations

import argparse

from .common import add_common, add_config, not_implemented, run

STAGES = ("classifier", "coherence", "reverse", "warmstart", "rl")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partner-train",
        description="Train PARTNER end to end: classifier -> coherence -> reverse -> warmstart -> rl. "
                    "Without a stage name it runs the whole pipeline, skipping stages whose outputs "
                    "exist in run_dir; `partner-train STAGE` runs one stage.",
        epilog="Example: partner-train --config configs/default.yaml --set rl.steps=500",
    )
    p.add_argument("stage", nargs="?", choices=STAGES, help="run only this stage")
    p.add_argument("--stage", dest="stage_opt", choices=STAGES, help="same as the positional stage")
    p.add_argument("--force", action="store_true", help="retrain a stage even if its output exists")
    add_config(p)
    add_common(p)
    return p


def _main(args: argparse.Namespace) -> int:
    stage = args.stage or args.stage_opt
    return not_implemented(f"partner-train {stage or '(pipeline)'}",
                           "EPITOME empathy classifier" if stage == "classifier" else "RL training")


def main(argv=None) -> int:
    return run(_main, build_parser(), argv)
