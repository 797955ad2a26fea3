"""Headless Chromium driven over the DevTools protocol, for the report's browser test.

Stdlib only: Chromium's `--remote-debugging-pipe` speaks the DevTools protocol over file
descriptors 3 (commands in) and 4 (events and answers out), one NUL-terminated JSON message each
(https://chromedevtools.github.io/devtools-protocol/ ; Chromium's
`content/browser/devtools/devtools_pipe_handler.cc`). Nothing can leave the machine: every host
name resolves to nothing (`--host-resolver-rules`), every request goes to a closed port on
127.0.0.1 (`--proxy-server`), and background networking is off. Every request the page makes is
still recorded (`Network.requestWillBeSent`), so a page that tries to fetch is caught.

    with Chromium() as browser:
        visit = browser.open(Path("report.html"))   # requests, console entries, screenshot
        visit.evaluate("document.title")

`python tests/browser.py PAGE.html OUT.png` writes a full-page screenshot (how
docs/report-screenshot.png is made).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = "chromium is not installed: run .ci/install-test-tools (Debian: apt-get install chromium)"
WIDTH = 1280


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Visit:
    browser: "Chromium"
    session: str
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    log: list[dict] = field(default_factory=list)  # console and browser log entries (CSP refusals show here)

    def evaluate(self, expression: str):
        answer = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                   self.session, self)
        if "exceptionDetails" in answer:
            raise AssertionError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self) -> bytes:
        """The whole page as PNG, at WIDTH CSS pixels and scale 1."""
        height = int(self.browser.call("Page.getLayoutMetrics", {}, self.session, self)["cssContentSize"]["height"])
        self.browser.call("Emulation.setDeviceMetricsOverride",
                          {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}, self.session, self)
        shot = self.browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                 self.session, self)
        return base64.b64decode(shot["data"])


class Chromium:
    def __init__(self, binary: str | None = None, timeout: float = 60):
        self.binary = binary or chromium_binary()
        if self.binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.timeout = timeout
        self._id = 0
        self._buffer = b""

    def __enter__(self) -> "Chromium":
        self.profile = tempfile.mkdtemp(prefix="residency-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # in the child: the pipe ends become fds 3 and 4 (via fds >= 10: no clobbering)
            high_r, high_w = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-pipe",
             "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
             "--disable-sync", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
             "--proxy-bypass-list=<-loopback>", f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close", {})
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- the protocol ---------------------------------------------------------------------------

    def _receive(self) -> dict:
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], self.timeout)
            if not ready:
                raise TimeoutError(f"chromium sent nothing for {self.timeout}s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict, session: str | None = None, visit: Visit | None = None,
             until_event: str | None = None) -> dict:
        """Send one command; record events for `visit` while waiting for its answer (and then,
        with `until_event`, for that event)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        answer, seen = None, until_event is None
        while answer is None or not seen:
            got = self._receive()
            if got.get("id") == self._id:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                answer = got["result"]
                continue
            if visit is not None and got.get("sessionId") == visit.session:
                event, p = got.get("method"), got.get("params", {})
                if event == "Network.requestWillBeSent":
                    visit.requests.append(p["request"]["url"])
                elif event == "Log.entryAdded":
                    visit.log.append(p["entry"])
                elif event == "Runtime.consoleAPICalled":
                    visit.log.append({"level": p.get("type"), "text": str(p.get("args"))})
                seen = seen or event == until_event
        return answer

    def open(self, page: Path) -> Visit:
        """Load `page` in a new tab with network, log and page events on; return when loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        visit = Visit(self, session)
        for domain in ("Network", "Log", "Page", "Runtime"):
            self.call(f"{domain}.enable", {}, session, visit)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session, visit)
        self.call("Page.navigate", {"url": page.resolve().as_uri()}, session, visit, until_event="Page.loadEventFired")
        return visit


def main(argv: list[str]) -> int:
    page, out = Path(argv[0]), Path(argv[1])
    with Chromium() as browser:
        out.write_bytes(browser.open(page).screenshot())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
