"""partner-serve's page in headless Chromium (DevTools protocol, as tests/test_ab_page.py): paste a post and a
draft, get suggestions, accept one, edit one, dismiss one, copy the reply; and the API's bad input from the
browser. The app runs under uvicorn on an ephemeral 127.0.0.1 port, with the fake models."""

import json
import socket
import threading
import time

import pytest
from helpers.serve_fakes import DRAFT, SEEKER, FakeEpitome, FakePreference, FixedSource, PROPOSALS
from helpers.browser import CHROMIUM, Chrome

from core.text import split_sentences
from partner.serve.app import create_app
from partner.serve.feedback import FeedbackLog, load_feedback_pairs
from partner.serve.suggest import Suggester
from rewards.sentence_guard import SentenceGuard

uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install -e .)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found: run scripts/ci-setup.sh")


@pytest.fixture
def server(tmp_path):
    """(base URL, log path): the app with fake models and a log, on a free 127.0.0.1 port."""
    log_path = tmp_path / "choices.jsonl"
    # a quick source with one proposal and a slow one with the rest: the page asks the quick one first
    sources = [FixedSource(PROPOSALS[:1], "quick", quick=True), FixedSource(PROPOSALS[1:], "slow")]
    app = create_app(Suggester(sources, FakePreference(), FakeEpitome(), SentenceGuard()), log=FeedbackLog(log_path))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", log_path
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def chrome(tmp_path):
    c = Chrome(tmp_path / "chrome")
    c.send("Log.enable", session=True)
    yield c
    c.close()


def type_into(chrome, element_id, text):
    chrome.js(f"document.getElementById({json.dumps(element_id)}).focus()")
    chrome.send("Input.insertText", session=True, text=text)


def wait_for(chrome, expr, timeout=30):
    deadline = time.time() + timeout
    while not chrome.js(expr):
        assert time.time() < deadline, f"timed out waiting for {expr}"
        time.sleep(0.05)


def test_suggest_accept_edit_dismiss_copy(server, chrome):
    url, log_path = server
    chrome.send("Browser.grantPermissions", origin=url, permissions=["clipboardReadWrite", "clipboardSanitizedWrite"])
    chrome.open(url + "/")
    wait_for(chrome, "state.quick.length === 1")
    assert chrome.js("document.getElementById('results').hidden") is True
    # nothing pasted: the page says so and asks nothing of the server
    chrome.click("suggest")
    assert "Paste both" in chrome.js("document.getElementById('status').textContent")

    type_into(chrome, "seeker", SEEKER)
    type_into(chrome, "draft", DRAFT.replace(". ", ".\n\n", 1))  # a paragraph break the reply must keep
    chrome.click("suggest")
    wait_for(chrome, "document.getElementById('status').dataset.done === '1'")
    cards = chrome.js("[...document.querySelectorAll('#list li')].map(li => [li.id, li.querySelector('.where').textContent, "
                      "li.querySelector('.sentence').textContent, li.querySelector('.meta').textContent, "
                      "li.querySelector('.preview ins').textContent])")
    assert [c[2] for c in cards] == ["I understand how heavy that feels.", "How are you feeling about it now?",
                                     "I'm so sorry you are going through this."]
    assert [c[1] for c in cards] == ["Replace sentence 2", "Add at the end", "Insert at the start"]
    assert chrome.js("document.getElementById('status').textContent").startswith("3 suggestion(s) in ")
    assert all(c[2] == c[4] for c in cards)  # the preview marks the sentence where it goes
    assert "predicted gain +1.83" in cards[0][3] and "adds emotional reaction" in cards[0][3]
    assert chrome.js("document.querySelector('#list li .preview del').textContent") == "Try to keep busy."
    # the post names death: a prompt to the supporter, not a reply
    assert chrome.js("document.getElementById('risk').hidden") is False
    assert "crisis resources" in chrome.js("document.getElementById('risk').textContent")
    assert chrome.js("document.getElementById('final').value") == DRAFT.replace(". ", ".\n\n", 1)

    ids = [c[0][2:] for c in cards]
    chrome.click(f"accept-{ids[2]}")  # insert at the start
    chrome.click(f"edit-{ids[0]}")    # replace sentence 2, reworded
    chrome.js(f"document.getElementById('text-{ids[0]}').value = ''")
    type_into(chrome, f"text-{ids[0]}", "I can see how heavy this is for you.")
    chrome.click(f"use-{ids[0]}")
    chrome.click(f"dismiss-{ids[1]}")
    sents = split_sentences(DRAFT)
    want = (f"I'm so sorry you are going through this. {sents[0]}\n\nI can see how heavy this is for you. "
            f"{sents[2]}")
    assert chrome.js("document.getElementById('final').value") == want
    assert chrome.js(f"document.getElementById('accept-{ids[1]}').disabled") is True

    chrome.click("copy")
    wait_for(chrome, "document.getElementById('copied').textContent === 'Copied.'")
    assert chrome.js("navigator.clipboard.readText()") == want

    # every shown suggestion and every decision is in the log, and the log gives pairs
    deadline = time.time() + 10
    while len(log_path.read_text().splitlines()) < 7:
        assert time.time() < deadline, log_path.read_text()
        time.sleep(0.05)
    events = [json.loads(x) for x in log_path.read_text().splitlines()]
    # two requests: the quick source's one suggestion first, then the ranking over every source
    first, second = dict.fromkeys(e["request_id"] for e in events if e["event"] == "shown")
    assert [e["sentence"] for e in events if e["request_id"] == first] == [PROPOSALS[0][2]]
    assert len([e for e in events if e["request_id"] == second and e["event"] == "shown"]) == 3
    assert sorted((e["suggestion_id"], e["decision"]) for e in events if e["event"] == "decision") == \
        sorted([(ids[2], "accepted"), (ids[0], "edited"), (ids[1], "dismissed")])
    pairs = load_feedback_pairs(log_path)
    assert len(pairs) == 2 and {p.reply_b for p in pairs} == {DRAFT + " How are you feeling about it now?"}
    # no Content-Security-Policy violation or other error in the console
    errors = [e for e in chrome.events if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    assert errors == [], [e["params"]["entry"].get("url") for e in errors]


def test_bad_input_from_the_browser(server, chrome):
    url, log_path = server
    chrome.open(url + "/")
    call = ("fetch('/suggest', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: %s})"
            ".then(async r => [r.status, await r.json()])")
    status, body = chrome.js(call % "JSON.stringify({seeker_post: 'x', draft: ''})")
    assert status == 422 and body["error"]["field"] == "draft"
    status, body = chrome.js(call % "JSON.stringify({seeker_post: 'x', draft: 'y'.repeat(100000)})")
    assert status == 413 and body["error"]["code"] == "too_large"
    # the page shows a server error in its status line (an oversized draft pasted past the textarea's limit)
    chrome.js("document.getElementById('seeker').value = 'I lost my job.'; "
              "document.getElementById('draft').removeAttribute('maxlength'); "
              "document.getElementById('draft').value = 'z'.repeat(5000)")
    chrome.click("suggest")
    wait_for(chrome, "document.getElementById('status').className === 'error'")
    assert "limit is 4000" in chrome.js("document.getElementById('status').textContent")
    assert not log_path.exists()  # nothing shown, nothing logged
