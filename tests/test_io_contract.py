"""The input/output contract every console script shares (README, "Input and output contract"),
tried the way a hostile user would: issue 27."""

import json
import os
import threading

import pytest

from core import jsonio
from core.jsonio import DataError, process_jsonl
from partner.cli import rewrite as rewrite_cli
from partner.cli import score as score_cli


def _rec(i, text=None, **extra):
    return {"id": str(i), "seeker_post": "I feel alone.", "response_post": text or f"reply {i}", **extra}


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x]


def _upper(batch):
    return [{**r, "upper": r["response_post"].upper()} for r in batch]


def _rewrite(inp, out, *extra):
    return rewrite_cli.main([str(inp), "-o", str(out), "--method", "identity", "--scorer", "none", *extra])


# 1. the output is never the input


@pytest.mark.parametrize("how", ["same", "hardlink", "symlink"])
def test_output_that_is_the_input_is_refused(tmp_path, how, capsys):
    inp = tmp_path / "in.jsonl"
    _write(inp, [_rec(1), _rec(2)])
    before = inp.read_bytes()
    out = inp
    if how == "hardlink":
        out = tmp_path / "link.jsonl"
        os.link(inp, out)
    elif how == "symlink":
        out = tmp_path / "sym.jsonl"
        out.symlink_to(inp)
    for extra in ([], ["--overwrite"]):
        assert _rewrite(inp, out, *extra) == 2
        assert "is the input" in capsys.readouterr().err
        assert inp.read_bytes() == before


# 2. and 7. every input line, decodable or not, yields exactly one output line in order


def test_undecodable_bytes_bom_and_lone_cr_each_stay_one_line(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = [json.dumps(_rec(i)).encode() for i in range(4)]
    latin1 = json.dumps(_rec(9, "caf\u00e9"), ensure_ascii=False).encode("latin-1")
    with_cr = b'{"id": "cr", "seeker_post": "a\rb", "response_post": "c\rd"}'
    inp.write_bytes(b"\xef\xbb\xbf" + good[0] + b"\n" + latin1 + b"\n" + with_cr + b"\r\n" + good[1] + b"\n")
    stats = process_jsonl(inp, out, _upper)
    got = _lines(out)
    assert len(got) == 4 and stats.errors == 1
    assert got[0]["upper"] == "REPLY 0"  # the BOM is stripped
    assert got[1]["line"] == 2 and "UTF-8" in got[1]["error"]
    assert got[2]["upper"] == "C\rD"  # a lone CR inside a line is not a line break
    assert got[3]["upper"] == "REPLY 1" and "line" not in got[3]


def test_undecodable_line_through_the_console_scripts(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_bytes(json.dumps(_rec(1)).encode() + b"\n" + b'{"id": "2", "seeker_post": "\xff"}\n')
    assert _rewrite(inp, out) == jsonio.EXIT_LINE_ERRORS
    got = _lines(out)
    assert got[0]["rewritten_response"] == "reply 1" and got[1]["line"] == 2
    assert "UTF-8" in got[1]["error"]


# 3. resume verifies every kept line


def test_resume_refuses_an_inserted_line_without_ids(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"seeker_post": "s", "response_post": f"r{i}"} for i in range(3)]
    _write(inp, rows)
    process_jsonl(inp, out, _upper)
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:2]))  # an interrupted run
    _write(inp, [{"seeker_post": "s", "response_post": "new"}] + rows)
    with pytest.raises(DataError, match="line 1.*does not match input line 1"):
        process_jsonl(inp, out, _upper)


def test_resume_refuses_the_same_id_with_changed_text(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_rec(1), _rec(2)])
    process_jsonl(inp, out, _upper)
    _write(inp, [_rec(1, "changed"), _rec(2), _rec(3)])
    with pytest.raises(DataError, match="does not match input line 1"):
        process_jsonl(inp, out, _upper)


def test_resume_refuses_another_method(tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_rec(1), _rec(2)])
    assert _rewrite(inp, out) == 0
    out.write_text(out.read_text().splitlines(keepends=True)[0])
    assert rewrite_cli.main([str(inp), "-o", str(out), "--method", "template", "--scorer", "none"]) == 2
    assert "another method or config" in capsys.readouterr().err
    assert len(_lines(out)) == 1


def test_resume_refuses_a_score_output(tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_rec(1), _rec(2)])
    process_jsonl(inp, out, _upper, run_key={"command": "partner-score"})
    assert _rewrite(inp, out) == 2
    assert "another method or config" in capsys.readouterr().err


def test_resume_refuses_an_output_without_hashes(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_rec(1), _rec(2)])
    _write(out, [{**_rec(1), "upper": "X"}])
    with pytest.raises(DataError, match="_input_sha"):
        process_jsonl(inp, out, _upper)


def test_resume_of_the_same_run_is_byte_identical(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_rec(i) for i in range(5)])
    process_jsonl(inp, out, _upper, batch_size=2)
    full = out.read_bytes()
    out.write_bytes(b"".join(full.splitlines(keepends=True)[:3]))
    stats = process_jsonl(inp, out, _upper, batch_size=2)
    assert out.read_bytes() == full and stats.skipped == 3


# 6. the output is locked while a run writes it


def test_a_second_run_onto_a_locked_output_is_refused(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_rec(i) for i in range(4)])
    started, release = threading.Event(), threading.Event()
    errors = []

    def slow(batch):
        started.set()
        release.wait(10)
        return _upper(batch)

    t = threading.Thread(target=lambda: process_jsonl(inp, out, slow, batch_size=4))
    t.start()
    assert started.wait(10)
    try:
        with pytest.raises(jsonio.UsageError, match="another run is writing"):
            process_jsonl(inp, out, _upper)
    except BaseException as exc:  # noqa: BLE001 - release the first run before failing
        errors.append(exc)
    release.set()
    t.join()
    if errors:
        raise errors[0]
    assert len(_lines(out)) == 4


# 10. --overwrite replaces the old output only once the new one is complete


def test_overwrite_keeps_the_old_output_until_the_new_one_is_complete(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_rec(i) for i in range(4)])
    process_jsonl(inp, out, _upper)
    old = out.read_bytes()

    def dies(batch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        process_jsonl(inp, out, dies, overwrite=True, batch_size=2)
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["in.jsonl", "out.jsonl"]
    process_jsonl(inp, out, lambda b: [{**r, "upper": "new"} for r in b], overwrite=True)
    assert [g["upper"] for g in _lines(out)] == ["new"] * 4


# 8. non-zero exit status when any line failed


def test_exit_status_says_whether_any_line_failed(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, ["{broken", "[1]"])
    assert _rewrite(inp, out) == jsonio.EXIT_LINE_ERRORS == 4
    assert all("error" in g for g in _lines(out))
    # a resumed run that finds the failed lines already there says so too
    assert _rewrite(inp, out) == jsonio.EXIT_LINE_ERRORS
    _write(inp, [_rec(1)])
    assert _rewrite(inp, tmp_path / "ok.jsonl") == 0


# 10. NaN and Infinity never pass into the output; an empty seeker_post is an error record


def test_nan_and_infinity_become_error_records(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, ['{"id": "1", "seeker_post": "s", "response_post": "r", "score": NaN}',
                 '{"id": "2", "seeker_post": "s", "response_post": "r", "score": -Infinity}',
                 '{"id": "3", "seeker_post": "s", "response_post": "r", "score": 1e999}', json.dumps(_rec(4))])
    process_jsonl(inp, out, lambda b: [{**r, "x": float("nan") if r["id"] == "4" else 1.0} for r in b])
    def no_constant(name):
        raise AssertionError(f"{name} written into the output")

    got = [json.loads(x, parse_constant=no_constant) for x in out.read_text().splitlines()]
    assert [g.get("line") for g in got] == [1, 2, 3, 4] and all("error" in g for g in got)


def test_empty_seeker_post_is_an_error_record(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [{"id": "e", "seeker_post": "  ", "response_post": "Hang in there."}, _rec(2)])
    assert rewrite_cli.main([str(inp), "-o", str(out), "--method", "template", "--scorer", "none"]) == 4
    got = _lines(out)
    assert got[0]["field"] == "seeker_post" and "empty" in got[0]["error"] and "rewritten_response" not in got[0]
    assert got[1]["rewritten_response"] != "reply 2"


# 10. -o and --batch-size are checked before any model loads


@pytest.mark.parametrize("case", ["directory", "parent-is-file", "unwritable"])
def test_bad_output_path_is_refused_before_loading(tmp_path, case, monkeypatch, capsys):
    inp = tmp_path / "in.jsonl"
    _write(inp, [_rec(1)])
    out = {"directory": tmp_path, "parent-is-file": inp / "out.jsonl", "unwritable": tmp_path / "ro" / "o.jsonl"}[case]
    if case == "unwritable":
        (tmp_path / "ro").mkdir()
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m, **k: False if str(p) == str(tmp_path / "ro") else real(p, m))

    def no_load(*a, **k):
        raise AssertionError("loaded a model before checking -o")

    monkeypatch.setattr("partner.rewriters.build_rewriter", no_load)
    monkeypatch.setattr("classifiers.scorer.EmpathyScorer.load", no_load)
    assert rewrite_cli.main([str(inp), "-o", str(out), "--method", "partner"]) == 2
    assert str(out) in capsys.readouterr().err
    assert score_cli.main([str(inp), "-o", str(out)]) == 2
    assert str(out) in capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "-1"])
def test_batch_size_below_one_is_refused_before_loading(tmp_path, n, monkeypatch, capsys):
    inp = tmp_path / "in.jsonl"
    _write(inp, [_rec(1)])

    def no_load(*a, **k):
        raise AssertionError("loaded a model before checking --batch-size")

    monkeypatch.setattr("partner.rewriters.build_rewriter", no_load)
    monkeypatch.setattr("classifiers.scorer.EmpathyScorer.load", no_load)
    assert rewrite_cli.main([str(inp), "-o", str(tmp_path / "o.jsonl"), "--batch-size", n]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert score_cli.main([str(inp), "-o", str(tmp_path / "o.jsonl"), "--batch-size", n]) == 2
    assert "--batch-size" in capsys.readouterr().err


# 4. models load with trust_remote_code=False: a folder's own Python never runs


def _custom_code_folder(tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import PretrainedConfig\n" \
           "class MyConfig(PretrainedConfig):\n    model_type = 'my-custom'\n"
    (folder / "my_code.py").write_text(code)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "my-custom", "auto_map": {"AutoConfig": "my_code.MyConfig",
                                                "AutoModel": "my_code.MyModel",
                                                "AutoModelForCausalLM": "my_code.MyModel"}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["my_code.MyTok", None]}}))
    return folder, marker


@pytest.mark.parametrize("loader", ["load_tokenizer", "load_causal_lm", "load_encoder"])
def test_a_model_folder_with_custom_code_is_never_run(tmp_path, monkeypatch, loader):
    from core import registry

    folder, marker = _custom_code_folder(tmp_path)
    monkeypatch.setattr("builtins.input", lambda *a, **k: "y")  # a user who answers yes to the prompt
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    with pytest.raises(registry.ModelResolutionError, match="never runs a model folder's code"):
        getattr(registry, loader)(str(folder))
    assert not marker.exists()


# 5. a policy folder without the toolkit's own metadata is refused


def test_a_plain_language_model_folder_is_not_a_policy(tmp_path, capsys, monkeypatch):
    inp, folder = tmp_path / "in.jsonl", tmp_path / "lm"
    _write(inp, [_rec(1)])
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    monkeypatch.setattr("partner.policy.PartnerPolicy.load",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded it")))
    for method in ("partner", "warmstart"):
        assert rewrite_cli.main([str(inp), "-o", str(tmp_path / "o.jsonl"), "--method", method, "--model",
                                 str(folder), "--scorer", "none"]) == 2
        err = capsys.readouterr().err
        assert "policy_config.json" in err and str(folder) in err and "zeroshot" in err


def test_stock_baseline_refuses_a_batch_size_below_one(tmp_path, capsys):
    from partner.cli import evaluate

    inp = tmp_path / "in.jsonl"
    _write(inp, [_rec(1)])
    assert evaluate.main(["stock", str(inp), "--batch-size", "0", "--model", str(tmp_path / "none")]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
