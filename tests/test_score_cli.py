"""partner-score: one output line per input line, in order, errors as records with line numbers."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from classifiers.config import EpitomeConfig
    from core.corpora import EpitomePair
    from classifiers.epitome_train import train

    pairs = [EpitomePair(f"s{i}", f"r{i}", f"I feel sad today ({i}).", "I'm sorry. What happened?",
                         {"ER": i % 3, "IP": 0, "EX": (i + 1) % 3}, {"ER": [(0, 10)] if i % 3 else [], "IP": [],
                                                                     "EX": [(11, 25)] if (i + 1) % 3 else []})
             for i in range(6)]
    out = tmp_path_factory.mktemp("tiny-epitome")
    cfg = EpitomeConfig(backbone="tiny-bert", max_len=16, train_layers=1, epochs=1, batch_size=3, finetune="none",
                        context_margin=0.0)
    train(cfg, out, data={"train": pairs, "dev": pairs[:2]}, max_steps=1)
    return out


def test_score_cli_keeps_order_and_reports_bad_lines(tmp_path, tiny_model):
    from partner.cli.score import main

    src = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": "a", "seeker_post": "I lost my job.", "response_post": "So sorry. What happened?"}),
        "{not json",
        json.dumps({"id": "c", "seeker_post": "I feel alone."}),
        "",
        json.dumps({"id": "d", "seeker_post": "Help.", "response_post": "", "extra": 7}),
        json.dumps({"id": "e", "seeker_post": "x", "response_post": 5}),
    ]
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    # 4: the run finished, with error records (README, "Input and output contract")
    assert main([str(src), "-o", str(out), "--model", str(tiny_model), "--batch-size", "2"]) == 4
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 5  # blank line skipped, every other line answered
    assert rows[0]["id"] == "a" and set(rows[0]["empathy"]) == {"ER", "IP", "EX", "total", "probs", "rationales"}
    assert rows[0]["empathy"]["total"] == sum(rows[0]["empathy"][m] for m in ("ER", "IP", "EX"))
    assert rows[1]["line"] == 2 and "JSON" in rows[1]["error"]
    assert rows[2]["line"] == 3 and rows[2]["field"] == "response_post"
    assert rows[3]["id"] == "d" and rows[3]["extra"] == 7 and "empathy" in rows[3]  # empty response scores
    assert rows[4]["line"] == 6 and rows[4]["field"] == "response_post"
    # a second run resumes: nothing new is appended, and the kept error records still count
    assert main([str(src), "-o", str(out), "--model", str(tiny_model), "--batch-size", "2"]) == 4
    assert len(out.read_text().splitlines()) == 5


def test_score_cli_missing_model_is_one_clear_error(tmp_path, capsys):
    from partner.cli.score import main

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"seeker_post": "a", "response_post": "b"}) + "\n")
    assert main([str(src), "--model", str(tmp_path / "nope")]) == 2
    assert "no EPITOME classifier" in capsys.readouterr().err


def test_score_cli_adds_preference(tmp_path, tiny_model):
    from classifiers.config import PreferenceConfig
    from classifiers.preference import PairExample, PreferenceModel, train
    from partner.cli.score import main

    pref = tmp_path / "pref"
    train(PreferenceConfig(backbone="tiny-bert", max_len=32, epochs=1, batch_size=2),
          [PairExample("I lost my job.", "That sounds hard.", "Whatever.")] * 4, pref, max_steps=1)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"seeker_post": "I lost my job.", "response_post": "That sounds hard."}) + "\n"
                   + json.dumps({"seeker_post": "I lost my job."}) + "\n"
                   + json.dumps({"seeker_post": "I lost my job.", "response_post": "Whatever."}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main([str(src), "-o", str(out), "--model", str(tiny_model), "--preference-model", str(pref)]) == 4  # a bad line
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and "error" in rows[1] and "preference" not in rows[1]
    model = PreferenceModel.from_pretrained(pref, device="cpu")
    want = model.score(["I lost my job."] * 2, ["That sounds hard.", "Whatever."])
    assert [rows[0]["preference"], rows[2]["preference"]] == pytest.approx(want, abs=1e-3)
    assert "empathy" in rows[0]
