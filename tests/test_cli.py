import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
COMMANDS = ["partner-train", "partner-rewrite", "partner-score", "partner-eval", "partner-ab", "partner-serve"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_works(cmd):
    out = subprocess.run([str(BIN / cmd), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage:" in out.stdout and len(out.stdout) > 200


def test_config_errors_are_one_clear_line(tmp_path):
    out = subprocess.run([str(BIN / "partner-train"), "classifier", "--set", "classifier.nope=1"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown key" in out.stderr and "Traceback" not in out.stderr
