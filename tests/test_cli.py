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


@pytest.mark.parametrize("argv, has, lacks", [
    (["warmstart", "--help"], ["warmstart.lr = 0.0003  learning rate", "policy.top_p = 0.92", "run_dir = "],
     ["rl.steps", "classifier.epochs"]),
    (["--stage", "rl", "-h"], ["rl.method = 'rloo'", "reinforce", "rewards.w_empathy = 1.0", "rl.lr = 0.0001"],
     ["warmstart.epochs"]),
    (["classifier", "--help"], ["classifier.epochs = 6  maximum epochs"], ["rl.steps"]),
])
def test_stage_help_lists_its_set_keys(argv, has, lacks, capsys):
    from partner.cli.train import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "--set" in out
    for text in has:
        assert text in out, text
    for text in lacks:
        assert text not in out, text
