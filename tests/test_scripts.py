"""The shell scripts in scripts/: checked without training anything."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ablations_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "ablations.sh")], check=True)


def test_ablations_script_needs_a_complete_base_run(tmp_path):
    base = tmp_path / "run"
    (base / "warmstart").mkdir(parents=True)
    (base / "warmstart" / ".complete").write_text("{}\n")
    res = subprocess.run(["bash", str(ROOT / "scripts" / "ablations.sh"), str(base)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert f"{base}/rl/.complete is missing" in res.stderr
    assert not (tmp_path / "run-no-mi").exists()
