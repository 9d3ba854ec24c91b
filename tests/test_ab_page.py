"""The rating page, driven in headless Chromium over the DevTools protocol.

A rater types their id, answers every item with the keyboard, reloads midway (nothing may be
lost), downloads the ratings with the page's own buttons, and the downloaded file goes through
`partner-ab analyze` with the expected result. CI installs Chromium (scripts/ci-setup.sh); where
it is absent locally the test skips and says why.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from partner.ab.analyze import AnalyzeConfig, analyze
from partner.ab.export import ExportConfig, export

FIX = Path(__file__).parent / "fixtures" / "ab"
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") \
    or shutil.which("google-chrome")

websocket = pytest.importorskip("websocket", reason="websocket-client is not installed (pip install -e '.[dev]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found: run scripts/ci-setup.sh "
                                "(apt-get install chromium) or set CHROMIUM=/path/to/chrome")

KEYS = {"A": ("a", "KeyA", 65), "B": ("b", "KeyB", 66), "tie": ("t", "KeyT", 84),
        "Enter": ("Enter", "Enter", 13), "ArrowLeft": ("ArrowLeft", "ArrowLeft", 37)}


class Chrome:
    """Just enough of the DevTools protocol: one page, evaluate, keys, clicks, reload, downloads."""

    def __init__(self, workdir: Path):
        self.profile = workdir / "profile"
        self.downloads = workdir / "downloads"
        self.downloads.mkdir(parents=True)
        self.log = open(workdir / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "about:blank"], stdout=self.log, stderr=subprocess.STDOUT)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.time() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"Chromium did not start; see {workdir / 'chromium.log'}")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)
        self.send("Browser.setDownloadBehavior", behavior="allowAndName", downloadPath=str(self.downloads),
                  eventsEnabled=True)

    def send(self, method, session=False, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, pred=lambda p: True, timeout=30):
        deadline = time.time() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and pred(ev.get("params", {})):
                    return self.events.pop(i)["params"]
            if time.time() > deadline:
                raise TimeoutError(f"no {method} event within {timeout} s")
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass

    def js(self, expr):
        res = self.send("Runtime.evaluate", session=True, expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expr}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def open(self, url):
        self.events.clear()
        self.send("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def reload(self):
        """Reload and wait until the new document has run its scripts (a load event alone raced on a busy
        machine: once, the first query after it still saw the page's initial state)."""
        before = self.js("window.__loadedAt = window.__loadedAt || Math.random()")
        self.events.clear()
        self.send("Page.reload", session=True)
        self.wait_event("Page.loadEventFired")
        deadline = time.time() + 30
        while (self.js("document.readyState") != "complete"
               or self.js("window.__loadedAt = window.__loadedAt || Math.random()") == before):
            assert time.time() < deadline, "the reloaded page did not finish loading within 30 s"
            time.sleep(0.05)

    def key(self, name):
        key, code, vk = KEYS[name]
        text = {"Enter": "\r"}.get(key, key if len(key) == 1 else "")
        self.send("Input.dispatchKeyEvent", session=True, type="keyDown", key=key, code=code,
                  windowsVirtualKeyCode=vk, text=text)
        self.send("Input.dispatchKeyEvent", session=True, type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk)

    def click(self, element_id):
        """A real mouse click at the element's centre (a user gesture, as downloads want)."""
        box = self.js(f"(() => {{ const e = document.getElementById({json.dumps(element_id)}); e.scrollIntoView(); "
                      "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2, "
                      "!e.hidden && r.width > 0]; })()")
        assert box[2], f"#{element_id} is not visible"
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", session=True, type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def download(self, element_id) -> Path:
        self.click(element_id)
        begin = self.wait_event("Browser.downloadWillBegin")
        self.wait_event("Browser.downloadProgress",
                        lambda p: p.get("guid") == begin["guid"] and p.get("state") == "completed")
        saved = self.downloads / begin["guid"]  # allowAndName: saved under the guid, so no name clashes
        for _ in range(50):  # the file is renamed into place right after the event
            if saved.exists():
                break
            time.sleep(0.1)
        path = self.downloads / begin["suggestedFilename"]
        assert not path.exists(), f"{path.name} downloaded twice"
        saved.rename(path)
        return path

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.log.close()


@pytest.fixture
def chrome(tmp_path):
    c = Chrome(tmp_path / "chrome")
    yield c
    c.close()


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
    assert chrome.js("document.getElementById('rate').hidden") is False  # straight back in, no prompt
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
