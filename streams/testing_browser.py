"""A real headless Chromium for page tests, with no dependency beyond the ``chromium`` binary.

Two ways to drive it:

- :func:`chromium` runs it once on a URL (``--dump-dom``, ``--screenshot``) and returns its
  stdout; :func:`parse` turns a dumped DOM into a small :class:`Node` tree to query.
- :class:`Browser` keeps one running and talks the DevTools protocol to it over a pipe
  (``--remote-debugging-pipe``: no port, no WebSocket library): open a page, type, click,
  evaluate JavaScript, wait until the DOM satisfies a condition, take a screenshot::

      with Browser() as browser:
          page = browser.open("http://127.0.0.1:6066/")
          page.wait_for("document.querySelectorAll('#plan .zone').length == 14")
          page.click("button[data-action=ack]")
          dom = page.dom()  # a Node tree
          page.screenshot(tmp_path / "page.png")

Waits poll until a condition holds or a generous timeout passes: no test sleeps for a fixed time.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--mute-audio",
]


def chromium(url: str, *args: str, budget_ms: int = 5000, timeout: float = 60) -> str:
    """Run headless Chromium once on ``url`` with a throw-away profile; its stdout."""
    assert CHROMIUM is not None, "chromium not installed"
    with tempfile.TemporaryDirectory(prefix="crowdsafe-chromium-") as profile:
        cmd = [
            CHROMIUM,
            *_FLAGS,
            f"--user-data-dir={profile}",
            # Virtual time: the page's timers run for this long, without waiting.
            f"--virtual-time-budget={budget_ms}",
            *args,
            url,
        ]
        # Own session, so a hung browser is killed with all its helper processes.
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    return out


# --- a canned HTTP server for the page to talk to ----------------------------------------------


class StubServer(ThreadingHTTPServer):
    """A threading HTTP server on loopback that does not report a page that went away."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StubHandler(BaseHTTPRequestHandler):
    """Base of a stub server's handler: quiet, with one way to answer."""

    def send_body(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, doc: Any) -> None:
        self.send_body(status, "application/json", json.dumps(doc).encode())

    def log_message(self, *args):
        pass


# --- a small DOM to query ----------------------------------------------------------------------


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return " ".join(
            " ".join((c if isinstance(c, str) else c.text()).split()) for c in self.children
        ).strip()

    def find_all(self, pred: Callable[[Node], bool]) -> list[Node]:
        found = []
        for c in self.children:
            if isinstance(c, Node):
                if pred(c):
                    found.append(c)
                found.extend(c.find_all(pred))
        return found

    def by_id(self, id_: str) -> Node:
        (node,) = self.find_all(lambda n: n.attrs.get("id") == id_)
        return node

    def with_attr(self, name: str, value: str | None = None) -> list[Node]:
        return self.find_all(
            lambda n: name in n.attrs and (value is None or n.attrs[name] == value)
        )


class _TreeBuilder(HTMLParser):
    VOID = {"meta", "br", "link", "img", "input", "hr", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):  # <polygon ... /> in SVG
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if self.stack[-1].tag not in ("script", "style"):
            self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.root


# --- a browser kept running, driven over the DevTools protocol ---------------------------------


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with a throw-away profile, driven over ``--remote-debugging-pipe``
    (the browser reads commands on fd 3 and answers on fd 4, NUL-separated JSON)."""

    def __init__(self, window: tuple[int, int] = (1600, 1000), timeout: float = 30) -> None:
        assert CHROMIUM is not None, "chromium not installed"
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="crowdsafe-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # High numbers, so the dup2 onto 3 and 4 in the child cannot clobber one another.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (to_child_r, from_child_w)]
        os.close(to_child_r)
        os.close(from_child_w)

        def onto_3_and_4() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *_FLAGS,
                f"--user-data-dir={self._profile.name}",
                f"--window-size={window[0]},{window[1]}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4, *high),
            preexec_fn=onto_3_and_4,
            start_new_session=True,
        )
        for fd in high:
            os.close(fd)
        self._next_id = 0
        self._lock = threading.Lock()
        self._answers: dict[int, dict] = {}
        self._events: list[dict] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._answers[-1] = {"error": {"message": "browser closed the pipe"}}
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """One DevTools command; its result (raises :class:`BrowserError` on an error)."""
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while msg_id not in self._answers:
                if -1 in self._answers:
                    raise BrowserError(self._answers[-1]["error"]["message"])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"{method}: no answer in {self.timeout} s")
                self._cond.wait(left)
            answer = self._answers.pop(msg_id)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def events(self, method: str, session: str | None = None) -> list[dict]:
        with self._cond:
            return [
                e["params"]
                for e in self._events
                if e.get("method") == method and (session is None or e.get("sessionId") == session)
            ]

    def open(self, url: str) -> Page:
        """A new tab on ``url``, once its document has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session, target)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.goto(url)
        return page

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close")
                except BrowserError:
                    pass
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            os.close(self._to_child)
            self._reader.join(5)
            os.close(self._from_child)
            self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One tab of a :class:`Browser`."""

    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.browser, self.session, self.target = browser, session, target

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r}: {text}")
        return result["result"].get("value")

    def wait_for(self, condition: str | Callable[[Node], bool], timeout: float = 30) -> Node:
        """Poll until ``condition`` holds: a JavaScript expression, or a predicate on the parsed
        DOM. Returns the DOM it last saw; fails with that DOM's text on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if isinstance(condition, str):
                ok = bool(self.eval(condition))
                dom = None
            else:
                dom = self.dom()
                ok = bool(condition(dom))
            if ok:
                return dom if dom is not None else self.dom()
            if time.monotonic() > deadline:
                dom = dom or self.dom()
                raise AssertionError(
                    f"not within {timeout} s: {condition!r}; errors: {self.errors()}; "
                    f"page text: {dom.text()[:2000]}"
                )
            time.sleep(0.1)

    def dom(self) -> Node:
        return parse(self.eval("document.documentElement.outerHTML"))

    def click(self, selector: str) -> None:
        """Click the element ``selector`` names (it must exist and be enabled)."""
        found = self.eval(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        assert found, f"nothing to click: {selector}"

    def type(self, selector: str, text: str) -> None:
        """Focus ``selector`` and type ``text`` into it, as keystrokes would."""
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def press(self, key: str, code: int) -> None:
        """One key stroke (``key`` as in KeyboardEvent.key, ``code`` its Windows key code) on
        whatever has the focus."""
        for kind in ("keyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code},
            )

    def errors(self) -> list[str]:
        """Uncaught exceptions thrown in the page so far, and what its script logged with
        ``console.error`` or a failed ``console.assert``."""
        thrown = [
            e["exceptionDetails"].get("exception", {}).get("description")
            or e["exceptionDetails"].get("text", "")
            for e in self.browser.events("Runtime.exceptionThrown", self.session)
        ]
        logged = [
            f"console.{e['type']}: "
            + " ".join(str(a.get("value", a.get("description", ""))) for a in e.get("args", []))
            for e in self.browser.events("Runtime.consoleAPICalled", self.session)
            if e.get("type") in ("error", "assert")
        ]
        return thrown + logged

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path
