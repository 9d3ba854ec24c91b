"""What every console script shares: logging, offline defaults, errors as one clear line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

from core.configuration import ConfigError
from core.jsonio import DataError, UsageError
from core.registry import ModelResolutionError

def setup(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set policy.top_p=0.9 (repeatable)")


def process_device(device: str | None) -> str | None:
    """``device``, else under a multi-process launch with GPUs this process's own (cuda:LOCAL_RANK),
    else None (the best available)."""
    if device or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return device
    import torch

    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"


def run(main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse, set up logging, run; known errors become one line on stderr and exit status 2 (a run that
    finished with error records exits with core.jsonio.EXIT_LINE_ERRORS)."""
    args = parser.parse_args(argv)
    setup(getattr(args, "verbose", False))
    try:
        return int(main(args) or 0)
    except (DataError, UsageError, ConfigError, ModelResolutionError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
