"""Open a local HTML file in headless Chromium over the DevTools protocol (CDP).

Chromium is the system's (Debian package ``chromium``; nothing is downloaded) and is driven
through ``--remote-debugging-port`` with ``websocket-client``. ``open_page`` records every
console message, uncaught exception, log entry and network request of the page, evaluates
JavaScript checks and saves a full-page screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
START_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 60.0


def find_browser() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


# JS checks every report test asks for: the SVG figures, and those the layout drew
FIGURE_CHECKS = {
    "svgs": "document.querySelectorAll('svg').length",
    "svgs_drawn": "Array.from(document.querySelectorAll('svg'))"
    ".filter(s => s.getBoundingClientRect().width > 200).length",
}


@dataclass
class PageRecord:
    url: str
    console: list[dict[str, Any]] = field(default_factory=list)  # Runtime.consoleAPICalled
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # Runtime.exceptionThrown
    log: list[dict[str, Any]] = field(default_factory=list)  # Log.entryAdded
    requests: list[str] = field(default_factory=list)  # URLs, in order
    values: dict[str, Any] = field(default_factory=dict)  # results of the JS checks

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries, as text."""
        out = [
            " ".join(str(a.get("value", a.get("description", ""))) for a in c.get("args", []))
            for c in self.console
            if c.get("type") in ("error", "assert")
        ]
        out += [e.get("exceptionDetails", {}).get("text", "exception") for e in self.exceptions]
        out += [e["entry"].get("text", "") for e in self.log if e["entry"].get("level") == "error"]
        return out

    @property
    def foreign_requests(self) -> list[str]:
        """Every request but the page itself and what it carries inline (``data:`` URIs: the
        report's embedded figures, which Chromium also logs as requests)."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


class _Session:
    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=LOAD_TIMEOUT_S, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.ws.recv()))

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        self.ws.settimeout(0.2)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # websocket timeout: nothing more for now
                pass
        self.ws.settimeout(LOAD_TIMEOUT_S)


def _devtools_url(proc: subprocess.Popen, profile: Path) -> str:
    """The browser's DevTools port, from the DevToolsActivePort file it writes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    port_file = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the browser exited with code {proc.returncode}")
        if port_file.is_file() and (lines := port_file.read_text().splitlines()):
            return f"http://127.0.0.1:{int(lines[0])}"
        time.sleep(0.1)
    raise TimeoutError("the browser did not open its DevTools port")


def open_page(
    html: Path,
    screenshot: Path,
    checks: dict[str, str] | None = None,
    width: int = 1280,
    height: int = 900,
) -> PageRecord:
    """Load ``html`` (a local file), record what happens, evaluate ``checks`` (name: JS
    expression) and save a full-page PNG to ``screenshot``."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium found")
    url = html.resolve().as_uri()
    # Chromium's helper processes may still write to the profile after the browser exits
    with tempfile.TemporaryDirectory(prefix="cdp-", ignore_cleanup_errors=True) as tmp:
        profile = Path(tmp)
        args = [
            browser,
            "--headless=new",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--mute-audio",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        if os.geteuid() == 0:  # CI containers run as root, where the sandbox cannot start
            args.insert(1, "--no-sandbox")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = _devtools_url(proc, profile)
            with urllib.request.urlopen(f"{base}/json/list", timeout=10) as resp:
                targets = json.loads(resp.read())
            page = next(t for t in targets if t.get("type") == "page")
            session = _Session(page["webSocketDebuggerUrl"])
            for domain in ("Runtime", "Log", "Network", "Page"):
                session.call(f"{domain}.enable")
            session.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            session.events.clear()  # about:blank's own events
            session.call("Page.navigate", url=url)
            session.wait_for("Page.loadEventFired", LOAD_TIMEOUT_S)
            session.drain(1.0)
            record = PageRecord(url)
            for ev in session.events:
                method, params = ev.get("method"), ev.get("params", {})
                if method == "Runtime.consoleAPICalled":
                    record.console.append(params)
                elif method == "Runtime.exceptionThrown":
                    record.exceptions.append(params)
                elif method == "Log.entryAdded":
                    record.log.append(params)
                elif method == "Network.requestWillBeSent":
                    record.requests.append(params["request"]["url"])
            for name, expression in (checks or {}).items():
                result = session.call("Runtime.evaluate", expression=expression, returnByValue=True)
                record.values[name] = result.get("result", {}).get("value")
            shot = session.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            session.ws.close()
            return record
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
