"""partner-serve: the suggester (fake models), the JSON API and its bad input, the choices log and its pairs."""

import json
import threading

import pytest
from helpers.serve_fakes import DRAFT, PROPOSALS, SEEKER, FakeEpitome, FakePreference, FixedSource

from core.jsonio import DataError
from core.text import split_sentences
from partner.serve.feedback import FeedbackLog, load_feedback_pairs, read_events
from partner.serve.suggest import Suggester, apply_one, to_draft_edits
from rewards.sentence_guard import SentenceGuard

starlette = pytest.importorskip("starlette", reason="starlette is not installed (pip install -e .)")
pytest.importorskip("httpx", reason="httpx is not installed (pip install -e '.[dev]')")


def suggester(proposals=PROPOSALS, k=3, min_gain=0.0, scorer="fake"):
    return Suggester([FixedSource(proposals)], FakePreference(), FakeEpitome() if scorer else None,
                     guard=SentenceGuard(), k=k, min_gain=min_gain)


def test_to_draft_edits_maps_episode_positions_back_onto_the_draft():
    # draft a b c; insert X at 0 -> X a b c; replace position 2 (b) -> X a B c; delete position 3 (c) -> X a B;
    # insert Y at 3 (the end now) -> draft position 2 (before c, which the episode deleted)
    edits = [{"action": "insert", "position": 0, "sentence": "X."}, {"action": "replace", "position": 2, "sentence": "B."},
             {"action": "replace", "position": 3, "sentence": ""}, {"action": "insert", "position": 3, "sentence": "Y."}]
    assert to_draft_edits(3, edits) == [("insert", 0, "X."), ("replace", 1, "B."), ("insert", 2, "Y.")]
    # replacing a sentence the episode itself inserted is no edit of the draft
    assert to_draft_edits(1, [{"action": "insert", "position": 0, "sentence": "X."},
                              {"action": "replace", "position": 0, "sentence": "Z."}]) == [("insert", 0, "X.")]


def test_sentence_spans_find_each_sentence_in_order():
    from partner.serve.suggest import sentence_spans

    text = "Hi.\n\nHi. You ok?"
    assert sentence_spans(text, ["Hi.", "Hi.", "You ok?"]) == [[0, 3], [5, 8], [9, 16]]
    assert sentence_spans(text, ["Hi.", "Gone."]) is None


def test_apply_one():
    sents = ["A.", "B."]
    assert apply_one(sents, "insert", 0, "X.") == "X. A. B."
    assert apply_one(sents, "insert", 2, "X.") == "A. B. X."
    assert apply_one(sents, "replace", 1, "X.") == "A. X."
    with pytest.raises(ValueError):
        apply_one(sents, "replace", 2, "X.")


def test_suggestions_are_ranked_by_preference_gain_guarded_and_described():
    s = suggester()
    res = s.suggest(SEEKER, DRAFT)
    got = [(x.action, x.position, x.sentence) for x in res.suggestions]
    # the risky sentence is rejected by the guard; the long cold one loses to the draft; the rest by gain
    assert res.rejected == {"risk": 1}
    # FakePreference: +1 per warm phrase, -0.01 per character
    assert got == [("replace", 1, "I understand how heavy that feels."),
                   ("insert", 3, "How are you feeling about it now?"),
                   ("insert", 0, "I'm so sorry you are going through this.")]
    gains = [x.gain for x in res.suggestions]
    assert gains == sorted(gains, reverse=True) and all(g > 0 for g in gains)
    assert gains[0] == pytest.approx(2 - 0.01 * (len("I understand how heavy that feels.") - len("Try to keep busy.")))
    replace, question, sorry = res.suggestions
    assert replace.replaced == "Try to keep busy." and replace.mechanism == "ER" and replace.adds == ["ER", "IP"]
    assert question.mechanism == "EX" and question.adds == ["ER", "EX"]
    assert sorry.mechanism == "ER" and sorry.sources == ["fixed"]
    assert sorry.reply == "I'm so sorry you are going through this. " + DRAFT
    assert 0.5 < sorry.win_prob < replace.win_prob < 1
    # one preference call: the draft and every guarded candidate together
    assert len(s.preference.calls) == 1 and s.preference.calls[0][0] == DRAFT and len(s.preference.calls[0]) == 5
    assert res.draft_sentences == split_sentences(DRAFT)


def test_k_min_gain_and_no_suggestion_when_nothing_beats_the_draft():
    assert len(suggester().suggest(SEEKER, DRAFT, k=1).suggestions) == 1
    assert suggester(min_gain=5).suggest(SEEKER, DRAFT).suggestions == []
    cold = [("insert", 0, "The weather has been strange this week, honestly."), ("replace", 0, "Okay then, right.")]
    res = suggester(cold).suggest(SEEKER, DRAFT)
    assert res.suggestions == [] and res.considered == 2


def test_duplicates_and_sentences_already_in_the_draft_are_dropped():
    dup = [("insert", 0, "I'm sorry."), ("insert", 0, "i'm   SORRY."), ("insert", 3, "I'm sorry."),
           ("insert", 1, "That is tough.")]
    s = Suggester([FixedSource(dup, "a"), FixedSource(dup[:1], "b")], FakePreference(), None, SentenceGuard())
    res = s.suggest(SEEKER, DRAFT)
    assert [(x.position, x.sources) for x in res.suggestions] == \
        [(0, ["a", "b"])]  # one sentence, one place (the better one), both sources named
    assert res.considered == 2 and res.suggestions[0].mechanism is None


def test_policy_source_proposals_fit_the_draft(tiny_policy):  # noqa: F811
    from partner.config import PolicyConfig
    from partner.serve.suggest import PolicySource

    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=6, max_context_tokens=32)
    src = PolicySource.load(tiny_policy, cfg, samples=4, guard=None)
    draft = "One. Two. Three. Four."
    props = src.propose("I feel alone.", draft, seed=2)
    assert props and all(p.source == "policy" and p.sentence for p in props)
    for p in props:
        assert (0 <= p.position <= 4) if p.action == "insert" else (0 <= p.position < 4)
    assert src.propose("I feel alone.", draft, seed=2) == props  # seeded




# ---- the API ---------------------------------------------------------------------------------------------------

def client(log=None, **kw):
    from starlette.testclient import TestClient

    from partner.serve.app import create_app

    return TestClient(create_app(kw.pop("s", None) or suggester(), log=log, **kw), base_url="http://127.0.0.1")


def test_page_is_served_with_a_strict_csp_and_no_external_resources():
    c = client()
    r = c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    for path in ("/static/serve.js", "/static/serve.css"):
        assert c.get(path).status_code == 200
    for body in (r.text, c.get("/static/serve.js").text, c.get("/static/serve.css").text):
        assert "http://" not in body and "https://" not in body and "<script>" not in body and "style=" not in body
    assert c.get("/health").json()["logging"] is False


def test_suggest_returns_suggestions_and_a_risk_prompt():
    r = client().post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT, "k": 2})
    assert r.status_code == 200
    data = r.json()
    assert len(data["suggestions"]) == 2 and data["logged"] is False
    assert data["draft_sentences"] == split_sentences(DRAFT) and data["draft"] == DRAFT
    assert [DRAFT[a:b] for a, b in data["draft_spans"]] == data["draft_sentences"]
    s = data["suggestions"][0]
    assert {"id", "action", "position", "sentence", "gain", "win_prob", "mechanism", "adds", "sources"} <= set(s)
    assert data["risk"]["terms"] == ["died"] and "crisis" in data["risk"]["message"]
    assert client().post("/suggest", json={"seeker_post": "I failed my exam.", "draft": DRAFT}).json()["risk"] is None


@pytest.mark.parametrize("body,status,code,field", [
    ({"seeker_post": "", "draft": DRAFT}, 422, "empty_field", "seeker_post"),
    ({"seeker_post": SEEKER, "draft": "   \n "}, 422, "empty_field", "draft"),
    ({"seeker_post": SEEKER}, 422, "missing_field", "draft"),
    ({"seeker_post": SEEKER, "draft": 5}, 422, "wrong_type", "draft"),
    ({"seeker_post": SEEKER, "draft": "x" * 4001}, 422, "too_long", "draft"),
    ({"seeker_post": SEEKER, "draft": DRAFT, "k": 0}, 422, "bad_value", "k"),
    ({"seeker_post": SEEKER, "draft": DRAFT, "k": True}, 422, "bad_value", "k"),
    ({"seeker_post": SEEKER, "draft": "x" * 40_000}, 413, "too_large", None),
    ([SEEKER, DRAFT], 400, "bad_json", None),
])
def test_suggest_refuses_bad_input_with_a_clear_json_error(body, status, code, field):
    s = suggester()
    r = client(s=s).post("/suggest", json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code and err.get("field") == field and err["message"]
    assert s.sources[0].calls == 0  # no model ran


def test_suggest_refuses_non_json_bodies_unknown_hosts_and_routes():
    c = client()
    r = c.post("/suggest", content=b"seeker_post=a&draft=b", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = c.post("/suggest", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    assert c.get("/suggest").status_code == 405 and c.get("/nope").json()["error"]["code"] == "not_found"
    assert c.get("/", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding


def test_suggest_can_ask_only_some_sources():
    s = Suggester([FixedSource(PROPOSALS[:1], "quick", quick=True), FixedSource(PROPOSALS[1:], "slow")],
                  FakePreference(), FakeEpitome(), SentenceGuard())
    c = client(s=s)
    assert c.get("/health").json()["suggester"]["quick"] == ["quick"]
    r = c.post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT, "sources": ["quick"]}).json()
    assert [x["sources"] for x in r["suggestions"]] == [["quick"]] and s.sources[1].calls == 0
    assert len(c.post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT}).json()["suggestions"]) == 3
    for bad in (["oracle"], [], "quick"):
        r = c.post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT, "sources": bad})
        assert r.status_code == 422 and r.json()["error"]["field"] == "sources"


def test_nothing_is_stored_without_a_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = client()
    sid = c.post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT}).json()
    r = c.post("/feedback", json={"request_id": sid["request_id"], "suggestion_id": sid["suggestions"][0]["id"],
                                  "decision": "accepted"})
    assert r.status_code == 200 and r.json() == {"logged": False}
    assert list(tmp_path.iterdir()) == []


def test_choices_are_logged_and_become_preference_pairs(tmp_path):
    path = tmp_path / "choices.jsonl"
    c = client(log=FeedbackLog(path))
    data = c.post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT}).json()
    ids = [s["id"] for s in data["suggestions"]]
    rid = data["request_id"]
    for sid, decision in zip(ids, ("accepted", "edited", "dismissed")):
        body = {"request_id": rid, "suggestion_id": sid, "decision": decision}
        if decision == "edited":
            body["sentence"] = "I understand how heavy this is."
        assert c.post("/feedback", json=body).json() == {"logged": True}
    # a decision must name a suggestion this server showed; an edit must carry its text
    r = c.post("/feedback", json={"request_id": rid, "suggestion_id": "nope", "decision": "accepted"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_suggestion"
    r = c.post("/feedback", json={"request_id": rid, "suggestion_id": ids[0], "decision": "edited"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "sentence"
    r = c.post("/feedback", json={"request_id": rid, "suggestion_id": ids[0], "decision": "liked"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "decision"

    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["shown"] * 3 + ["decision"] * 3
    assert lines[0]["seeker_post"] == SEEKER and lines[0]["draft"] == DRAFT and lines[0]["time"].endswith("Z")
    assert (path.stat().st_mode & 0o777) == 0o600
    pairs = load_feedback_pairs(path)
    sents = split_sentences(DRAFT)
    dismissed = apply_one(sents, data["suggestions"][2]["action"], data["suggestions"][2]["position"],
                          data["suggestions"][2]["sentence"])
    assert sorted(p.reply_a for p in pairs) == sorted([
        data["suggestions"][0]["reply"],
        apply_one(sents, data["suggestions"][1]["action"], data["suggestions"][1]["position"],
                  "I understand how heavy this is.")])
    assert all(p.reply_b == dismissed and p.answer == "A" and p.question == "overall"
               and p.seeker_post == SEEKER and p.rater == "partner-serve" for p in pairs)
    assert len({p.input for p in pairs}) == 1 and pairs[0].input.startswith("serve-")
    assert {p.item_id for p in pairs} == {f"serve-{ids[0]}-{ids[2]}", f"serve-{ids[1]}-{ids[2]}"}
    assert sorted(p.system_a.split(":")[0] for p in pairs) == ["accepted", "edited"]
    assert all(p.where.startswith(f"{path}, line ") for p in pairs)


def test_a_later_decision_replaces_an_earlier_one(tmp_path):
    log = FeedbackLog(tmp_path / "c.jsonl")
    shown = {"event": "shown", "request_id": "r", "seeker_post": SEEKER, "draft": DRAFT, "action": "insert",
             "position": 0}
    log.append([{**shown, "suggestion_id": "a", "sentence": "I'm sorry."},
                {**shown, "suggestion_id": "b", "sentence": "That sounds hard."},
                {"event": "decision", "request_id": "r", "suggestion_id": "a", "decision": "dismissed"},
                {"event": "decision", "request_id": "r", "suggestion_id": "b", "decision": "accepted"}])
    assert [p.reply_a[:17] for p in load_feedback_pairs(tmp_path / "c.jsonl")] == ["That sounds hard."]
    log.append([{"event": "decision", "request_id": "r", "suggestion_id": "a", "decision": "accepted"}])
    assert load_feedback_pairs(tmp_path / "c.jsonl") == []  # both kept now: nothing compared


@pytest.mark.parametrize("line,message", [
    ("{oops", r"c.jsonl, line 2: not JSON"),
    ('{"event": "decision", "request_id": "r", "suggestion_id": "zz", "decision": "accepted"}',
     r"c.jsonl, line 2, field 'suggestion_id'"),
    ('{"event": "decision", "request_id": "r", "suggestion_id": "a", "decision": "meh"}', r"c.jsonl, line 2, field 'decision'"),
    ('{"event": "shown", "request_id": "r", "suggestion_id": "b"}', r"c.jsonl, line 2, field 'seeker_post': missing"),
    ('{"event": "clicked", "request_id": "r", "suggestion_id": "a"}', r"c.jsonl, line 2, field 'event'"),
])
def test_bad_log_lines_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"event": "shown", "request_id": "r", "suggestion_id": "a", "seeker_post": "s",
                                "draft": "d.", "action": "insert", "position": 0, "sentence": "x."}) + "\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        read_events(path)


def test_concurrent_appends_never_tear_a_line(tmp_path):
    path = tmp_path / "c.jsonl"
    logs = [FeedbackLog(path) for _ in range(4)]  # separate objects: the file lock, not a shared mutex, orders them
    big = "x" * 20_000

    def write(i):
        for j in range(25):
            logs[i].append([{"event": "decision", "request_id": str(i), "suggestion_id": str(j), "decision": big}])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 100 and all(json.loads(x)["decision"] == big for x in lines)


def test_cli_refuses_bad_arguments_before_loading_anything(capsys):
    from partner.cli.serve import main

    assert main(["-k", "0"]) == 2 and "-k must be" in capsys.readouterr().err
    assert main(["--sources", "policy,oracle", "--preference", "/nonexistent"]) == 2
    assert "oracle" in capsys.readouterr().err


def test_retrieval_source_proposes_the_nearest_sentences_at_the_start_and_the_end():
    import numpy as np
    import torch

    from partner.retrieval import RetrievalIndex
    from partner.serve.suggest import RetrievalSource

    class Embedder:
        def encode(self, texts, **kw):
            return np.array([[1.0, 0.0]] * len(texts), dtype=np.float32)

    index = RetrievalIndex(["far", "Nearest one.", "Second one.", "Third."],
                           torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.8, 0.6], [0.6, 0.8]]), Embedder())
    props = RetrievalSource(index, n=2).propose("post", "One. Two. Three.")
    assert [(p.action, p.position, p.sentence) for p in props] == [
        ("insert", 0, "Nearest one."), ("insert", 3, "Nearest one."), ("insert", 0, "Second one."),
        ("insert", 3, "Second one.")]
    # a sentence the draft already has is skipped
    props = RetrievalSource(index, n=2, places=("start",)).propose("post", "Nearest one. Two.")
    assert [p.sentence for p in props] == ["Second one.", "Third."]


def test_zeroshot_source_inserts_its_sentence():
    from partner.rewriters import ZeroShotRewriter
    from partner.serve.suggest import ZeroShotSource

    rw = ZeroShotRewriter("tiny-gpt2", decoding="sample", max_new_tokens=8, max_input_tokens=64)
    props = ZeroShotSource(rw).propose("I feel alone.", "One. Two.", seed=1)
    assert all(p.action == "insert" and p.position == 0 and p.source == "zeroshot" for p in props)
    assert [(p.sentence) for p in props] == [s for _, e in rw.rewrite(["I feel alone."], ["One. Two."], seed=1)
                                            for s in [x["sentence"] for x in e]]

def test_partner_train_preference_learns_from_the_choices_log(tmp_path):
    """preference.feedback: the log's pairs join the training examples, the accepted reply as the winner."""
    from classifiers.config import PreferenceConfig
    from partner.stages.preference import examples_from_pairs, feedback_pairs

    path = tmp_path / "choices.jsonl"
    c = client(log=FeedbackLog(path))
    data = c.post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT}).json()
    kept, dropped = data["suggestions"][0], data["suggestions"][1]
    for s, decision in ((kept, "accepted"), (dropped, "dismissed")):
        c.post("/feedback", json={"request_id": data["request_id"], "suggestion_id": s["id"], "decision": decision})
    pairs = feedback_pairs(f" {path} ,")
    [ex] = examples_from_pairs(pairs, PreferenceConfig())
    assert (ex.chosen, ex.rejected) == (kept["reply"], dropped["reply"])
    assert feedback_pairs("") == []
    with pytest.raises(FileNotFoundError, match="no partner-serve log"):
        feedback_pairs(str(tmp_path / "missing.jsonl"))


def test_the_preference_stage_trains_on_ratings_and_the_log(tmp_path, monkeypatch, data_dir):
    """partner-train preference with preference.feedback: the log's pairs reach the trainer beside the ratings."""
    import classifiers.preference as cp
    from partner.config import PartnerConfig
    from partner.stages import preference as stage

    path = tmp_path / "choices.jsonl"
    c = client(log=FeedbackLog(path))
    data = c.post("/suggest", json={"seeker_post": SEEKER, "draft": DRAFT}).json()
    for s, decision in zip(data["suggestions"][:2], ("accepted", "dismissed")):
        c.post("/feedback", json={"request_id": data["request_id"], "suggestion_id": s["id"], "decision": decision})
    seen = {}

    class Model:
        meta = {}

        def score(self, posts, replies, batch_size=32):
            return [0.0] * len(replies)

    def fake_train(cfg, examples, out, record):
        seen["examples"], seen["record"] = examples, record
        return Model()

    monkeypatch.setattr(cp, "train", fake_train)
    cfg = PartnerConfig(run_dir=str(tmp_path / "run"))
    cfg.preference.feedback = str(path)
    stage.run(cfg)
    ours = [e for e in seen["examples"] if e.seeker_post == SEEKER]
    assert [(e.chosen, e.rejected) for e in ours] == [(data["suggestions"][0]["reply"], data["suggestions"][1]["reply"])]
    assert len(seen["examples"]) > 100 and seen["record"]["data"]["feedback_pairs"] == 1
