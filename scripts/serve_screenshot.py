"""docs/serve.png: partner-serve's page with the shipped models, after one suggestion is accepted.

Starts the app in-process (the shipped models, as ``partner-serve``) on a free 127.0.0.1 port, drives headless
Chromium over the DevTools protocol (the driver of tests/test_ab_page.py: needs websocket-client, the dev extra)
through paste -> suggest -> accept the first suggestion, and saves a screenshot of the whole page.

    python scripts/serve_screenshot.py [-o docs/serve.png]
"""

from __future__ import annotations

import argparse
import base64
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]


def main(argv=None) -> int:
    import uvicorn

    from bench_serve import DRAFT, SEEKER
    from partner.config import DEFAULT_CONFIG, load_config
    from partner.serve.app import create_app
    from partner.serve.suggest import build_suggester
    from test_ab_page import Chrome

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "serve.png"))
    ap.add_argument("--width", type=int, default=1000)
    args = ap.parse_args(argv)

    app = create_app(build_suggester(load_config(DEFAULT_CONFIG)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    with tempfile.TemporaryDirectory() as tmp:
        chrome = Chrome(Path(tmp))
        try:
            chrome.send("Emulation.setDeviceMetricsOverride", session=True, width=args.width, height=900,
                        deviceScaleFactor=1, mobile=False)
            chrome.open(url)
            for element, text in (("seeker", SEEKER), ("draft", DRAFT)):
                chrome.js(f"document.getElementById('{element}').focus()")
                chrome.send("Input.insertText", session=True, text=text)
            chrome.click("suggest")
            deadline = time.time() + 900
            while chrome.js("document.getElementById('status').dataset.done") != "1":
                if time.time() > deadline:
                    raise TimeoutError("no suggestions within 15 minutes")
                time.sleep(0.5)
            first = chrome.js("(document.querySelector('#list li button.accept') || {}).id")
            if first:
                chrome.click(first)
            height = chrome.js("document.documentElement.scrollHeight")
            chrome.send("Emulation.setDeviceMetricsOverride", session=True, width=args.width, height=int(height),
                        deviceScaleFactor=1, mobile=False)
            chrome.js("window.scrollTo(0, 0)")
            shot = chrome.send("Page.captureScreenshot", session=True, format="png")
        finally:
            chrome.close()
    server.should_exit = True
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_bytes(base64.b64decode(shot["data"]))
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
