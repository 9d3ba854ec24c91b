"""partner-ab: export blinding and balance, bad input, statistics, analysis (no browser here)."""

import csv
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from core.jsonio import DataError
from partner.ab.analyze import AnalyzeConfig, analyze
from partner.ab.export import ExportConfig, export
from partner.ab.stats import holm, krippendorff_alpha_nominal, sign_test, wilson_interval
from partner.ab.systems import load_systems

FIX = Path(__file__).parent / "fixtures" / "ab"
SYSTEMS = [str(FIX / "partner.jsonl"), str(FIX / "bart.jsonl")]
BIN = Path(sys.executable).parent


def _records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _export(tmp_path, files=SYSTEMS, **kw):
    names = kw.pop("names", None)
    cfg = ExportConfig(**{"include_original": "original", "attention_checks": 2, **kw})
    return export(files, tmp_path / "study", cfg, names=names)


def _ratings_csv(path, key, rater, answer_fn):
    """Write a long-format ratings file; answer_fn(key_entry, question) -> 'A'|'B'|'tie'|None."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["package_id", "rater_id", "item_id", "question", "answer", "timestamp"])
        for item, k in key["items"].items():
            for q in key["questions"]:
                a = answer_fn(k, q)
                if a is not None:
                    w.writerow([key["package_id"], rater, item, q, a, "2025-01-01T00:00:00Z"])
    return str(path)


def prefer(system):
    """A rater who always picks `system` when shown, ties otherwise, and passes every check."""
    def fn(k, q):
        if k["is_attention_check"]:
            return k["expected"][q]
        return "A" if k["system_a"] == system else "B" if k["system_b"] == system else "tie"
    return fn


# ---------------------------------------------------------------- statistics

def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 7)[0] == 0.0  # exact, plots rely on it
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_sign_test_and_holm():
    # exact: P(X <= 2) * 2 for X ~ Bin(10, .5) = 2 * 56/1024
    assert sign_test(8, 2) == pytest.approx(2 * 56 / 1024)
    assert sign_test(5, 5) == pytest.approx(1.0)
    assert math.isnan(sign_test(0, 0))
    got = holm([0.01, 0.04, 0.03, math.nan])
    assert got[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(got[3])


def test_krippendorff_alpha_hand_computed():
    # 2 raters, 3 items: (A,A) (B,B) (A,B). n_A = n_B = 3, n = 6; o_AB + o_BA = 2;
    # alpha = 1 - (n-1) * 2 / (2 * 3 * 3) = 1 - 10/18 = 4/9
    alpha, n = krippendorff_alpha_nominal([("A", "A"), ("B", "B"), ("A", "B")])
    assert n == 6 and alpha == pytest.approx(4 / 9)
    # a lone rating is not pairable and changes nothing; perfect agreement is 1
    assert krippendorff_alpha_nominal([("A", "A"), ("B", "B"), ("A", "B"), ("tie", None)])[0] == pytest.approx(4 / 9)
    assert krippendorff_alpha_nominal([("A", "A"), ("tie", "tie")])[0] == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha_nominal([("A", "A"), ("A", "A")])[0])  # no variation: undefined


def test_krippendorff_alpha_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4-observer nominal example: 0.743
    N = None
    obs = [[1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
           [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]]
    alpha, n = krippendorff_alpha_nominal(list(zip(*obs)))
    assert n == 40 and alpha == pytest.approx(0.743, abs=5e-4)


# ---------------------------------------------------------------- export

def test_export_is_blinded_and_complete(tmp_path):
    res = _export(tmp_path, names=["PARTNER-RL", "bart-base"])
    pkg = Path(res["package"])
    assert sorted(p.name for p in pkg.iterdir()) == ["items.csv", "manifest.json", "rating.html"]
    key = json.loads((tmp_path / "study" / "key.json").read_text())
    for f in pkg.iterdir():  # no system or file name anywhere in what raters get
        text = f.read_text().lower()
        for leak in ("partner", "bart", "original", ".jsonl", "key.json", "fixtures"):
            assert leak not in text, f"{leak!r} leaks into {f.name}"
    page = (pkg / "rating.html").read_text()
    for external in ("http://", "https://", "src=", "@import", "fetch("):  # one file, works offline
        assert external not in page
    assert oct((tmp_path / "study" / "key.json").stat().st_mode & 0o777) == "0o600"
    rows = list(csv.DictReader(open(pkg / "items.csv")))
    manifest = json.loads((pkg / "manifest.json").read_text())
    # 3 systems -> 3 pairs x 6 inputs + 2 attention checks
    assert len(rows) == len(key["items"]) == manifest["n_items"] == 20
    assert {r["item_id"] for r in rows} == set(key["items"])
    assert manifest["seed"] == 13 and manifest["n_systems"] == 3 and len(manifest["input_sha256"]) == 2
    assert [q["id"] for q in manifest["questions"]] == ["empathy", "fluency", "specificity", "overall"]
    assert sum(v["is_attention_check"] for v in key["items"].values()) == 2
    # ids are opaque: not the input ids
    assert not any(r["item_id"] in {"s1", "s2", "s3", "s4", "s5", "s6"} for r in rows)
    # each item shows what the key says
    sys_text = {s: {r["id"]: r["rewritten_response"] for r in _records(f)} for s, f in
                zip(["PARTNER-RL", "bart-base"], SYSTEMS)}
    sys_text["original"] = {r["id"]: r["response_post"] for r in _records(SYSTEMS[0])}
    for r in rows:
        k = key["items"][r["item_id"]]
        if not k["is_attention_check"]:
            assert r["response_a"] == sys_text[k["system_a"]][k["input"]]
            assert r["response_b"] == sys_text[k["system_b"]][k["input"]]
        else:
            good = r["response_a"] if k["expected"]["empathy"] == "A" else r["response_b"]
            bad = r["response_b"] if k["expected"]["empathy"] == "A" else r["response_a"]
            assert good == sys_text["original"][k["input"]] and bad != good and bad == bad.lower()


def test_export_balances_sides_and_is_deterministic(tmp_path):
    recs = _records(SYSTEMS[0])
    big = [dict(r, id=f"{r['id']}-{j}", seeker_post=f"{r['seeker_post']} ({j})") for j in range(9) for r in recs]
    files = [_write(tmp_path / "a.jsonl", big),
             _write(tmp_path / "b.jsonl", [dict(r, rewritten_response=r["rewritten_response"] + " b") for r in big]),
             _write(tmp_path / "c.jsonl", [dict(r, rewritten_response=r["rewritten_response"] + " c") for r in big])]
    cfg = ExportConfig(seed=7, include_original="original")
    export(files, tmp_path / "one", cfg)
    export(files, tmp_path / "two", cfg)
    key = json.loads((tmp_path / "one" / "key.json").read_text())
    for name in ("items.csv", "rating.html", "manifest.json"):
        assert (tmp_path / "one/package" / name).read_bytes() == (tmp_path / "two/package" / name).read_bytes()
    on_a = Counter(v["system_a"] for v in key["items"].values())
    shown = Counter(s for v in key["items"].values() for s in (v["system_a"], v["system_b"]))
    n_inputs = len(big)  # 54, each system in 3 pairs -> 162 showings
    for s in ("a", "b", "c", "original"):
        assert shown[s] == 3 * n_inputs and abs(on_a[s] - shown[s] / 2) <= 1, (s, on_a[s], shown[s])
    for s, t in key["pairs"]:  # and within every pair
        first_on_a = sum(1 for v in key["items"].values() if (v["system_a"], v["system_b"]) == (s, t))
        assert abs(first_on_a - n_inputs / 2) <= 0.5
    export(files, tmp_path / "three", ExportConfig(seed=8, include_original="original"))
    key3 = json.loads((tmp_path / "three" / "key.json").read_text())
    assert key3["items"] != key["items"]


def test_export_reference_and_per_pair(tmp_path):
    cfg = ExportConfig(reference="partner", per_pair=4, include_original="original")
    export(SYSTEMS, tmp_path / "s", cfg)
    key = json.loads((tmp_path / "s" / "key.json").read_text())
    assert key["pairs"] == [["partner", "bart"], ["partner", "original"]]
    assert len(key["items"]) == 8 and all("partner" in (v["system_a"], v["system_b"]) for v in key["items"].values())


def test_export_refuses_to_overwrite_a_package(tmp_path):
    _export(tmp_path)
    with pytest.raises(DataError, match="already holds a package"):
        _export(tmp_path)
    export(SYSTEMS, tmp_path / "study", ExportConfig(seed=1), overwrite=True)


# ---------------------------------------------------------------- bad input

def test_mismatched_inputs_name_file_and_line(tmp_path):
    recs = _records(SYSTEMS[1])
    recs[2]["seeker_post"] = "something else"
    bad = _write(tmp_path / "bad.jsonl", recs)
    with pytest.raises(DataError, match=r"bad\.jsonl, line 3, field 'seeker_post'.*not over the same inputs"):
        load_systems([SYSTEMS[0], bad])
    missing = _write(tmp_path / "short.jsonl", _records(SYSTEMS[1])[:-1])
    with pytest.raises(DataError, match=r"short\.jsonl.*no record for id\(s\) \['s6'\]"):
        load_systems([SYSTEMS[0], missing])


def test_matching_by_line_order_without_ids(tmp_path):
    strip = [{k: v for k, v in r.items() if k != "id"} for r in _records(SYSTEMS[0])]
    other = [{k: v for k, v in r.items() if k != "id"} for r in _records(SYSTEMS[1])]
    a, b = _write(tmp_path / "a.jsonl", strip), _write(tmp_path / "b.jsonl", other)
    s = load_systems([a, b])
    assert s.matched_by == "line" and len(s.inputs) == 6 and s.inputs[0].key == "line 1"
    swapped = other[:]
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(DataError, match=r"c\.jsonl, line 2.*matched by line order"):
        load_systems([a, _write(tmp_path / "c.jsonl", swapped)])
    with pytest.raises(DataError, match="has 5 records"):
        load_systems([a, _write(tmp_path / "d.jsonl", other[:5])])


def test_duplicate_ids_mixed_ids_and_names(tmp_path):
    recs = _records(SYSTEMS[1])
    with pytest.raises(DataError, match=r"dup\.jsonl, line 3, field 'id': duplicate id 's1' \(first at line 1\)"):
        load_systems([SYSTEMS[0], _write(tmp_path / "dup.jsonl", recs[:2] + [recs[0]] + recs[3:])])
    del recs[1]["id"]
    with pytest.raises(DataError, match=r"mixed\.jsonl, line 2, field 'id'.*on every record or on none"):
        load_systems([SYSTEMS[0], _write(tmp_path / "mixed.jsonl", recs)])
    with pytest.raises(DataError, match="duplicate system name"):
        load_systems([SYSTEMS[0], SYSTEMS[0]])
    with pytest.raises(DataError, match="two systems"):
        load_systems([SYSTEMS[0]])
    with pytest.raises(DataError, match="rewritten_response.*is missing"):
        load_systems([SYSTEMS[0], _write(tmp_path / "in.jsonl", [{"seeker_post": "x", "response_post": "y"}])])


def test_error_records_are_reported_not_dropped(tmp_path):
    recs = _records(SYSTEMS[1])
    recs[3] = {"id": "s4", "line": 4, "field": None, "error": "RuntimeError: out of memory"}
    recs[4] = {"line": 5, "field": None, "error": "not valid JSON"}  # no id: cannot be attributed
    failing = _write(tmp_path / "failing.jsonl", recs)
    s = load_systems([SYSTEMS[0], failing], include_original="original")
    by_key = {i.key: i for i in s.inputs}
    assert "failing" not in by_key["s4"].responses and "out of memory" in by_key["s4"].failed["failing"]
    assert "failing" not in by_key["s5"].responses
    notes = "\n".join(s.exclusions)
    assert "out of memory" in notes and "line 5 has no id" in notes
    res = export([SYSTEMS[0], failing], tmp_path / "st", ExportConfig(include_original="original"))
    key = json.loads(Path(res["key"]).read_text())
    # partner vs original keeps all 6 inputs; the two pairs with 'failing' lose s4 and s5 and say so
    per_pair = Counter(frozenset((v["system_a"], v["system_b"])) for v in key["items"].values())
    assert per_pair[frozenset(("partner", "original"))] == 6 and per_pair[frozenset(("partner", "failing"))] == 4
    assert any("2 input(s) lack a response" in e for e in key["exclusions"])


# ---------------------------------------------------------------- analysis

def test_analyze_known_outcome(tmp_path):
    res = _export(tmp_path)
    key = json.loads(Path(res["key"]).read_text())
    r1 = _ratings_csv(tmp_path / "r1.csv", key, "r1", prefer("partner"))
    r2 = _ratings_csv(tmp_path / "r2.csv", key, "r2", prefer("partner"))

    def careless(k, q):  # fails both attention checks, and would flip every result if counted
        if k["is_attention_check"]:
            return "A" if k["expected"][q] == "B" else "B"
        return "B" if k["system_a"] == "partner" else "A"
    r3 = _ratings_csv(tmp_path / "r3.csv", key, "r3", careless)
    out = analyze([r1, r2, r3], res["key"], tmp_path / "ana", AnalyzeConfig())
    assert out["excluded_raters"] == ["r3"]
    rows = {(r["system"], r["versus"], r["question"]): r for r in out["results"]}
    pb = rows[("partner", "bart", "empathy")]
    assert (pb["n"], pb["wins"], pb["ties"], pb["losses"]) == (6, 6, 0, 0)
    assert pb["p_sign"] == pytest.approx(2 / 64) and pb["win_ci"] == pytest.approx(list(wilson_interval(6, 6)))
    bo = rows[("bart", "original", "fluency")]
    assert (bo["wins"], bo["ties"], bo["losses"]) == (0, 6, 0) and math.isnan(bo["p_sign"])
    # two identical raters agree perfectly where there is variation
    assert out["agreement"]["empathy"]["alpha"] == pytest.approx(1.0)
    md = (tmp_path / "ana" / "report.md").read_text()
    assert "| r3 | 20/20 | 2/2 | 2 | yes |" in md and "ties are left out" in md
    png = (tmp_path / "ana" / "preference.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # with the careless rater kept (and every rating counted) partner loses some: the exclusion mattered
    out2 = analyze([r1, r2, r3], res["key"], tmp_path / "ana2", AnalyzeConfig(max_failed_checks=5, unit="rating"))
    pb2 = next(r for r in out2["results"] if (r["system"], r["versus"], r["question"]) == ("partner", "bart", "empathy"))
    assert (pb2["n"], pb2["wins"], pb2["losses"]) == (18, 12, 6)


def test_analyze_majority_unit_and_split_votes(tmp_path):
    res = _export(tmp_path, attention_checks=0)
    key = json.loads(Path(res["key"]).read_text())
    files = [_ratings_csv(tmp_path / "a.csv", key, "a", prefer("partner")),
             _ratings_csv(tmp_path / "b.csv", key, "b", prefer("bart"))]
    out = analyze(files, res["key"], tmp_path / "o", AnalyzeConfig())
    pb = next(r for r in out["results"] if (r["system"], r["versus"]) == ("partner", "bart"))
    assert (pb["wins"], pb["ties"], pb["losses"]) == (0, 6, 0)  # 1 vs 1 on every item: no majority
    assert out["agreement"]["empathy"]["alpha"] < 0
    assert "no attention checks" in (tmp_path / "o" / "report.md").read_text()


def test_analyze_bad_ratings(tmp_path):
    res = _export(tmp_path)
    key = json.loads(Path(res["key"]).read_text())
    good = _ratings_csv(tmp_path / "g.csv", key, "g", prefer("partner"))
    lines = Path(good).read_text().splitlines()

    def variant(name, edit):
        rows = [line.split(",") for line in lines]
        edit(rows)
        p = tmp_path / name
        p.write_text("\n".join(",".join(r) for r in rows) + "\n")
        return str(p)

    cases = [
        (variant("unknown.csv", lambda r: r[3].__setitem__(2, "izzzz")), r"unknown\.csv, line 4, field 'item_id'"),
        (variant("pkg.csv", lambda r: r[2].__setitem__(0, "pother")), r"line 3, field 'package_id'.*another package"),
        (variant("ans.csv", lambda r: r[5].__setitem__(4, "maybe")), r"ans\.csv, line 6, field 'answer'.*'maybe'"),
        (variant("q.csv", lambda r: r[5].__setitem__(3, "kindness")), r"line 6, field 'question'"),
        (variant("cols.csv", lambda r: r[0].__setitem__(1, "who")), r"neither the long format"),
    ]
    for path, pattern in cases:
        with pytest.raises(DataError, match=pattern):
            analyze([path], res["key"], tmp_path / "x", AnalyzeConfig())
    # the same rater twice: identical rows are counted once (and said so), contradictions are an error
    out = analyze([good, good], res["key"], tmp_path / "dup", AnalyzeConfig())
    assert out["results"][0]["n"] == 6 and any("counted once" in n for n in out["notes"])
    flipped = variant("flip.csv", lambda r: r[1].__setitem__(4, "tie" if r[1][4] != "tie" else "A"))
    with pytest.raises(DataError, match="--keep-latest"):
        analyze([good, flipped], res["key"], tmp_path / "x", AnalyzeConfig())
    analyze([good, flipped], res["key"], tmp_path / "x", AnalyzeConfig(keep_latest=True))


def test_analyze_incomplete_file_is_reported(tmp_path):
    res = _export(tmp_path)
    key = json.loads(Path(res["key"]).read_text())
    # seven items and the attention checks (a rater who answered no check would be excluded)
    half = set(list(key["items"])[:7]) | {i for i, v in key["items"].items() if v["is_attention_check"]}
    part = _ratings_csv(tmp_path / "p.csv", key, "p",
                        lambda k, q: prefer("partner")(k, q) if k is not None else None)
    rows = [r for r in csv.DictReader(open(part)) if r["item_id"] in half]
    with open(part, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = analyze([part], res["key"], tmp_path / "o", AnalyzeConfig())
    n = len(half)
    assert out["raters"][0]["items_complete"] == n
    assert f"p ({20 - n} item(s) not fully rated)" in (tmp_path / "o" / "report.md").read_text()
    with pytest.raises(DataError, match=f"fully rated {n} of 20"):
        analyze([part], res["key"], tmp_path / "o", AnalyzeConfig(require_complete=True))


def test_wide_csv_and_json_ratings(tmp_path):
    res = _export(tmp_path)
    key = json.loads(Path(res["key"]).read_text())
    fn = prefer("partner")
    wide = tmp_path / "wide.csv"
    with open(wide, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rater_id", "item_id", "empathy", "fluency", "specificity"])
        for item, k in key["items"].items():
            w.writerow(["w", item] + [fn(k, q).lower() for q in key["questions"]])  # lower case is accepted
    js = tmp_path / "r.json"
    js.write_text(json.dumps({"package_id": key["package_id"], "rater_id": "j", "ratings": [
        {"package_id": key["package_id"], "rater_id": "j", "item_id": i, "question": q, "answer": fn(k, q),
         "timestamp": "t"} for i, k in key["items"].items() for q in key["questions"]]}))
    out = analyze([str(wide), str(js)], res["key"], tmp_path / "o", AnalyzeConfig())
    assert [r["rater"] for r in out["raters"]] == ["j", "w"] and not out["excluded_raters"]
    assert out["results"][0]["wins"] == 6


@pytest.mark.slow
def test_cli_round_trip_and_errors(tmp_path):
    study = tmp_path / "study"
    run = subprocess.run([str(BIN / "partner-ab"), "export", *SYSTEMS, "--include-original", "--attention-checks", "2",
                          "--name", "P", "--name", "B", "--seed", "3", "-o", str(study)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    key = json.loads((study / "key.json").read_text())
    assert key["seed"] == 3 and [s["name"] for s in key["systems"]] == ["P", "B", "original"]
    r = _ratings_csv(tmp_path / "r.csv", key, "r", prefer("P"))
    run = subprocess.run([str(BIN / "partner-ab"), "analyze", r, "--key", str(study / "key.json")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (study / "analysis" / "report.md").exists() and (study / "analysis" / "preference.png").exists()
    bad = _write(tmp_path / "short.jsonl", _records(SYSTEMS[1])[:3])
    run = subprocess.run([str(BIN / "partner-ab"), "export", SYSTEMS[0], bad, "-o", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "short.jsonl" in run.stderr and "Traceback" not in run.stderr


# ---------------------------------------------------------------- hostile input (issue 27)

def test_items_csv_escapes_spreadsheet_formulas(tmp_path):
    evil = ["=HYPERLINK(\"http://x\",\"click\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    files = []
    for name in ("a", "b"):
        recs = _records(SYSTEMS[0])[:len(evil)]
        for rec, text in zip(recs, evil):
            rec["seeker_post"] = text
            rec["rewritten_response"] = text + (" " + name if name == "b" else "")
        files.append(_write(tmp_path / f"{name}.jsonl", recs))
    res = export(files, tmp_path / "study", ExportConfig())
    with open(Path(res["package"]) / "items.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = [row[c] for row in rows for c in ("seeker_post", "response_a", "response_b")]
    assert cells and all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert "'=HYPERLINK(\"http://x\",\"click\")" in cells and "'-2+3" in cells


def test_analyze_excludes_a_rater_who_answered_no_attention_check(tmp_path):
    res = _export(tmp_path)
    key = json.loads(Path(res["key"]).read_text())
    r1 = _ratings_csv(tmp_path / "r1.csv", key, "r1", prefer("partner"))

    def skips_checks(k, q):
        return None if k["is_attention_check"] else prefer("bart")(k, q)
    r2 = _ratings_csv(tmp_path / "r2.csv", key, "r2", skips_checks)
    out = analyze([r1, r2], res["key"], tmp_path / "ana", AnalyzeConfig())
    assert out["excluded_raters"] == ["r2"]
    md = (tmp_path / "ana" / "report.md").read_text()
    assert "| r2 | 18/20 | 0/2 | 0 | yes |" in md
    assert "answered none of the attention checks" in md
