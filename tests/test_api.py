"""The public Python API (partner.api): light to import, and the README's five-line example runs."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# The example in partner/api.py's docstring (and the README), line for line.
EXAMPLE = """\
from partner import EmpathyScorer, Rewriter
rewriter = Rewriter.from_pretrained("models/policy_rl")
result = rewriter.rewrite("I lost my job and I feel useless.", "You will find another one.")
scorer = EmpathyScorer.from_pretrained("models/epitome")
print(result.text, result.edits, scorer.score([result.seeker_post], [result.text])[0].total)
"""


def test_import_partner_is_light_and_the_api_names_resolve_lazily():
    code = ("import sys, partner; assert 'partner.api' not in sys.modules and 'torch' not in sys.modules; "
            "from partner import EmpathyScorer, Rewriter, RewardStack, Rewrite; "
            "assert 'torch' not in sys.modules, 'the API classes load models only when asked'; "
            "assert all(hasattr(c, 'from_pretrained') and c.__doc__ for c in (EmpathyScorer, Rewriter, RewardStack)); "
            "import partner.edits")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        import partner
        partner.Nope  # noqa: B018


def test_the_example_is_the_one_the_api_docstring_shows():
    from partner import api

    assert "\n".join("    " + line for line in EXAMPLE.splitlines()) in api.__doc__


def test_rewriter_wraps_a_method_and_returns_rewrites_with_edits():
    from partner import Rewrite, Rewriter
    from partner.edits import apply_edits

    rw = Rewriter.from_pretrained(method="template", overrides=["rewrite.template=I hear you."])
    one = rw.rewrite("I lost my job.", "You will find another one.")
    assert one == Rewrite("I lost my job.", "You will find another one.", "I hear you. You will find another one.",
                          [{"action": "insert", "position": 0, "sentence": "I hear you."}])
    assert apply_edits(one.response, one.edits) == one.text
    assert [r.text for r in rw.rewrite(["a", "b"], ["One.", "Two."])] == ["I hear you. One.", "I hear you. Two."]


@pytest.mark.slow
def test_the_five_line_example_runs_on_the_shipped_models():
    proc = subprocess.run([sys.executable, "-c", EXAMPLE], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert "You will find another one." in line and line.rstrip()[-1].isdigit()  # text, edits, a 0..6 total
