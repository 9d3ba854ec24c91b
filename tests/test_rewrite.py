"""partner-rewrite end to end: output format, scoring, bad lines, odd inputs, resume, determinism."""

import subprocess
import sys
from pathlib import Path

import pytest

from partner import rewrite_jsonl as rw
from partner import rewriters
from partner.edits import apply_edits
from partner.cli import rewrite as cli

from conftest import LONG, ODD, FakeScorer, read_jsonl, write_jsonl

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "low-empathy.jsonl"

def test_console_script_identity_keeps_fields_and_order(tmp_path):
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([str(BIN / "partner-rewrite"), str(EXAMPLES), "-o", str(out), "--method", "identity",
                           "--scorer", "none"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "lines/s" in proc.stderr  # a progress bar with a rate
    inp, got = read_jsonl(EXAMPLES), read_jsonl(out)
    assert [g["id"] for g in got] == [i["id"] for i in inp]
    for i, g in zip(inp, got):
        assert {k: g[k] for k in i} == i
        assert g["rewritten_response"] == i["response_post"] and g["edits"] == [] and g["empathy"] is None
        assert g["method"] == "identity"


def test_cli_template_with_scorer_writes_empathy_before_after(tmp_path, monkeypatch):
    scorer = FakeScorer()
    monkeypatch.setattr(rw, "load_scorer", lambda spec="", device=None: scorer)
    out = tmp_path / "out.jsonl"
    assert cli.main([str(EXAMPLES), "-o", str(out), "--method", "template", "--batch-size", "3"]) == 0
    got = read_jsonl(out)
    assert len(got) == 8 and scorer.calls == [6, 6, 4]  # originals and rewrites scored in one call per batch
    for g in got:
        assert g["rewritten_response"] == "That must be really hard for you. " + g["response_post"]
        assert g["edits"] == [{"action": "insert", "position": 0, "sentence": "That must be really hard for you."}]
        assert g["empathy"]["after"]["ER"] == 1 and g["empathy"]["after"]["total"] >= g["empathy"]["before"]["total"]
    assert cli.main([str(EXAMPLES), "-o", str(out), "--method", "template", "--set",
                     "rewrite.template=I hear you.", "--overwrite"]) == 0
    assert read_jsonl(out)[0]["edits"][0]["sentence"] == "I hear you."


def test_bad_lines_become_error_records_and_the_run_goes_on(tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [
        {"id": "a", "seeker_post": "s", "response_post": "r."},
        "{not json",
        {"id": "c", "seeker_post": "s"},
        {"id": "d", "seeker_post": "s", "response_post": 5},
        "[1, 2]",
        {"id": "f", "seeker_post": "s", "response_post": "r."},
    ])
    out = tmp_path / "out.jsonl"
    stats = rw.rewrite_file(inp, out, rewriters.TemplateRewriter("Sorry."), FakeScorer(), batch_size=4)
    got = read_jsonl(out)
    assert stats.errors == 4 and len(got) == 6
    assert [g.get("line") for g in got] == [None, 2, 3, 4, 5, None]
    assert got[2]["field"] == "response_post" and "missing" in got[2]["error"]
    assert got[3]["field"] == "response_post" and "string" in got[3]["error"]
    assert [g.get("id") for g in got] == ["a", None, "c", "d", None, "f"]  # a field error keeps its line's id
    assert got[0]["rewritten_response"] == got[5]["rewritten_response"] == "Sorry. r."


class FlakyRewriter(rewriters.TemplateRewriter):
    """Raises on one record, so its batch is retried one record at a time."""

    def rewrite(self, seekers, responses, seed=None):
        if "boom" in responses:
            raise RuntimeError("cannot rewrite this one")
        return super().rewrite(seekers, responses, seed)


def test_a_record_that_fails_does_not_take_its_batch_down(tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"id": str(i), "seeker_post": "s", "response_post": r} for i, r in enumerate(["a.", "boom", "c."])])
    out = tmp_path / "out.jsonl"
    rw.rewrite_file(inp, out, FlakyRewriter("Sorry."), None, batch_size=3)
    got = read_jsonl(out)
    assert got[0]["rewritten_response"] == "Sorry. a." and got[2]["rewritten_response"] == "Sorry. c."
    assert {k: v for k, v in got[1].items() if not k.startswith("_")} == {
        "id": "1", "line": 2, "field": None, "error": "RuntimeError: cannot rewrite this one"}


def test_odd_inputs_with_template(tmp_path):
    inp = tmp_path / "odd.jsonl"
    write_jsonl(inp, ODD)
    out = tmp_path / "out.jsonl"
    stats = rw.rewrite_file(inp, out, rewriters.TemplateRewriter("That sounds hard."), FakeScorer(), batch_size=4)
    got = read_jsonl(out)
    assert stats.errors == 1 and [g["id"] for g in got] == [o["id"] for o in ODD]
    by_id = {g["id"]: g for g in got}
    # an empty seeker post is an error record, not rewritten: there is nothing to be empathic about
    assert by_id["blank-seeker"]["field"] == "seeker_post" and "rewritten_response" not in by_id["blank-seeker"]
    assert by_id["empty"]["rewritten_response"] == "That sounds hard."
    assert by_id["emoji"]["rewritten_response"] == "That sounds hard. oof 😬 that sucks 🙏"
    assert by_id["zh"]["rewritten_response"].endswith("多运动就好了。")
    assert "😭😭💔" in out.read_text(encoding="utf-8")  # written as UTF-8, not escaped
    assert by_id["long"]["rewritten_response"] == "That sounds hard. " + LONG


class CountingRewriter(rewriters.TemplateRewriter):
    def __init__(self, *a, die_after=None, **k):
        super().__init__(*a, **k)
        self.seen, self.die_after = [], die_after

    def rewrite(self, seekers, responses, seed=None):
        if self.die_after is not None and len(self.seen) >= self.die_after:
            raise KeyboardInterrupt  # a kill between batches
        self.seen.extend(responses)
        return super().rewrite(seekers, responses, seed)


def test_resume_after_a_kill_loses_nothing_and_redoes_nothing(tmp_path):
    inp = tmp_path / "in.jsonl"
    rows = [{"id": f"r{i}", "seeker_post": f"s{i}", "response_post": f"Response {i}."} for i in range(10)]
    write_jsonl(inp, rows)
    clean = tmp_path / "clean.jsonl"
    rw.rewrite_file(inp, clean, rewriters.TemplateRewriter("Sorry."), None, batch_size=3)

    out = tmp_path / "out.jsonl"
    first = CountingRewriter("Sorry.", die_after=6)
    with pytest.raises(KeyboardInterrupt):
        rw.rewrite_file(inp, out, first, None, batch_size=3)
    assert len(read_jsonl(out)) == 6  # two whole batches were written before the kill
    with open(out, "a", encoding="utf-8") as fh:
        fh.write('{"id": "r6", "seeker_po')  # and a line torn by the kill
    second = CountingRewriter("Sorry.")
    stats = rw.rewrite_file(inp, out, second, None, batch_size=3)
    assert stats.skipped == 6 and second.seen == [f"Response {i}." for i in range(6, 10)]
    assert out.read_text() == clean.read_text()
    # a finished output is skipped entirely
    third = CountingRewriter("Sorry.")
    assert rw.rewrite_file(inp, out, third, None, batch_size=3).skipped == 10 and third.seen == []


def test_resume_refuses_an_output_of_another_input(tmp_path):
    from core.jsonio import DataError

    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"id": "x", "seeker_post": "s", "response_post": "r"}])
    out = tmp_path / "out.jsonl"
    write_jsonl(out, [{"id": "other", "rewritten_response": "?"}])
    with pytest.raises(DataError, match="another input"):
        rw.rewrite_file(inp, out, rewriters.IdentityRewriter(), None)


@pytest.mark.slow
def test_unavailable_method_or_scorer_is_one_clear_line(tmp_path):
    proc = subprocess.run([str(BIN / "partner-rewrite"), str(EXAMPLES), "-o", str(tmp_path / "o.jsonl"),
                           "--method", "warmstart", "--model", str(tmp_path / "none"), "--scorer", "none"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no trained policy" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([str(BIN / "partner-rewrite"), str(EXAMPLES), "-o", str(tmp_path / "o.jsonl"),
                           "--method", "identity", "--scorer", str(tmp_path / "no-classifier")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--scorer none" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.fixture(scope="module")
def tiny_zeroshot():
    # A random 2-layer GPT-2 (no chat template: the plain prompt), sampled, short contexts.
    return rewriters.ZeroShotRewriter("tiny-gpt2", decoding="sample", max_new_tokens=8, max_input_tokens=64)


@pytest.mark.slow
def test_zeroshot_seed_makes_sampling_deterministic(tmp_path, tiny_zeroshot):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"id": str(i), "seeker_post": f"I feel bad about thing {i}.", "response_post": "Cheer up."}
                      for i in range(3)])
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        rw.rewrite_file(inp, tmp_path / f"{name}.jsonl", tiny_zeroshot, None, batch_size=3, seed=seed)
        runs[name] = [g["rewritten_response"] for g in read_jsonl(tmp_path / f"{name}.jsonl")]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]
    for g in read_jsonl(tmp_path / "a.jsonl"):
        assert apply_edits(g["response_post"], g["edits"]) == g["rewritten_response"]
        assert all(e["action"] == "insert" for e in g["edits"])


def test_zeroshot_handles_odd_inputs_in_one_batch(tmp_path, tiny_zeroshot):
    # The long input is clipped to max_input_tokens; tiny-gpt2 has only 512 positions.
    inp = tmp_path / "odd.jsonl"
    write_jsonl(inp, ODD)
    stats = rw.rewrite_file(inp, tmp_path / "out.jsonl", tiny_zeroshot, FakeScorer(), batch_size=len(ODD), seed=0)
    got = read_jsonl(tmp_path / "out.jsonl")
    assert stats.errors == 1 and [g["id"] for g in got] == [o["id"] for o in ODD]
    assert all(g["rewritten_response"].endswith(g["response_post"].strip()) for g in got if g["id"] != "blank-seeker")


def test_default_output_name():
    assert cli.default_output("data/x.jsonl") == Path("data/x.rewritten.jsonl")
    assert cli.default_output("x.txt") == Path("x.txt.rewritten.jsonl")


POLICY_SETS = ["--set", "policy.backbone=tiny-gpt2", "--set", "policy.max_sentence_tokens=6",
               "--set", "policy.max_context_tokens=32", "--set", "rewrite.candidates=1",
               "--set", "rewrite.pool=[policy]"]


@pytest.mark.slow
def test_policy_methods_through_the_cli(tmp_path, tiny_policy, monkeypatch):
    scorer = FakeScorer()
    monkeypatch.setattr(rw, "load_scorer", lambda spec="", device=None: scorer)
    inp = tmp_path / "in.jsonl"
    multi = "Oh no.\n\nHere is what helped me:\n- walking\n- sleep\n\nTake care"
    write_jsonl(inp, ODD[:1] + [{"id": "3", "seeker_post": "I feel alone.", "response_post": "One. Two. Three."},
                                {"id": "4", "seeker_post": "I feel alone.", "response_post": multi}])
    out = tmp_path / "cli.jsonl"
    assert cli.main([str(inp), "-o", str(out), "--method", "partner", "--model", str(tiny_policy),
                     "--decoding", "sample", "--seed", "1"] + POLICY_SETS) == 0
    got = read_jsonl(out)
    assert [g["method"] for g in got] == ["partner"] * 3 and any(g["edits"] for g in got)
    for g in got:
        # the text outside the edited sentences is the original's, newlines and ':' included
        assert apply_edits(g["response_post"], g["edits"]) == g["rewritten_response"]
        if not any(e["action"] == "replace" for e in g["edits"]):
            assert g["rewritten_response"].count("\n") == g["response_post"].count("\n")
        assert set(g["empathy"]) == {"before", "after"}
        for e in g["edits"]:
            assert set(e) == {"action", "position", "sentence"} and e["action"] in ("insert", "replace")
            assert isinstance(e["position"], int) and isinstance(e["sentence"], str)
    # the same seed gives the same rewrites, another seed others
    from partner.config import load_config

    cfg = load_config(None, [s for s in POLICY_SETS if s != "--set"] + ["rewrite.decoding=sample"])
    warm = rewriters.build_rewriter("warmstart", cfg, model=str(tiny_policy))
    texts = {}
    for name, seed in (("a", 1), ("c", 2)):
        rw.rewrite_file(inp, tmp_path / f"{name}.jsonl", warm, None, seed=seed)
        texts[name] = [g["rewritten_response"] for g in read_jsonl(tmp_path / f"{name}.jsonl")]
    assert texts["a"] == [g["rewritten_response"] for g in got]
    assert texts["a"] != texts["c"]


@pytest.mark.slow
def test_cli_with_the_shipped_classifier(tmp_path):
    from partner.config import SHIPPED_MODELS

    if not (SHIPPED_MODELS / "epitome" / "config.json").exists():
        pytest.skip("no shipped EPITOME classifier in models/epitome yet")
    out = tmp_path / "out.jsonl"
    assert cli.main([str(EXAMPLES), "-o", str(out), "--method", "template"]) == 0
    got = read_jsonl(out)
    assert len(got) == 8
    for g in got:
        for side in ("before", "after"):
            e = g["empathy"][side]
            assert e["total"] == e["ER"] + e["IP"] + e["EX"] and 0 <= e["total"] <= 6
            assert all(abs(sum(e["probs"][m]) - 1) < 1e-3 for m in ("ER", "IP", "EX"))
    # the classifier reads the inserted emotional reaction somewhere
    assert any(g["empathy"]["after"]["ER"] > g["empathy"]["before"]["ER"] for g in got)
