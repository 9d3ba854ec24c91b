"""partner-eval rewrites: several outputs side by side, JSON + markdown + PNGs, tiny models."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from partner import rewrite_jsonl as rw
from partner import rewriters
from partner.evaluation import rewrites as ev

from conftest import FakeScorer, write_jsonl

BIN = Path(sys.executable).parent

ROWS = [
    {"id": "1", "seeker_post": "I failed my exam again.", "response_post": "Study more.",
     "reference": "That sounds really hard for you. Study more."},
    {"id": "2", "seeker_post": "My dog died.", "response_post": "Get another dog. It helps.",
     "reference": "I'm so sorry about your dog. Get another dog."},
    {"id": "3", "seeker_post": "I feel alone.", "response_post": "Are you sorry? I understand.",
     "reference": "I understand."},
]


class FakeCoherence:
    def prob(self, a, b, batch_size=64):
        return [0.5] * len(a)


@pytest.fixture()
def outputs(tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, ROWS + ["{broken"])
    files = []
    for name, r in (("identity", rewriters.IdentityRewriter()), ("template", rewriters.TemplateRewriter("That sounds hard."))):
        rw.rewrite_file(inp, tmp_path / f"{name}.jsonl", r, FakeScorer(), batch_size=2)
        files.append(tmp_path / f"{name}.jsonl")
    return files


def run_eval(files, out, monkeypatch):
    monkeypatch.setattr(ev.Models, "coherence", lambda self: FakeCoherence())
    args = argparse.Namespace(files=[str(f) for f in files], out=str(out), config=None,
                              overrides=["rewards.reference_lm=tiny-gpt2", "rewrite.retrieval_embedder=tiny-bert"])
    assert ev.main(args) == 0
    return json.loads((out / "rewrites.json").read_text())


def test_eval_side_by_side(outputs, tmp_path, monkeypatch, capsys):
    report = run_eval(outputs, tmp_path / "eval", monkeypatch)
    ident, templ = report["rows"]
    assert ident["method"] == "identity" and templ["method"] == "template"
    assert ident["n"] == 3 and ident["errors"] == 1
    # identity: nothing changes
    assert ident["empathy"]["overall"] == 0 and ident["edit_rate"] == 0 and ident["changed"] == 0
    assert ident["coherence"] is None and ident["coherence_n"] == 0
    assert ident["specificity"] == pytest.approx(ident["specificity_original"])
    # template: FakeScorer gives ER=1 for "hard"; originals' totals are 0, 0, 3 ("sorry", "understand", "?")
    assert templ["empathy"]["by_level"]["0"] == {"mean": 1.0, "n": 2}
    assert templ["empathy"]["by_level"]["3"] == {"mean": 0.0, "n": 1}
    assert templ["empathy"]["overall"] == pytest.approx(2 / 3)
    # ... and all of it is ER: the per-mechanism changes add up to the total's
    mech = templ["empathy_by_mechanism"]
    assert mech["ER"]["mean"] == pytest.approx(2 / 3) and mech["IP"]["mean"] == 0 and mech["EX"]["mean"] == 0
    assert mech["ER"]["before"] == pytest.approx(1 / 3) and mech["ER"]["after"] == 1.0
    # edit rate: 4 inserted words ("that sounds hard .") over 3, 7 and 7 original words
    assert templ["edit_rate"] == pytest.approx((4 / 3 + 4 / 7 + 4 / 7) / 3)
    assert templ["edits_per_response"] == 1 and templ["coherence"] == 0.5 and templ["coherence_n"] == 3
    assert templ["edit_distance_by_level"]["0"]["mean"] == 4
    # distinct-2 falls when the same sentence is inserted everywhere
    assert templ["distinct_2"] < ident["distinct_2"]
    assert ident["bleu_n"] == 3 and templ["bleu"] > ident["bleu"]
    assert report["reference_lm"] == "tiny-gpt2" and ident["perplexity"] > 1
    assert ident["empathy"]["ci95"] == [0, 0] and "_items" not in templ
    # paired against the last file (template): identity gains 1 less on the two level-0 inputs
    (pair,) = report["paired"]
    assert pair["method"] == "identity" and pair["against"] == "template" and pair["n"] == 3
    assert pair["mean_diff"] == pytest.approx(-2 / 3) and (pair["better"], pair["same"], pair["worse"]) == (0, 1, 2)
    md = (tmp_path / "eval" / "rewrites.md").read_text()
    assert "| identity |" in md and "| template |" in md and "Fig. 4a" in md
    assert "| template | +0.667 [" in md  # the per-mechanism table's ER cell
    assert "minus that of template" in md and "| identity | 3 | -0.667 |" in md
    assert "| template |" in capsys.readouterr().out
    for png in ("empathy_by_level.png", "edits_by_level.png"):
        assert (tmp_path / "eval" / png).read_bytes()[:4] == b"\x89PNG"


def test_eval_without_empathy_or_coherence_reports_na(tmp_path, monkeypatch):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, ROWS)
    rw.rewrite_file(inp, tmp_path / "t.jsonl", rewriters.TemplateRewriter("Sorry."), None)
    monkeypatch.setattr(ev.Models, "empathy", lambda self: None)
    monkeypatch.setattr(ev.Models, "coherence", lambda self: None)
    args = argparse.Namespace(files=[str(tmp_path / "t.jsonl")], out=str(tmp_path / "e"), config=None,
                              overrides=["rewards.reference_lm=tiny-gpt2", "rewrite.retrieval_embedder=tiny-bert"])
    assert ev.main(args) == 0
    row = json.loads((tmp_path / "e" / "rewrites.json").read_text())["rows"][0]
    assert "empathy" not in row and "coherence" not in row and row["distinct_1"] > 0
    assert "n/a" in (tmp_path / "e" / "rewrites.md").read_text()


def test_eval_rejects_a_file_that_is_not_a_rewrite_output(tmp_path):
    bad = tmp_path / "x.jsonl"
    write_jsonl(bad, [{"seeker_post": "s", "response_post": "r"}])
    proc = subprocess.run([str(BIN / "partner-eval"), "rewrites", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "rewritten_response" in proc.stderr and "Traceback" not in proc.stderr


def test_files_scored_by_different_classifiers_are_rescored(outputs, tmp_path, monkeypatch):
    # Change the 'before' score of one file as an older classifier would have.
    ident = outputs[0]
    rows = [json.loads(x) for x in ident.read_text().splitlines()]
    rows[0]["empathy"]["before"]["total"] += 1
    ident.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert ev.scored_with_different_classifiers(outputs) == 1
    scorer = FakeScorer()
    monkeypatch.setattr(ev.Models, "empathy", lambda self: scorer)
    report = run_eval(outputs, tmp_path / "eval", monkeypatch)
    assert scorer.calls == [6, 6] and "re-scored" in report["notes"]["empathy"]
    assert report["rows"][0]["empathy"]["overall"] == 0


def test_eval_against_names_a_file_or_method(outputs, tmp_path, monkeypatch):
    monkeypatch.setattr(ev.Models, "coherence", lambda self: FakeCoherence())
    base = dict(files=[str(f) for f in outputs], config=None,
                overrides=["rewards.reference_lm=tiny-gpt2", "rewrite.retrieval_embedder=tiny-bert"])
    assert ev.main(argparse.Namespace(**base, out=str(tmp_path / "a"), against="identity")) == 0
    (pair,) = json.loads((tmp_path / "a" / "rewrites.json").read_text())["paired"]
    assert pair["method"] == "template" and pair["mean_diff"] == pytest.approx(2 / 3)
    proc = subprocess.run([str(BIN / "partner-eval"), "rewrites", *base["files"], "--against", "nope",
                           "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert proc.returncode == 2 and "--against 'nope'" in proc.stderr and "identity, template" in proc.stderr
    assert not (tmp_path / "b" / "rewrites.json").exists()


def test_a_held_out_judge_rescores_every_file(outputs, tmp_path, monkeypatch):
    class Judge(FakeScorer):
        """Another classifier: it only sees explorations (questions)."""

        def score(self, seekers, responses, **kw):
            out = super().score(seekers, responses, **kw)
            for o in out:
                o.total = o.levels["EX"]
            return out

    judge, specs = Judge(), []
    judge_dir = tmp_path / "judge"
    judge_dir.mkdir()
    monkeypatch.setattr(rw, "load_scorer", lambda spec="", device=None: specs.append(spec) or judge)
    monkeypatch.setattr(ev.Models, "coherence", lambda self: FakeCoherence())
    args = argparse.Namespace(files=[str(f) for f in outputs], out=str(tmp_path / "eval"), config=None,
                              scorer=str(judge_dir),
                              overrides=["rewards.reference_lm=tiny-gpt2", "rewrite.retrieval_embedder=tiny-bert"])
    assert ev.main(args) == 0
    report = json.loads((tmp_path / "eval" / "rewrites.json").read_text())
    assert specs == [str(judge_dir)] and judge.calls == [6, 6]
    # the files' own scorer gives the template +1 (ER from "hard"); the judge sees no change
    assert [r["empathy"]["overall"] for r in report["rows"]] == [0, 0]
    assert report["empathy_classifier"] == str(judge_dir) and "--scorer" in report["notes"]["empathy"]
    proc = subprocess.run([str(BIN / "partner-eval"), "rewrites", *args.files, "--scorer", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- partner-eval stock


def test_stock_sentences_ranked_by_what_they_buy():
    from partner.evaluation import stock

    pairs = [(r["seeker_post"], r["response_post"]) for r in ROWS]
    res = stock.measure(FakeScorer(), pairs, ["That is hard. What happened?", "Okay.", "I understand."],
                        positions=("start", "end"))
    assert [(r["sentence"], r["at"]) for r in res["rows"]][:2] == [("That is hard. What happened?", "start"),
                                                                  ("That is hard. What happened?", "end")]
    best = res["rows"][0]
    # the lexicon scorer: "hard" -> ER, "?" -> EX; row 3 already has both, rows 1 and 2 have neither
    assert best["mean"] == pytest.approx(4 / 3) and best["by_mechanism"] == {"ER": 2 / 3, "IP": 0.0, "EX": 2 / 3}
    assert best["at_zero"] == {"mean": 2.0, "n": 2}
    assert res["rows"][-1]["mean"] == 0.0 and res["before_mean"] == pytest.approx(1.0)


def test_stock_command_reports_bad_lines_and_writes_reports(tmp_path, monkeypatch, capsys):
    from partner.evaluation import stock

    inp = tmp_path / "dev.jsonl"
    write_jsonl(inp, [ROWS[0], {"id": "x", "seeker_post": "hi"}, "not json", ROWS[1]])
    monkeypatch.setattr(rw, "load_scorer", lambda spec="", device=None: FakeScorer())
    args = argparse.Namespace(input=str(inp), sentences=["I'm sorry.", "Why?"], at=["start"], model=None,
                              batch_size=8, out=str(tmp_path / "out"))
    assert stock.main(args) == 0
    report = json.loads((tmp_path / "out" / "stock.json").read_text())
    assert report["n"] == 2 and report["errors"] == 2
    assert [(e["line"], e["field"]) for e in report["error_records"]] == [(2, "response_post"), (3, None)]
    assert [r["sentence"] for r in report["rows"]] == ["I'm sorry.", "Why?"]
    md = (tmp_path / "out" / "stock.md").read_text()
    assert "Strongest: \"I'm sorry.\"" in md and md in capsys.readouterr().out
    empty = tmp_path / "empty.jsonl"
    write_jsonl(empty, ["[1]"])
    proc = subprocess.run([str(BIN / "partner-eval"), "stock", str(empty)], capture_output=True, text=True)
    assert proc.returncode != 0 and "no usable" in proc.stderr and "Traceback" not in proc.stderr


def test_export_dev_split_is_disjoint_from_test(data_dir, tmp_path):
    dev, test = tmp_path / "dev.jsonl", tmp_path / "test.jsonl"
    n_dev, n_test = ev.export_inputs("epitome-dev", dev), ev.export_inputs("epitome-test", test)
    ids = lambda p: {json.loads(line)["id"].split("/")[0] for line in p.read_text().splitlines()}  # noqa: E731
    assert n_dev > 100 and n_test > 100 and not ids(dev) & ids(test)


class ContextScorer:
    """ER when the response shares a word (3+ letters) with the seeker post, EX for a question."""

    def score(self, seekers, responses, batch_size=32, rationales=True, progress=False):
        def words(t):
            return {w.strip(".,?!").lower() for w in t.split() if len(w.strip(".,?!")) >= 3}

        out = []
        for s, r in zip(seekers, responses):
            levels = {"ER": int(bool(words(s) & words(r))), "IP": 0, "EX": int("?" in r)}
            out.append(argparse.Namespace(levels=levels, total=sum(levels.values())))
        return out


def test_context_check_separates_a_post_specific_gain_from_one_paid_for_form():
    seekers = ["My dog died.", "I failed my exam again.", "I feel alone."]
    originals = ["Get another.", "Study more.", "Ok."]
    # 1 fits its post (names the dog), 2 adds a question that would score under any post, 3 is unchanged
    rewrites = ["Sorry about your dog. Get another.", "What now? Study more.", "Ok."]
    c = ev.context_check(seekers, originals, rewrites, ContextScorer())
    assert c["n"] == 3
    assert c["gain_own"] == pytest.approx(2 / 3) and c["gain_unrelated"] == pytest.approx(1 / 3)
    t = c["post_specific"]
    assert t["mean_diff"] == pytest.approx(1 / 3) and (t["better"], t["same"], t["worse"]) == (1, 2, 0)
    # own-post totals the caller already has are reused: only the unrelated posts are scored
    calls = []
    counting = ContextScorer()
    counting.score = lambda s, r, **kw: calls.append(len(r)) or ContextScorer.score(counting, s, r, **kw)
    reused = ev.context_check(seekers, originals, rewrites, counting, ([0, 0, 0], [1, 1, 0]))
    assert calls == [6] and reused == c
    # one post for every input: no unrelated post to swap in
    assert ev.context_check(["Same."] * 2, originals[:2], rewrites[:2], ContextScorer())["n"] == 0


def test_eval_context_check_flag_reports_a_context_free_gain(outputs, tmp_path, monkeypatch):
    monkeypatch.setattr(ev.Models, "empathy", lambda self: FakeScorer())
    monkeypatch.setattr(ev.Models, "coherence", lambda self: FakeCoherence())
    out = tmp_path / "eval"
    args = argparse.Namespace(files=[str(f) for f in outputs], out=str(out), config=None, context_check=True,
                              overrides=["rewards.reference_lm=tiny-gpt2", "rewrite.retrieval_embedder=tiny-bert"])
    assert ev.main(args) == 0
    ident, templ = json.loads((out / "rewrites.json").read_text())["rows"]
    # the lexicon scorer ignores the post: the template's gain is the same under any post
    assert templ["context_check"]["gain_own"] == templ["context_check"]["gain_unrelated"] > 0
    assert templ["context_check"]["post_specific"]["mean_diff"] == 0
    assert ident["context_check"]["gain_own"] == 0
    assert "Does the gain depend on the seeker post?" in (out / "rewrites.md").read_text()
    monkeypatch.setattr(ev.Models, "empathy", lambda self: None)
    with pytest.raises(FileNotFoundError, match="--context-check needs an empathy classifier"):
        ev.main(args)
