import json

import pytest

from core.jsonio import DataError, atomic_write_json, process_jsonl, read_jsonl


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_read_jsonl_errors_and_passthrough(tmp_path):
    f = tmp_path / "in.jsonl"
    _write(f, [json.dumps({"id": "a", "seeker_post": "s", "response_post": "r", "extra": [1]}),
               "{not json", "", json.dumps([1, 2]), json.dumps({"seeker_post": "s"}),
               json.dumps({"seeker_post": "s", "response_post": None})])
    rows = list(read_jsonl(f))
    assert [r.line for r in rows] == [1, 2, 4, 5, 6]
    assert rows[0].data["extra"] == [1] and rows[0].error is None
    assert rows[1].error.line == 2 and "not valid JSON" in rows[1].error.message
    assert "expected a JSON object" in rows[2].error.message
    assert rows[3].error.field == "response_post" and "missing" in rows[3].error.message
    assert rows[4].error.field == "response_post" and "string" in rows[4].error.message
    with pytest.raises(DataError, match="line 2"):
        list(read_jsonl(f, strict=True))


def _upper(batch):
    out = []
    for rec in batch:
        if rec["response_post"] == "boom":
            raise RuntimeError("cannot handle boom")
        out.append({**rec, "upper": rec["response_post"].upper()})
    return out


def test_process_jsonl_every_line_yields_output_or_error(tmp_path):
    f, o = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(f, [json.dumps({"seeker_post": "s", "response_post": r}) for r in ["a", "boom", "c"]] + ["oops"])
    stats = process_jsonl(f, o, _upper, batch_size=2)
    out = [json.loads(x) for x in o.read_text().splitlines()]
    assert [x.get("upper") for x in out] == ["A", None, "C", None]
    assert out[1]["line"] == 2 and "boom" in out[1]["error"]
    assert out[3]["line"] == 4 and "not valid JSON" in out[3]["error"]
    assert stats.errors == 2 and stats.written == 4


def test_process_jsonl_resumes_after_torn_write(tmp_path):
    f, o = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(f, [json.dumps({"id": str(i), "seeker_post": "s", "response_post": f"r{i}"}) for i in range(5)])
    process_jsonl(f, o, _upper, batch_size=2)
    full = o.read_text()
    # Simulate a kill after two complete lines and half of the third.
    lines = full.splitlines(keepends=True)
    o.write_text(lines[0] + lines[1] + lines[2][:7])
    calls = []
    stats = process_jsonl(f, o, lambda b: calls.append(len(b)) or _upper(b), batch_size=2)
    assert o.read_text() == full
    assert stats.skipped == 2 and sum(calls) == 3


def test_process_jsonl_refuses_output_of_another_input(tmp_path):
    f, o = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(f, [json.dumps({"id": "x", "seeker_post": "s", "response_post": "r"})])
    o.write_text(json.dumps({"id": "other"}) + "\n")
    with pytest.raises(DataError, match="another input"):
        process_jsonl(f, o, _upper)
    process_jsonl(f, o, _upper, overwrite=True)
    assert json.loads(o.read_text())["upper"] == "R"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_messages_read_well(tmp_path):
    f = tmp_path / "in.jsonl"
    _write(f, ['{"seeker_post": "s", "response_post": "unterminated', json.dumps({"seeker_post": "s",
                                                                                "response_post": None})])
    rows = list(read_jsonl(f))
    assert " at at " not in rows[0].error.message and "column" in rows[0].error.message
    assert rows[1].error.message == "must be a string, got null"  # JSON's word, not NoneType
