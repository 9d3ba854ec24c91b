"""scripts/audit_tally.py: counts per agent, the sign test, and a clear error for a bad label."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "audit_tally.py"


def _run(tmp_path, rows):
    f = tmp_path / "audit.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return subprocess.run([sys.executable, str(SCRIPT), str(f)], capture_output=True, text=True)


def test_counts_and_sign_test(tmp_path):
    rows = []
    for i in range(8):   # b is worse on all 8 items: two-sided p = 2 / 2**8
        rows += [{"line": i, "agent": "a", "label": "G"}, {"line": i, "agent": "b", "label": "M" if i % 2 else "H"}]
    rows += [{"line": 9, "agent": "a", "label": "N"}, {"line": 9, "agent": "b", "label": "N"}]
    out = _run(tmp_path, rows)
    assert out.returncode == 0, out.stderr
    assert "a: n=9 N1 G8 F0 M0 H0  misfit-or-harmful 0.0%" in out.stdout
    assert "b: n=9 N1 G0 F0 M4 H4  misfit-or-harmful 88.9%  harmful 44.4%" in out.stdout
    assert "a worse on 0, b worse on 8 of 9 items; exact sign test p 0.0078" in out.stdout


def test_no_discordant_items_means_no_test(tmp_path):
    # The toolkit's one sign test (partner.ab.stats) is undefined, not p = 1, without a discordant item.
    rows = [{"line": i, "agent": agent, "label": "G"} for i in range(3) for agent in ("a", "b")]
    out = _run(tmp_path, rows)
    assert out.returncode == 0, out.stderr
    assert "a worse on 0, b worse on 0 of 3 items; no discordant items, no sign test" in out.stdout


def test_bad_label_names_line_and_field(tmp_path):
    out = _run(tmp_path, [{"line": 1, "agent": "a", "label": "G"}, {"line": 1, "agent": "b", "label": "X"}])
    assert out.returncode != 0
    assert "audit.jsonl:2: field 'label'" in out.stderr
