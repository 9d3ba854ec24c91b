"""The rating page, driven in headless Chromium over the DevTools protocol.

A rater types their id, answers every item with the keyboard, reloads midway (nothing may be
lost), downloads the ratings with the page's own buttons, and the downloaded file goes through
`partner-ab analyze` with the expected result. CI installs Chromium (scripts/ci-setup.sh); where
it is absent locally the test skips and says why.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from partner.ab.analyze import AnalyzeConfig, analyze
from partner.ab.export import ExportConfig, export

FIX = Path(__file__).parent / "fixtures" / "ab"
BIN = Path(sys.executable).parent
pytest.importorskip("websocket", reason="websocket-client is not installed (pip install -e '.[dev]')")
from helpers.browser import CHROMIUM, Chrome  # noqa: E402

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found: run scripts/ci-setup.sh "
                                "(apt-get install chromium) or set CHROMIUM=/path/to/chrome")


@pytest.fixture
def chrome(tmp_path):
    c = Chrome(tmp_path / "chrome")
    yield c
    c.close()


@pytest.mark.slow
def test_rate_reload_download_analyze(tmp_path, chrome):
    res = export([str(FIX / "partner.jsonl"), str(FIX / "bart.jsonl")], tmp_path / "study",
                 ExportConfig(seed=5, attention_checks=2, include_original="original"))
    key = json.loads(Path(res["key"]).read_text())
    page = Path(res["package"]) / "rating.html"
    chrome.open(page.as_uri())

    items = chrome.js("DATA.items")
    assert [it["item_id"] for it in items] == list(key["items"])  # the page shows the package, in order
    n = len(items)
    # the rater id prompt has focus; type and press Enter
    assert chrome.js("document.activeElement.id") == "rater"
    chrome.send("Input.insertText", session=True, text="rater 7")
    chrome.key("Enter")

    def answers_for(k):
        """Deterministic rater: empathy -> partner's side, fluency -> tie, specificity -> against partner,
        overall -> partner's side."""
        if k["is_attention_check"]:
            return [k["expected"][q] for q in key["questions"]]
        sides = {k["system_a"]: "A", k["system_b"]: "B"}
        p = sides.get("partner")
        other = {"A": "B", "B": "A"}.get(p, "A")
        return [p or "tie", "tie", other if p else "A", p or "tie"]

    def rate(i, check_text=True):
        it = items[i]
        if not check_text:  # keys straight after another key: none may be swallowed
            for a in answers_for(key["items"][it["item_id"]]):
                chrome.key(a)
            return
        # what is shown is the item's text, verbatim (HTML in posts stays text)
        shown = chrome.js("[seeker.textContent, document.getElementById('resp-a').textContent, "
                          "document.getElementById('resp-b').textContent]")
        assert shown == [it["seeker_post"], it["response_a"], it["response_b"]]
        for a in answers_for(key["items"][it["item_id"]]):
            chrome.key(a)

    half = n // 2
    rate(0, check_text=False)
    chrome.key("Enter")
    assert chrome.js("document.getElementById('where').textContent") == f"item 2 of {n} \u00b7 1 rated"
    for i in range(1, half):
        rate(i)
        chrome.key("Enter")
    # half-way: answer one question of the next item, then reload
    first = answers_for(key["items"][items[half]["item_id"]])[0]
    chrome.key(first)
    assert chrome.js("document.getElementById('next').disabled") is True  # 2 questions still open
    progress = chrome.js("document.querySelector('#progress > div').style.width")
    chrome.reload()
    assert chrome.wait_js("document.getElementById('rate').hidden", False) is False  # straight back in, no prompt
    assert chrome.js("document.getElementById('who').textContent") == "rater: rater 7"
    assert chrome.js("document.getElementById('where').textContent") == f"item {half + 1} of {n} \u00b7 {half} rated"
    assert chrome.js("document.querySelector('#progress > div').style.width") == progress
    checked = chrome.js("[...document.querySelectorAll('input[type=radio]:checked')].map(e => e.name + '=' + e.value)")
    assert checked == [f"q-empathy={first}"]
    # going back shows the earlier answers
    chrome.key("ArrowLeft")
    prev = answers_for(key["items"][items[half - 1]["item_id"]])
    assert chrome.js("[...document.querySelectorAll('input[type=radio]:checked')].map(e => e.value)") == prev
    chrome.key("Enter")

    # a partial download midway, with the header button
    partial = chrome.download("dl-csv")
    for a in answers_for(key["items"][items[half]["item_id"]])[1:]:
        chrome.key(a)
    chrome.key("Enter")
    for i in range(half + 1, n):
        rate(i)
        chrome.key("Enter")
    assert chrome.js("document.getElementById('done').hidden") is False
    assert "all %d items" % n in chrome.js("document.getElementById('done-text').textContent")
    csv_path = chrome.download("done-csv")
    json_path = chrome.download("done-json")
    assert csv_path.suffix == ".csv" and json_path.suffix == ".json" and csv_path.name.startswith("ratings-")
    assert partial.name.endswith(f"-rater_7-{half}of{n}.csv") and csv_path.name.endswith(f"-{n}of{n}.csv")

    lines = csv_path.read_text().splitlines()
    assert lines[0] == "package_id,rater_id,item_id,question,answer,timestamp" and len(lines) == 1 + 4 * n
    assert len(partial.read_text().splitlines()) == 1 + 4 * half + 1
    js = json.loads(json_path.read_text())
    assert js["complete"] is True and js["rater_id"] == "rater 7" and len(js["ratings"]) == 4 * n

    out = tmp_path / "analysis"
    run = subprocess.run([str(BIN / "partner-ab"), "analyze", str(partial), str(csv_path), "--key", res["key"],
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads((out / "results.json").read_text())
    assert result["excluded_raters"] == [] and result["raters"][0]["checks_failed"] == 0
    assert result["raters"][0]["items_complete"] == n
    rows = {(r["system"], r["versus"], r["question"]): r for r in result["results"]}
    for other in ("bart", "original"):
        assert (rows[("partner", other, "empathy")]["wins"], rows[("partner", other, "empathy")]["n"]) == (6, 6)
        assert rows[("partner", other, "fluency")]["ties"] == 6
        assert rows[("partner", other, "specificity")]["losses"] == 6
        assert rows[("partner", other, "overall")]["wins"] == 6
    # the partial file repeated half the ratings: counted once, and the report says so
    assert sum("counted once" in note for note in result["notes"]) == 4 * half + 1
    # the JSON download analyses the same (in-process: one CLI round trip above is enough)
    again = analyze([str(json_path)], res["key"], tmp_path / "a2", AnalyzeConfig())
    assert json.loads((tmp_path / "a2" / "results.json").read_text())["results"] == result["results"]
    assert again["raters"] == result["raters"]
