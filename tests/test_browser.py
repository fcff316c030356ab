"""
End-to-end tests: the real sockjs-client 1.6.1 (npm) in a real headless
Chromium against ``python -m twisted sockjs``, over every transport the client
offers, from a page of the server's own origin and from a page of another
origin.

What each test starts, all on 127.0.0.1 and port 0, stopped with addCleanup:

- a page server (:class:`_PageServer`) that serves ``index.html``, ``e2e.js`` and
  ``sockjs.min.js`` from ``tests/browser/`` under ``/__sockjs_e2e__/``;
- the server under test, ``sys.executable -m twisted sockjs --port
  tcp:0:interface=127.0.0.1 --sockjs-url <page server>/__sockjs_e2e__/sockjs.min.js``,
  as a subprocess that runs this checkout's code and logs to a file; its port
  is read from Twisted's ``... starting on PORT`` line, and it is ready when
  ``/echo/info`` answers 200.  The iframe transports load the server's
  ``iframe.html``, which loads the very ``sockjs.min.js`` the page loaded, as
  the client demands;
- a fresh browser context in Chromium (``/usr/bin/chromium``, Debian's: no
  Playwright browser download), driven by Playwright's sync API.  Chromium
  itself, launched with a fresh profile, is shared by the module's tests
  (:func:`testSuite`), since launching it costs more than a test.

Origins.  Cross-origin: the page comes from the page server, whose port, so
whose origin, is not the server's.  Same-origin: the server serves only
SockJS, so a second page server stands in front of it: it answers the page's
own files and splices every other connection to the server byte for byte, so
the server sees exactly what Chromium sent (HTTP/1.1 keep-alive, WebSocket
upgrades), from a page of the same origin, as behind any TCP load balancer.
(Playwright's ``route.fulfill`` cannot stand in for the server here: Chromium
does not know the address space of a fulfilled document and blocks its
WebSocket to 127.0.0.1 with ``ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS``.)
The test's own probes (below) go to the server directly.

What each test checks, for one forced transport (``new SockJS(url, null,
{transports: [name]})``), on ``/echo`` unless said otherwise:

1. the connection opens and ``sock.transport`` names the forced transport;
2. sequential echoes come back exactly: ASCII, 64 KiB, quotes, backslashes and
   control characters, the characters the server must escape, non-ASCII and
   emoji (surrogate pairs); 20 small pings give the round-trip times;
3. 200 messages sent in one JavaScript turn all come back, in order;
4. the server addresses the browser's session: a send by this test to
   ``<session>/xhr_send`` (``jsonp_send`` for jsonp-polling) is answered
   204 (200 ``ok``) and its message reaches the page;
5. a client ``close()`` reaches the server: afterwards the same send answers
   404, the session is gone; for websocket (sessions need not have an id the
   server can be reached by), the native WebSocket close must be clean, which
   means the server answered the client's close frame;
6. ``/close`` gives the client the close event 3000 "Go away!".

Transports sockjs-client refuses in Chromium (xdr-*: no XDomainRequest;
htmlfile from another origin) are tried all the same and reported as skipped,
with the client's own answer, only if the client did refuse them and the
(transport, origin) pair is on the explicit list ``REFUSALS``.

Times (open, round trips, 64 KiB echo, burst, close seen by the server) are
written to stderr per test and gathered in ``browser-e2e-results.txt`` in
trial's working directory.  A failure carries what the browser console, the
network and the server log said.

Environment: ``CI`` (as ``tests/_ci.py`` reads it) turns a missing or
unstartable browser into a failure instead of a skip.  ``SOCKJS_E2E_CHROMIUM`` names another Chromium.
``SOCKJS_E2E_SERVER`` replaces the server command (a shell-style command with
``{port}`` and ``{sockjs_url}``), to run these tests against a reference
server such as sockjs-node.  ``.ci/install-browser.sh`` installs what is needed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
import unittest as pyunit
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit
from urllib.request import Request, urlopen

from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestSuite

from . import _ci
from ._processes import childEnvironment, sockjsCommand, stopProcess

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
ASSETS = HERE / "browser"
SOCKJS_MIN_JS = ASSETS / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"

CHROMIUM = os.environ.get("SOCKJS_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Seconds.
SERVER_START_TIMEOUT = 30.0
BROWSER_START_TIMEOUT = 30.0
WAIT = 10.0
ECHO_WAIT = 5.0
# sockjs-node's default disconnect_delay is 5 s: a server that only notices a
# vanished client by that timeout still ends the session within this.
CLOSE_SEEN_TIMEOUT = 8.0

# Every transport of sockjs-client 1.6.1, in the client's order of preference.
TRANSPORTS = [
    "websocket",
    "xhr-streaming",
    "xdr-streaming",
    "eventsource",
    "iframe-eventsource",
    "htmlfile",
    "iframe-htmlfile",
    "xhr-polling",
    "xdr-polling",
    "iframe-xhr-polling",
    "jsonp-polling",
]

# The (transport, origin) pairs sockjs-client 1.6.1 refuses in Chromium, and
# why.  A test skips only if the client did refuse its exact pair and the pair
# is listed here; any other refusal is a failure (a same-origin htmlfile that
# the client will not try is a regression, not a skip).
_NO_XDR = "it needs XDomainRequest, which only Internet Explorer 8-10 has"
REFUSALS = {
    ("xdr-streaming", "same-origin"): _NO_XDR,
    ("xdr-streaming", "cross-origin"): _NO_XDR,
    ("xdr-polling", "same-origin"): _NO_XDR,
    ("xdr-polling", "cross-origin"): _NO_XDR,
    ("htmlfile", "cross-origin"): "it runs only on a page of the server's own origin "
    "(HtmlFileTransport.enabled needs info.sameOrigin); "
    "a page of another origin gets iframe-htmlfile",
}

# The server side of each transport: the last path segment of the request
# that receives, and the one a third party can send with.
RECEIVERS = {
    "websocket": "websocket",
    "xhr-streaming": "xhr_streaming",
    "xdr-streaming": "xhr_streaming",
    "eventsource": "eventsource",
    "iframe-eventsource": "eventsource",
    "htmlfile": "htmlfile",
    "iframe-htmlfile": "htmlfile",
    "xhr-polling": "xhr",
    "xdr-polling": "xhr",
    "iframe-xhr-polling": "xhr",
    "jsonp-polling": "jsonp",
}

ESCAPABLE = "".join(
    map(
        chr,
        [
            0x2028,
            0x2029,
            *range(0x200C, 0x2010),
            *range(0x2060, 0x2070),
            0xFEFF,
            *range(0xFFF0, 0x10000),
        ],
    )
)
# The rest of what sockjs-node escapes (its "escapable" expression).
ESCAPABLE_MORE = "".join(
    map(chr, [0xAD, *range(0x600, 0x605), 0x70F, 0x17B4, 0x17B5, *range(0x202A, 0x2030)])
)

# (label, message) pairs echoed one at a time.
MESSAGES = [
    ("plain ASCII", "Hello, SockJS! 0123456789 ~`!@#$%^&*()_+-=[]{}|;:,.<>?/"),
    ("64 KiB", "".join(chr(0x20 + i % 95) for i in range(64 * 1024))),
    (
        "quotes, backslashes, control characters",
        '"\'\\/ \\" \\\\ \\u0041 \\n ' + "".join(map(chr, range(0x20))) + "\x7f",
    ),
    ("HTML end tags and comments", "</script></SCRIPT><!-- --> ]]> <b>&amp;</b>"),
    ("characters the server must escape", ESCAPABLE),
    ("the rest of sockjs-node's escapable set", ESCAPABLE_MORE),
    ("non-ASCII", "caf\u00e9 \u2603 \u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629"),
    (
        "emoji (surrogate pairs)",
        "\U0001f600 \U0001f44d\U0001f3fd \U0001f1fa\U0001f1f3 "
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001d11e \U00010348",
    ),
]
# Strings with unpaired surrogates, echoed exactly (sent as JSON text to the page).
LONE_SURROGATES = ["x\ud800y", "x\udc00y", "\udc00\ud800"]
PINGS = [f"ping {i:02d}" for i in range(20)]
BURST = [f"burst {i:03d} \u2603" for i in range(200)]

RESULTS_FILE = "browser-e2e-results.txt"
_results: dict[tuple[str, str], str] = {}

_PORT_LINE = re.compile(rb"starting on (\d+)")


def _describeMismatch(expected: str, got: object) -> str:
    """
    Say where ``got`` first differs from ``expected``, in code points.

    :param expected: the message that was sent.
    :param got: what came back.
    :return: a short, readable description.
    """
    if not isinstance(got, str):
        return f"expected a string of {len(expected)} code points, got {got!r:.200}"
    index = next(
        (i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
        min(len(expected), len(got)),
    )

    def around(text: str) -> str:
        return " ".join(f"U+{ord(c):04X}" for c in text[max(0, index - 3) : index + 4])

    return (
        f"{len(got)} code points instead of {len(expected)}, first difference at "
        f"{index}: expected [{around(expected)}], got [{around(got)}]"
    )


PREFIX = "/__sockjs_e2e__"
PAGE_FILES = {
    f"{PREFIX}/index.html": ASSETS / "index.html",
    f"{PREFIX}/e2e.js": ASSETS / "e2e.js",
    f"{PREFIX}/sockjs.min.js": SOCKJS_MIN_JS,
}
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
}


class _PageServer:
    """
    Serves the test page's files on 127.0.0.1 and an ephemeral port, one
    request per connection.  With an upstream, every connection whose first
    request is not for a page file is spliced to the upstream byte for byte
    for the rest of its life, so that the upstream sees exactly what the
    browser sent (HTTP/1.1, keep-alive, WebSocket upgrades) while the page
    and the upstream share one origin.

    Threads, not the reactor: trial does not run the reactor for a
    :class:`~twisted.trial.unittest.SynchronousTestCase`, and Playwright's sync API blocks this thread.
    """

    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        self.upstream = upstream
        self.log: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """
        Stop listening, close every connection, wait for the threads.
        """
        self._stopping.set()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            self._close(sock)
        for thread in list(self._threads):
            thread.join(WAIT)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)
        if self._stopping.is_set():
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._track(connection)
            self._spawn(self._handle, connection)

    def _handle(self, connection: socket.socket) -> None:
        head = b""
        try:
            connection.settimeout(WAIT)
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(65536)
                if not chunk:
                    self._close(connection)
                    return
                head += chunk
        except OSError:
            self._close(connection)
            return
        requestLine = head.split(b"\r\n", 1)[0].decode("latin-1")
        target = requestLine.split(" ")[1] if requestLine.count(" ") >= 2 else ""
        path = urlsplit(target).path
        if self.upstream is None or path.startswith(PREFIX + "/"):
            self._serveFile(connection, requestLine, path)
        else:
            self._splice(connection, requestLine, head)

    def _serveFile(self, connection: socket.socket, requestLine: str, path: str) -> None:
        source = PAGE_FILES.get(path)
        if source is None:
            status, contentType, body = "404 Not Found", "text/plain", b"not a page file"
        else:
            status, contentType, body = (
                "200 OK",
                _CONTENT_TYPES[source.suffix],
                source.read_bytes(),
            )
        self.log.append(f"{requestLine} -> {status}")
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {contentType}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            connection.sendall(head.encode("ascii") + body)
        except OSError:
            pass
        self._close(connection)

    def _splice(self, connection: socket.socket, requestLine: str, head: bytes) -> None:
        assert self.upstream is not None
        self.log.append(f"{requestLine} -> spliced to the server")
        try:
            upstream = socket.create_connection(self.upstream, timeout=WAIT)
        except OSError as error:
            self.log.append(f"    cannot reach the server: {error}")
            self._close(connection)
            return
        self._track(upstream)
        connection.settimeout(None)
        upstream.settimeout(None)
        try:
            upstream.sendall(head)
        except OSError:
            pass
        self._spawn(self._pump, connection, upstream)
        self._pump(upstream, connection)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        # A browser never half-closes: the end of either side ends both.
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        self._close(source)
        self._close(sink)


class _Unavailable(Exception):
    """
    The browser cannot be had: Playwright, Chromium or sockjs-client is
    missing, or Chromium did not start.
    """


class _Chromium:
    """
    The Chromium these tests drive, through Playwright's sync API, launched
    on first use with a fresh profile.  Launching takes a second or two, so
    the tests of this module share one (see :func:`testSuite`); each test
    opens its own browser context.  A test run on its own stops it at
    cleanup.
    """

    def __init__(self) -> None:
        self.shared = False
        self._playwright: Any = None
        self._browser: Any = None

    def launch(self) -> Any:
        """
        The running browser, launched if need be.

        :raise _Unavailable: if it cannot be had.
        """
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        self.stop()
        try:
            from playwright.sync_api import Error as PlaywrightError
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            raise _Unavailable(
                f"Playwright is not installed ({error}); run .ci/install-browser.sh"
            )
        if not os.access(CHROMIUM, os.X_OK):
            raise _Unavailable(f"no Chromium at {CHROMIUM}; run .ci/install-browser.sh")
        if not SOCKJS_MIN_JS.is_file():
            raise _Unavailable(f"no sockjs-client at {SOCKJS_MIN_JS}; run .ci/install-browser.sh")
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                timeout=BROWSER_START_TIMEOUT * 1000,
            )
        except PlaywrightError as error:
            self.stop()
            raise _Unavailable(f"Chromium ({CHROMIUM}) did not start: {error}")
        return self._browser

    def stop(self) -> None:
        """
        Close the browser and stop Playwright, if they run.
        """
        browser, self._browser = self._browser, None
        playwright, self._playwright = self._playwright, None
        if browser is not None:
            try:
                browser.close()
            except Exception:
                pass
        if playwright is not None:
            playwright.stop()


_chromium = _Chromium()


def _post(url: str, body: bytes, contentType: str) -> tuple[int, bytes]:
    """
    POST ``body`` to ``url``.

    :return: the status code and the body of the answer.
    """
    request = Request(url, data=body, method="POST", headers={"Content-Type": contentType})
    try:
        with urlopen(request, timeout=WAIT) as response:
            return response.status, response.read()
    except HTTPError as error:
        return error.code, error.read()


class _BrowserTransportTests(SynchronousTestCase):
    """
    The real client in a real browser against the server, one transport per
    test; subclasses set :attr:`sameOrigin`.
    """

    sameOrigin: bool

    @property
    def originLabel(self) -> str:
        return "same-origin" if self.sameOrigin else "cross-origin"

    # -- fixtures ---------------------------------------------------------

    def setUp(self) -> None:
        _ci.skipIfQuick("the browser tests")

    def unavailable(self, reason: str) -> NoReturn:
        """
        Fail in CI, skip elsewhere: something outside the project is missing.
        """
        _ci.missing(self, reason)

    def startPageServer(self, upstream: tuple[str, int] | None = None) -> _PageServer:
        """
        Start a :class:`_PageServer`, stopped at cleanup.
        """
        server = _PageServer(upstream)
        self.addCleanup(server.stop)
        return server

    def serverCommand(self, sockjsUrl: str) -> list[str]:
        """
        The command that starts the server under test on an ephemeral port.
        """
        override = os.environ.get("SOCKJS_E2E_SERVER")
        if override:
            return shlex.split(override.format(port=0, sockjs_url=sockjsUrl))
        return sockjsCommand("tcp:0:interface=127.0.0.1", "--sockjs-url", sockjsUrl)

    def spawnServer(self, sockjsUrl: str) -> None:
        """
        Start the server under test; :meth:`waitForServer` waits for it.
        """
        logDir = Path(self.mktemp())
        logDir.mkdir(parents=True)
        self.serverLogPath = logDir / "server.log"
        command = self.serverCommand(sockjsUrl)
        self.serverCommandLine = shlex.join(command)
        with self.serverLogPath.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=logDir,
                env=childEnvironment(),
            )
        self.serverProcess = process
        self.addCleanup(stopProcess, process, timeout=WAIT, killTimeout=WAIT)

    def serverLog(self) -> str:
        try:
            return self.serverLogPath.read_bytes().decode("utf-8", "replace")
        except (AttributeError, OSError) as error:
            return f"(no server log: {error})"

    def waitForServer(self) -> str:
        """
        Wait until the server listens and answers /echo/info with 200.

        :return: the server's base URL.
        """
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        port = None
        while time.monotonic() < deadline:
            if self.serverProcess.poll() is not None:
                self.fail(
                    f"the server exited with {self.serverProcess.returncode}: "
                    f"{self.serverCommandLine}\n--- server log ---\n{self.serverLog()}"
                )
            if port is None:
                match = _PORT_LINE.search(self.serverLogPath.read_bytes())
                if match:
                    port = int(match.group(1))
            if port is not None:
                base = f"http://127.0.0.1:{port}"
                try:
                    with urlopen(f"{base}/echo/info", timeout=WAIT) as response:
                        if response.status == 200:
                            return base
                except (URLError, OSError):
                    pass
            time.sleep(0.05)
        self.fail(
            f"the server did not answer /echo/info with 200 within "
            f"{SERVER_START_TIMEOUT} s (port {port}): {self.serverCommandLine}\n"
            f"--- server log ---\n{self.serverLog()}"
        )

    def startBrowser(self) -> Any:
        """
        Open a page in a fresh browser context (its own cookies and storage)
        of the module's Chromium.

        :return: a Playwright page.
        """
        try:
            browser = _chromium.launch()
        except _Unavailable as error:
            self.unavailable(str(error))
        if not _chromium.shared:
            self.addCleanup(_chromium.stop)
        context = browser.new_context()
        self.addCleanup(context.close)
        context.set_default_timeout(WAIT * 1000)
        page = context.new_page()
        self.watch(page)
        return page

    def watch(self, page: Any) -> None:
        """
        Record the page's console, errors and network for failure reports.
        """
        started = time.monotonic()
        self.console: list[str] = []
        self.network: list[str] = []
        self.sessionUrls: list[str] = []

        def stamp() -> str:
            return f"{time.monotonic() - started:7.3f}s"

        def onConsole(message: Any) -> None:
            where = message.location or {}
            self.console.append(
                f"{stamp()} console.{message.type}: {message.text} "
                f"({where.get('url', '?')}:{where.get('lineNumber', '?')})"
            )

        def onRequest(request: Any) -> None:
            self.sessionUrls.append(request.url)
            self.network.append(f"{stamp()} -> {request.method} {request.url}")

        def onResponse(response: Any) -> None:
            self.network.append(
                f"{stamp()} <- {response.status} {response.request.method} {response.url}"
            )

        def onFailed(request: Any) -> None:
            self.network.append(f"{stamp()} !! {request.method} {request.url}: {request.failure}")

        def onWebSocket(webSocket: Any) -> None:
            url = webSocket.url
            self.sessionUrls.append(url)
            self.network.append(f"{stamp()} -> WebSocket {url}")
            webSocket.on(
                "close", lambda _: self.network.append(f"{stamp()} <- WebSocket closed {url}")
            )
            webSocket.on(
                "socketerror",
                lambda error: self.network.append(f"{stamp()} !! WebSocket {url}: {error}"),
            )

        def onPageError(error: Any) -> None:
            stack = (error.stack or "").splitlines()[1:3]
            self.console.append(
                f"{stamp()} page error: {error.name}: {error.message} "
                + " ".join(line.strip() for line in stack)
            )

        page.on("console", onConsole)
        page.on("pageerror", onPageError)
        page.on("request", onRequest)
        page.on("response", onResponse)
        page.on("requestfailed", onFailed)
        page.on("websocket", onWebSocket)

    # -- helpers ----------------------------------------------------------

    def js(self, expression: str, *args: Any) -> Any:
        """
        Evaluate a function of the page on ``args``.
        """
        return self.page.evaluate(expression, list(args))

    def open(self, url: str, transport: str) -> dict[str, Any]:
        return self.js("([u, t, ms]) => e2e.open(u, t, ms)", url, transport, WAIT * 1000)

    def sessionOf(self, receiver: str) -> str | None:
        """
        The session URL (without the transport segment) of the browser's
        receiving request for ``receiver``, from what the browser requested.
        """
        pattern = re.compile(rf"^(.*/echo/[^/?#]+/[^/?#]+)/{re.escape(receiver)}(?:[?#]|$)")
        for url in self.sessionUrls:
            match = pattern.match(url)
            if match:
                return re.sub(r"^ws", "http", match.group(1))
        return None

    def sendAsThirdParty(self, session: str, transport: str, message: str) -> tuple[int, bytes]:
        """
        Send ``message`` to the browser's session from this test, the way the
        transport's family sends.
        """
        frame = json.dumps([message])
        if transport == "jsonp-polling":
            return _post(
                f"{session}/jsonp_send",
                b"d=" + quote(frame).encode("ascii"),
                "application/x-www-form-urlencoded",
            )
        return _post(f"{session}/xhr_send", frame.encode("utf-8"), "text/plain")

    def diagnostics(self) -> str:
        def tail(lines: list[str], count: int) -> str:
            skipped = len(lines) - count
            shown = lines[-count:] if skipped > 0 else lines
            head = [f"... ({skipped} earlier lines)"] if skipped > 0 else []
            return "\n".join(head + shown) or "(nothing)"

        return "\n".join(
            [
                "",
                f"--- browser console ({self.originLabel}) ---",
                tail(getattr(self, "console", []), 60),
                "--- browser network ---",
                tail(getattr(self, "network", []), 80),
                f"--- server log ({getattr(self, 'serverCommandLine', '?')}) ---",
                tail(self.serverLog().splitlines(), 120),
                *(
                    f"--- page server: {name} ---\n{tail(log, 40)}"
                    for name, log in getattr(self, "pageServerLogs", [])
                ),
            ]
        )

    def record(self, transport: str, line: str) -> None:
        """
        Report this test's times on stderr and in the results table.
        """
        _results[(transport, self.originLabel)] = line
        sys.stderr.write(f"\n[browser e2e] {transport:<18} {self.originLabel:<12} {line}\n")
        rows = [f"{'transport':<20}{'origin':<14}times (ms)"]
        for name in TRANSPORTS:
            for origin in ("same-origin", "cross-origin"):
                if (name, origin) in _results:
                    rows.append(f"{name:<20}{origin:<14}{_results[name, origin]}")
        Path(RESULTS_FILE).write_text("\n".join(rows) + "\n")

    # -- the scenario -----------------------------------------------------

    def runTransport(self, transport: str) -> None:
        static = self.startPageServer()
        self.pageServerLogs = [("static files", static.log)]
        self.spawnServer(f"{static.base}{PREFIX}/sockjs.min.js")
        self.page = self.startBrowser()
        serverBase = self.waitForServer()
        if self.sameOrigin:
            port = urlsplit(serverBase).port
            assert port is not None
            front = self.startPageServer(("127.0.0.1", port))
            self.pageServerLogs.append(("same-origin front", front.log))
            pageBase = front.base
        else:
            pageBase = static.base
        try:
            self.page.goto(f"{pageBase}{PREFIX}/index.html")
            self.scenario(transport, pageBase if self.sameOrigin else serverBase, serverBase)
        except SkipTest:
            raise
        except Exception as error:
            raise self.failureException(
                f"{transport}, {self.originLabel}: {error}{self.diagnostics()}"
            ) from error

    def scenario(self, transport: str, clientBase: str, serverBase: str) -> None:
        """
        Run the checks for ``transport``; the page connects to ``clientBase``
        (the server itself, or the same-origin front) and this test sends
        to ``serverBase``.
        """
        times: dict[str, float] = {}
        opened = self.open(f"{clientBase}/echo", transport)
        if not opened["opened"]:
            refused = opened["candidates"] == [] and (opened["closed"] or {}).get("code") == 2000
            why = REFUSALS.get((transport, self.originLabel))
            if refused and why is not None:
                raise SkipTest(
                    f"sockjs-client 1.6.1 refuses {transport} in Chromium "
                    f"({self.originLabel}): {why}; the client "
                    f"closed with {opened['closed']} without trying it"
                )
            self.fail(
                f"{transport} did not open: close event {opened['closed']}, "
                f"transports the client judged usable: {opened['candidates']}"
            )
        self.assertEqual(
            opened["transport"], transport, "the client reports another transport than forced"
        )
        times["open"] = opened["openMs"]
        sock = opened["id"]
        receiver = RECEIVERS[transport]
        browserSession = self.sessionOf(receiver)
        if browserSession is None:
            self.fail(f"the browser made no request to a session's /{receiver}")
        # The same session, straight at the server.
        session = serverBase + urlsplit(browserSession).path

        # Exact echoes, each message on its own so that one lost message
        # does not hide what happens to the others.
        labels = [label for label, _ in MESSAGES]
        sent = [message for _, message in MESSAGES]
        echoed = self.js("([id, m, ms]) => e2e.echo(id, m, ms)", sock, sent, ECHO_WAIT * 1000)
        problems = []
        for label, message, result in zip(labels, sent, echoed):
            if "error" in result:
                problems.append(f"{label}: {result['error']}")
            elif result["data"] != message:
                problems.append(f"{label}: {_describeMismatch(message, result['data'])}")
            if result.get("late"):
                problems.append(f"{label}: then late: {result['late']!r:.300}")
        if problems:
            self.fail("echoes differ from what was sent:\n  " + "\n  ".join(problems))
        times["64KiB"] = echoed[labels.index("64 KiB")]["rtt"]

        # Lone surrogates: JavaScript strings may hold them, and they come back exactly.
        # They cross to and from the page as JSON text, which carries them escaped.
        lone = [json.dumps(m) for m in LONE_SURROGATES]
        echoedLone = self.js(
            "([id, m, ms]) => e2e.echo(id, m.map((s) => JSON.parse(s)), ms)"
            ".then((rs) => rs.map((r) => ('data' in r) ? JSON.stringify(r.data) : r))",
            sock,
            lone,
            ECHO_WAIT * 1000,
        )
        self.assertEqual(echoedLone, lone, "lone surrogates")

        pings = self.js("([id, m, ms]) => e2e.echo(id, m, ms)", sock, PINGS, ECHO_WAIT * 1000)
        self.assertEqual([p.get("data") for p in pings], PINGS, f"pings: {pings}")
        rtts = sorted(p["rtt"] for p in pings)
        times["rtt median"] = statistics.median(rtts)
        times["rtt max"] = rtts[-1]

        # Burst: everything, in order.
        burst = self.js("([id, m, ms]) => e2e.burst(id, m, ms)", sock, BURST, WAIT * 1000)
        if burst["received"] != BURST:
            missing = sorted(set(BURST) - set(burst["received"]))
            self.fail(
                f"burst of {len(BURST)}: got {len(burst['received'])} messages, "
                f"missing {missing[:5]}..., first out of order at "
                + str(
                    next(
                        (i for i, (a, b) in enumerate(zip(BURST, burst["received"])) if a != b),
                        None,
                    )
                )
            )
        times[f"burst {len(BURST)}"] = burst["ms"]

        # The server addresses the browser's session.
        probeBefore = self.sendAsThirdParty(session, transport, "from the test")
        addressable = probeBefore[0] in (200, 204)
        if transport != "websocket" or addressable:
            self.assertIn(
                probeBefore,
                [(204, b""), (200, b"ok")],
                f"a send to the browser's live session {session} was refused",
            )
            self.assertEqual(
                self.js("([id, ms]) => e2e.receive(id, ms)", sock, WAIT * 1000),
                "from the test",
                "a message sent to the session by the test did not reach the page",
            )

        # Client close reaches the server.
        closed = self.js("([id, ms]) => e2e.close(id, ms)", sock, WAIT * 1000)
        self.assertEqual(closed, {"code": 1000, "reason": "Normal closure", "wasClean": True})
        closedAt = time.monotonic()
        if transport == "websocket":
            native = self.waitForNativeClose(browserSession)
            self.assertTrue(
                native["wasClean"],
                f"the WebSocket close was not clean (the server did not answer "
                f"the client's close frame): {native}",
            )
        if addressable:
            deadline = closedAt + CLOSE_SEEN_TIMEOUT
            while True:
                probeAfter = self.sendAsThirdParty(session, transport, "after close")
                if probeAfter[0] == 404:
                    break
                if time.monotonic() > deadline:
                    self.fail(
                        f"{CLOSE_SEEN_TIMEOUT} s after the client closed, the server "
                        f"still accepts sends to {session}: {probeAfter}"
                    )
                time.sleep(0.05)
        times["close seen"] = (time.monotonic() - closedAt) * 1000
        seenBy = "send answers 404" if addressable else "clean WebSocket close"

        # Server close.
        closing = self.open(f"{clientBase}/close", transport)
        self.assertTrue(
            closing["opened"], f"/close did not open first: close event {closing['closed']}"
        )
        event = self.js("([id, ms]) => e2e.closed(id, ms)", closing["id"], WAIT * 1000)
        self.assertEqual(event, {"code": 3000, "reason": "Go away!", "wasClean": True})

        self.record(
            transport,
            "  ".join(f"{name} {value:.1f}" for name, value in times.items()) + f" ({seenBy})",
        )

    def waitForNativeClose(self, session: str) -> dict[str, Any]:
        """
        The native close event of the WebSocket to ``session``.
        """
        deadline = time.monotonic() + WAIT
        wsSession = re.sub(r"^http", "ws", session)
        while True:
            records = self.js("() => e2e.nativeSockets()")
            mine = [r for r in records if r["url"].startswith(wsSession)]
            self.assertTrue(mine, f"no native WebSocket to {wsSession}: {records}")
            if mine[0]["closed"] is not None:
                return mine[0]["closed"]
            if time.monotonic() > deadline:
                self.fail(f"the native WebSocket to {wsSession} never closed: {records}")
            time.sleep(0.05)


def _transportTest(transport: str) -> Callable[[_BrowserTransportTests], None]:
    def test(self: _BrowserTransportTests) -> None:
        self.runTransport(transport)

    test.__name__ = "test_" + transport.replace("-", "_")
    return test


def _addTransportTests(cls: type[_BrowserTransportTests]) -> type[_BrowserTransportTests]:
    """
    Add one test method per transport to ``cls``.
    """
    where = "a page of the server's own origin" if cls.sameOrigin else "a page of another origin"
    for transport in TRANSPORTS:
        test = _transportTest(transport)
        test.__doc__ = (
            f"sockjs-client's {transport} transport, from {where}, opens, echoes "
            f"exactly and in order, and closes both ways."
        )
        test.__qualname__ = f"{cls.__name__}.{test.__name__}"
        setattr(cls, test.__name__, test)
    return cls


@_addTransportTests
class SameOriginTests(_BrowserTransportTests):
    """
    The test page has the server's origin.
    """

    sameOrigin = True


@_addTransportTests
class CrossOriginTests(_BrowserTransportTests):
    """
    The test page comes from another origin (another port).
    """

    sameOrigin = False


class _OneBrowserSuite(TestSuite):
    """
    Runs its tests with one shared Chromium, stopped when they are done.
    """

    def run(self, result: pyunit.TestResult, debug: bool = False) -> pyunit.TestResult:
        _chromium.shared = True
        try:
            return super().run(result, debug)
        finally:
            _chromium.shared = False
            _chromium.stop()


def testSuite() -> TestSuite:
    """
    This module's tests, for trial: they share one Chromium.
    """
    loader = TestLoader()
    return _OneBrowserSuite(
        [loader.loadClass(SameOriginTests), loader.loadClass(CrossOriginTests)]
    )
