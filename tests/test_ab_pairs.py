"""Preference pairs: ratings joined with key and package; the harm question in export and analyze."""

import csv
import json

import pytest

from core.jsonio import DataError
from partner.ab.analyze import AnalyzeConfig, analyze
from partner.ab.export import ExportConfig, export
from partner.ab.pairs import load_preference_pairs, study_dirs, load_studies

from helpers.ab_study import SYSTEMS, make_study as _study, prefer_overall, wide as _wide


def test_pairs_join_texts_systems_and_harm(tmp_path):
    res, key = _study(tmp_path)
    assert key["questions"][-1] == "overall" and key["harm_question"] == "harm"
    manifest = json.loads((tmp_path / "study" / "package" / "manifest.json").read_text())
    assert manifest["questions"][-1]["answers"] == ["A", "B", "both", "none"]
    flag_bart = lambda k: "A" if k["system_a"] == "bart" else "B" if k["system_b"] == "bart" else "none"
    f = _wide(tmp_path / "r1.csv", key, "R1", prefer_overall("partner"), flag_bart)
    pairs = load_preference_pairs([f], res["key"])
    n_cmp = sum(1 for k in key["items"].values() if not k["is_attention_check"])
    assert len(pairs) == 4 * n_cmp  # four preference questions per comparison item, checks left out
    items = {}
    with open(tmp_path / "study" / "package" / "items.csv") as fh:
        for row in csv.DictReader(fh):
            items[row["item_id"]] = row
    for p in pairs:
        k = key["items"][p.item_id]
        assert (p.system_a, p.system_b, p.input) == (k["system_a"], k["system_b"], k["input"])
        assert (p.seeker_post, p.reply_a, p.reply_b) == (items[p.item_id]["seeker_post"],
                                                        items[p.item_id]["response_a"], items[p.item_id]["response_b"])
        if p.question == "overall":
            want = "A" if p.system_a == "partner" else "B" if p.system_b == "partner" else "tie"
            assert p.answer == want
            assert p.harm == ("A" if p.system_a == "bart" else "B" if p.system_b == "bart" else "none")
    only = load_preference_pairs([f], res["key"], questions=["overall"])
    assert {p.question for p in only} == {"overall"} and len(only) == n_cmp
    assert all(p.decisive == (p.answer != "tie") for p in only)


def test_pairs_errors_name_file_and_line(tmp_path):
    res, key = _study(tmp_path)
    bad = _wide(tmp_path / "bad.csv", key, "R1", prefer_overall("partner"),
                extra_rows=[["R1", "i0000000000", "A", "A", "A", "A", "none"]])
    with pytest.raises(DataError) as e:
        load_preference_pairs([bad], res["key"])
    assert "bad.csv" in str(e.value) and "line" in str(e.value) and "item_id" in str(e.value)
    first = next(iter(key["items"]))
    bad2 = tmp_path / "bad2.csv"
    bad2.write_text(f"rater_id,item_id,empathy,fluency,specificity,overall,harm\nR2,{first},A,A,A,A,maybe\n")
    with pytest.raises(DataError) as e:
        load_preference_pairs([bad2], res["key"])
    assert "bad2.csv" in str(e.value) and "harm" in str(e.value)
    # a package that is not the key's
    other = tmp_path / "other"
    export(SYSTEMS, other, ExportConfig(include_original="original", seed=99))
    good = _wide(tmp_path / "good.csv", key, "R3", prefer_overall("partner"))
    with pytest.raises(DataError) as e:
        load_preference_pairs([good], res["key"], package=other / "package")
    assert "items.csv" in str(e.value) and "package_id" in str(e.value)


def test_pairs_drop_raters_failing_checks_and_study_dirs(tmp_path):
    res, key = _study(tmp_path)
    ratings = tmp_path / "study" / "ratings"
    ratings.mkdir()
    _wide(ratings / "good.csv", key, "good", prefer_overall("bart"))
    with open(ratings / "careless.csv", "w", newline="") as fh:  # answers A to everything, checks included
        w = csv.writer(fh)
        w.writerow(["rater_id", "item_id", "empathy", "fluency", "specificity", "overall", "harm"])
        for item in key["items"]:
            w.writerow(["careless", item, "A", "A", "A", "A", "none"])
    pairs = load_studies(study_dirs(tmp_path / "study"))
    assert {p.rater for p in pairs} == {"good"}
    assert len(load_studies(study_dirs(tmp_path / "study"), max_failed_checks=5)) == 2 * len(pairs)


def test_analyze_reports_overall_and_harm(tmp_path):
    res, key = _study(tmp_path)
    flag_bart = lambda k: "A" if k["system_a"] == "bart" else "B" if k["system_b"] == "bart" else "both"
    f = _wide(tmp_path / "r1.csv", key, "R1", prefer_overall("partner"), flag_bart)
    out = analyze([f], res["key"], tmp_path / "an", AnalyzeConfig())
    rows = {(r["system"], r["versus"], r["question"]): r for r in out["results"]}
    assert rows[("partner", "bart", "overall")]["wins"] == rows[("partner", "bart", "overall")]["n"] > 0
    harm = {h["system"]: h for h in out["harm_flags"]}
    assert harm["bart"]["rate"] == 1.0  # flagged every time it was shown
    assert harm["partner"]["flagged"] == sum(1 for k in key["items"].values()
                                             if not k["is_attention_check"] and "partner" in (k["system_a"], k["system_b"])
                                             and "bart" not in (k["system_a"], k["system_b"]))
    report = (tmp_path / "an" / "report.md").read_text()
    assert "## Harm flags" in report and "| overall |" in report


def test_old_key_reads_extra_overall_column(tmp_path):
    """Keys made before `overall` was asked: the ratings' extra overall column is still read."""
    res, key = _study(tmp_path, harm=False)
    assert key["harm_question"] is None
    key["questions"] = ["empathy", "fluency", "specificity"]
    old_key = tmp_path / "study" / "old-key.json"
    old_key.write_text(json.dumps(key))
    f = _wide(tmp_path / "r1.csv", key, "R1", prefer_overall("bart"))
    pairs = load_preference_pairs([f], old_key, package=tmp_path / "study" / "package", questions=["overall"])
    assert pairs and all(p.question == "overall" for p in pairs)
    out = analyze([f], old_key, tmp_path / "an", AnalyzeConfig())
    assert any(r["question"] == "overall" for r in out["results"])
