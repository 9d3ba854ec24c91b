import json

import pytest

from core import corpora
from core.jsonio import DataError


def test_epitome_join_real_data(data_dir):
    pairs, report = corpora.load_epitome(data_dir)
    assert report.rows == {"ER": 2621, "IP": 2621, "EX": 2621}
    # Duplicated pairs collapse to one; every remaining pair has all three mechanisms.
    assert len({(p.sp_id, p.rp_id) for p in pairs}) == len(pairs) == report.pairs
    assert 2400 < len(pairs) < 2621
    assert report.duplicates > 0 and report.conflicts
    for p in pairs[:200]:
        assert set(p.levels) == {"ER", "IP", "EX"} and all(v in (0, 1, 2) for v in p.levels.values())
        for spans in p.rationales.values():
            for s, e in spans:
                assert 0 <= s < e <= len(p.response_post)


def test_rationale_spans_are_in_the_response(data_dir):
    pairs, _ = corpora.load_epitome(data_dir)
    with_spans = [p for p in pairs if p.levels["EX"] > 0 and p.rationales["EX"]]
    assert len(with_spans) > 200
    # An exploration rationale is a question or an invitation to share; most contain a '?'.
    has_q = sum("?" in p.response_post[s:e] for p in with_spans for s, e in p.rationales["EX"][:1])
    assert has_q / len(with_spans) > 0.5


def test_rationale_spans_fallbacks():
    spans, missing = corpora.rationale_spans("I am So sorry.  That  is hard.", "so sorry|That is hard|absent")
    assert spans == [(5, 13), (16, 29)] and missing == 1


def test_conflicting_duplicates_take_the_highest_level(tmp_path):
    header = "sp_id,rp_id,seeker_post,response_post,level,rationales\n"
    for mech, fname in corpora.EPITOME_FILES.items():
        rows = ['a,x,"I am sad","That is so sad, wow",0,\n', 'a,x,"I am sad","That is so sad, wow",1,so sad\n',
                'a,x,"I am sad","That is so sad, wow",1,so sad\n', 'b,y,Help,"What happened?",2,What happened?\n']
        (tmp_path / fname).write_text(header + "".join(rows))
    pairs, report = corpora.load_epitome(tmp_path)
    assert [p.levels["ER"] for p in pairs] == [1, 2]
    assert pairs[0].rationales["ER"] == [(8, 14)]
    assert report.duplicates == 3 and len(report.conflicts) == 3


def test_bad_level_names_file_line_and_field(tmp_path):
    header = "sp_id,rp_id,seeker_post,response_post,level,rationales\n"
    for fname in corpora.EPITOME_FILES.values():
        (tmp_path / fname).write_text(header + 'a,x,"multi\nline post",ok,1,\nb,y,p,r,high,\n')
    with pytest.raises(DataError) as err:
        corpora.load_epitome(tmp_path)
    assert err.value.line == 4 and err.value.field == "level"
    assert "emotional-reactions-reddit.csv" in str(err.value) and "line 4" in str(err.value)


def test_grouped_split_is_deterministic_and_disjoint(data_dir):
    pairs, _ = corpora.load_epitome(data_dir)
    a = corpora.grouped_split(pairs, lambda p: p.sp_id)
    b = corpora.grouped_split(list(reversed(pairs)), lambda p: p.sp_id)
    assert {k: sorted(p.rp_id for p in v) for k, v in a.items()} == {k: sorted(p.rp_id for p in v) for k, v in b.items()}
    groups = {k: {p.sp_id for p in v} for k, v in a.items()}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["dev"])
    assert 0.7 < len(a["train"]) / len(pairs) < 0.9 and len(a["test"]) > 150


def test_esconv_and_counselchat(data_dir):
    es = corpora.load_esconv(data_dir / "esconv" / "esconv-dev-pairs.jsonl")
    assert len(es) == 1568 and es[0].id == "esconv-dev-0" and "strategy" in es[0].meta
    cc = corpora.load_counselchat(data_dir / "counsel-chat" / "counsel-chat.csv")
    assert len(cc) > 2000 and all(p.response_post for p in cc)
    assert len({p.id for p in cc}) == len(cc)


def test_esconv_bad_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"id": "1", "seeker_post": "a", "response_post": "b"}) + "\n"
                 + json.dumps({"id": "2", "seeker_post": 5, "response_post": "b"}) + "\n")
    with pytest.raises(DataError, match=r"x.jsonl, line 2, field 'seeker_post'"):
        corpora.load_esconv(f)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        corpora.load_counselchat(tmp_path / "nope.csv")
