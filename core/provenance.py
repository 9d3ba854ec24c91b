"""Provenance for results files: the commit and the machine a figure was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit(cwd: str | Path = ROOT) -> str:
    """Short hash of HEAD (with ``-dirty`` when the tree has uncommitted changes), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=cwd, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=cwd, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def parse_benchmark_args(parser, argv, results: str, threads: int = 0):
    """Parse a benchmark script's arguments with the options every one of them has: ``--threads``
    (torch's threads; 0 keeps torch's default) and ``--out`` (the results file, without .md / .json;
    default benchmarks/results/``results``). Then log to stderr and set the threads."""
    import logging

    parser.add_argument("--threads", type=int, default=threads, help="torch threads (0 = torch's default)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / results),
                        help="results file, without its .md / .json suffix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args


def machine_info() -> dict:
    """Platform, Python, CPU count, torch version and threads, load average, GPU name if any."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def write_report(out, result: dict, lines: list[str], load: str) -> None:
    """A benchmark's results: ``out``.json (``result``) and ``out``.md (``lines``, then the machine, the
    ``load`` average text, the commit and the command), written atomically; the markdown is printed too."""
    from pathlib import Path

    from core.jsonio import atomic_write_json, atomic_write_text

    m = machine_info()
    lines = lines + ["", f"Machine: {m['platform']}, {m['cpu_count']} CPUs, torch {m.get('torch')} "
                         f"({m.get('torch_threads')} threads); 1-min load average {load}; commit {result['commit']}.",
                     "", f"Command: `{result['command']}`", ""]
    out = Path(out)
    atomic_write_json(out.with_suffix(".json"), result)
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))
