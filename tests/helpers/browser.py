"""A headless Chromium driven over the DevTools protocol, for the page tests (rating page, partner-serve).

Just enough of the protocol: one page, evaluate, keys, clicks, reload, downloads. Needs
websocket-client (the dev extra) and a Chromium (scripts/ci-setup.sh).
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import websocket

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") \
    or shutil.which("google-chrome")

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

    def wait_js(self, expr, expected, timeout=15):
        """The value of ``expr`` once it equals ``expected`` (polled: the page restores its state from
        storage after load, and a busy machine can run that a moment later); the last value at timeout."""
        deadline = time.time() + timeout
        while (value := self.js(expr)) != expected and time.time() < deadline:
            time.sleep(0.05)
        return value

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
