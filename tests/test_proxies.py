"""
The proxy configurations sockjs-twisted generates (and docs/deployment shows), run for
real: HAProxy and nginx in front of two ordinary C{twistd sockjs} servers, as a user who
runs the servers by hand (C{--print-haproxy-config --backend ...}) has them.
"""

from __future__ import annotations

import os
import subprocess
import time
from functools import partial
from http.cookiejar import CookieJar
from typing import Any

import websocket
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.logger import Logger
from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, CookieAgent

from sockjs_twisted._workers import freePort, haproxyConfig, nginxConfig
from sockjs_twisted.testing import TRANSPORTS, SockJSClient

from ._scaleout import (
    ROOT,
    Recorder,
    ServerProcess,
    Shared,
    SharedSuite,
    abortOpened,
    answers,
    ask,
    close,
    openSession,
    pidOf,
    requireBinary,
    sleep,
    startHAProxy,
    startNginx,
    together,
    waitFor,
)

_log = Logger()

# The proxies' client and server timeouts in these tests: shorter than the idle times
# below, longer than the servers' heartbeat delay.
SHORT = 1.5
IDLE = 4.0
HEARTBEAT = "0.5"
# nginx's proxy_read_timeout in these tests (whole seconds).
NGINX_TIMEOUT = 2


class _Servers:
    """
    Two servers (the scale-out test application at /app, JSESSIONID cookies on,
    heartbeats every 0.5 s) and the proxies in front of them.
    """

    def __init__(self) -> None:
        self.servers = [
            ServerProcess(
                "--factory",
                "tests._scaleout.WhoAmIFactory",
                "--prefix",
                "/app",
                "--jsessionid",
                "--heartbeat-delay",
                HEARTBEAT,
            )
            for _ in range(2)
        ]
        self.proxies: dict[str, Any] = {}
        try:
            for server in self.servers:
                waitFor(partial(answers, server.base + "/app/info"), 60, "a server")
            backends = [f"127.0.0.1:{s.port}" for s in self.servers]

            def haproxy(name: str, **kw: Any) -> None:
                port = freePort()
                config = haproxyConfig(f"127.0.0.1:{port}", backends, 2, "/app/info", **kw)
                self.proxies[name] = startHAProxy(config, port)

            haproxy("haproxy", clientTimeout=SHORT, serverTimeout=SHORT)
            haproxy("haproxy-cookie", cookie=True)
            # The control: timeout tunnel no longer than the others.
            haproxy(
                "haproxy-no-tunnel",
                clientTimeout=SHORT,
                serverTimeout=SHORT,
                tunnelTimeout=SHORT,
            )
            port = freePort()
            self.proxies["nginx"] = startNginx(
                lambda directory: nginxConfig(
                    f"127.0.0.1:{port}",
                    backends,
                    2,
                    readTimeout=NGINX_TIMEOUT,
                    pidFile=os.path.join(directory, "nginx.pid"),
                    tempDir=directory,
                ),
                port,
            )
            for proxy in self.proxies.values():
                waitFor(partial(answers, proxy.base + "/app/info"), 30, "a proxy")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        for server in self.servers:
            server.stop()


_servers = Shared(_Servers, _Servers.stop)


class ProxyTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        self.fixture: _Servers = _servers.get(self)
        self.addCleanup(lambda: Deferred.fromCoroutine(abortOpened()))

    def base(self, proxy: str) -> str:
        return self.fixture.proxies[proxy].base + "/app"

    def websocketURL(self, proxy: str) -> str:
        return "ws" + self.base(proxy)[4:] + "/websocket"

    async def test_idleWebsocketOutlivesTimeouts(self) -> None:
        """
        Through HAProxy, a websocket idle for longer than the client and server timeouts
        lives on (timeout tunnel); with a short tunnel timeout (the control), it is cut.
        """
        # The raw /websocket endpoint has no heartbeats: idle means idle.
        kept = websocket.create_connection(self.websocketURL("haproxy"), timeout=10)
        self.addCleanup(kept.close)
        cut = websocket.create_connection(self.websocketURL("haproxy-no-tunnel"), timeout=10)
        self.addCleanup(cut.close)
        for ws in (kept, cut):
            ws.send("before")
            self.assertEqual(ws.recv(), "before")
        await sleep(reactor, IDLE)
        kept.send("after")
        self.assertEqual(kept.recv(), "after")
        with self.assertRaises((websocket.WebSocketException, OSError)):
            cut.send("after")
            cut.recv()

    async def test_heartbeatsKeepXhrStreaming(self) -> None:
        """
        Through HAProxy with 1.5 s timeouts, heartbeats (every 0.5 s) keep an idle
        xhr-streaming session alive.
        """
        protocol = await openSession(self.base("haproxy"), "xhr-streaming")
        await sleep(reactor, IDLE)
        self.assertIsNone(protocol.lost)
        assert protocol.transport is not None
        self.assertGreaterEqual(protocol.transport.heartbeats, 4)  # type: ignore[attr-defined]
        self.assertEqual(await ask(protocol, b"still here"), b"still here")
        await close(protocol)

    async def everyTransport(self, proxy: str, perTransport: int) -> dict[str, dict[int, int]]:
        """
        Sessions over every transport through C{proxy}: each echoes; none fails.
        """
        failures: list[str] = []
        pids: dict[str, list[int]] = {t: [] for t in TRANSPORTS}

        async def one(transport: str, n: int) -> None:
            try:
                protocol = await openSession(self.base(proxy), transport)
                pids[transport].append(await pidOf(protocol))
                for k in range(3):
                    message = b"%d %d" % (n, k)
                    self.assertEqual(await ask(protocol, message), message)
                await close(protocol)
                if protocol.lost is None or not protocol.lost.check(ConnectionDone):
                    failures.append(f"{transport} {n}: ended with {protocol.lost}")
            except Exception as e:
                failures.append(f"{transport} {n}: {e}")

        await together([one(t, n) for n in range(perTransport) for t in TRANSPORTS])
        self.assertEqual(failures, [])
        return {t: {pid: p.count(pid) for pid in set(p)} for t, p in pids.items()}

    async def test_nginxEveryTransport(self) -> None:
        """Through nginx, sessions over every transport stay on their server; both serve."""
        split = await self.everyTransport("nginx", 30)
        _log.info("Sessions through nginx by transport and server pid: {split}", split=split)
        servers = {pid for counts in split.values() for pid in counts}
        self.assertEqual(len(servers), 2)

    async def test_nginxStreamingLatency(self) -> None:
        """Through nginx (proxy_buffering off), xhr-streaming round trips are fast."""
        protocol = await openSession(self.base("nginx"), "xhr-streaming")
        times = []
        for n in range(20):
            start = time.monotonic()
            self.assertEqual(await ask(protocol, b"%d" % n), b"%d" % n)
            times.append(time.monotonic() - start)
        await close(protocol)
        times.sort()
        _log.info("xhr-streaming round trips through nginx: median {m:.1f} ms", m=times[10] * 1e3)
        self.assertLess(times[10], 0.1)

    async def test_nginxIdleWebsocket(self) -> None:
        """Through nginx, a websocket passes the Upgrade and echoes."""
        ws = websocket.create_connection(self.websocketURL("nginx"), timeout=10)
        self.addCleanup(ws.close)
        ws.send("through nginx")
        self.assertEqual(ws.recv(), "through nginx")

    async def test_nginxHeartbeatsKeepSessions(self) -> None:
        """
        Through nginx with a 2 s read timeout, heartbeats (every 0.5 s) keep idle
        websocket and xhr-streaming sessions alive; a raw websocket, which has no
        heartbeats (the control), is cut.
        """
        sessions = [
            await openSession(self.base("nginx"), transport)
            for transport in ("websocket", "xhr-streaming")
        ]
        raw = websocket.create_connection(self.websocketURL("nginx"), timeout=10)
        self.addCleanup(raw.close)
        raw.send("before")
        self.assertEqual(raw.recv(), "before")
        await sleep(reactor, IDLE)
        for protocol in sessions:
            self.assertIsNone(protocol.lost)
            self.assertEqual(await ask(protocol, b"still here"), b"still here")
            await close(protocol)
        with self.assertRaises((websocket.WebSocketException, OSError)):
            raw.send("after")
            raw.recv()

    async def test_cookieAffinity(self) -> None:
        """
        HAProxy's JSESSIONID cookie mode keeps each HTTP session on one server when the
        client keeps its cookies; both servers get sessions.  Without cookies (the
        control), requests of a session are spread and sessions break.
        """
        failures: list[str] = []
        pids: list[int] = []

        async def one(transport: str, withCookies: bool) -> None:
            agent: Any = Agent(reactor)
            if withCookies:
                agent = CookieAgent(agent, CookieJar())
            client = SockJSClient(reactor, self.base("haproxy-cookie"), transport, agent=agent)
            protocol = Recorder()
            try:
                await client.connect(protocol)
                if protocol.lost is None:
                    pids.append(await pidOf(protocol))
                for k in range(3):
                    await ask(protocol, b"%d" % k)
                assert protocol.transport is not None
                protocol.transport.loseConnection()
            except Exception as e:
                failures.append(str(e))
                if protocol.transport is not None and protocol.lost is None:
                    protocol.transport.abortConnection()  # type: ignore[attr-defined]
            await protocol.closed

        await together([one(t, True) for _ in range(15) for t in ("xhr-polling", "xhr-streaming")])
        self.assertEqual(failures, [])
        self.assertEqual(len(set(pids)), 2)
        await together([one("xhr-polling", False) for _ in range(10)])
        self.assertNotEqual(failures, [], "without cookies, round robin should split sessions")


class DocumentedConfigTests(SynchronousTestCase):
    """
    The configurations docs/deployment.rst shows are what the code generates.
    """

    def documented(self, name: str) -> str:
        with open(os.path.join(ROOT, "docs", "deployment", name)) as f:
            return f.read()

    def test_haproxy(self) -> None:
        """docs/deployment/haproxy.cfg is haproxyConfig's output for its example."""
        self.assertEqual(
            self.documented("haproxy.cfg"),
            haproxyConfig(":80", EXAMPLE_BACKENDS, 2, "/chat/info"),
        )

    def test_haproxyCookie(self) -> None:
        """docs/deployment/haproxy-cookie.cfg is the cookie mode's output for its example."""
        self.assertEqual(
            self.documented("haproxy-cookie.cfg"),
            haproxyConfig(":80", EXAMPLE_BACKENDS, 2, "/chat/info", cookie=True),
        )

    def test_nginx(self) -> None:
        """docs/deployment/nginx.conf is nginxConfig's output for its example."""
        self.assertEqual(self.documented("nginx.conf"), nginxConfig("80", EXAMPLE_BACKENDS, 2))

    def test_documentedFilesValid(self) -> None:
        """haproxy -c and nginx -t accept the documented configurations."""
        haproxy = requireBinary("haproxy")
        for name in ("haproxy.cfg", "haproxy-cookie.cfg"):
            path = os.path.join(ROOT, "docs", "deployment", name)
            check = subprocess.run([haproxy, "-c", "-f", path], capture_output=True)
            self.assertEqual(check.returncode, 0, check.stderr)
        nginx = requireBinary("nginx")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        conf = os.path.join(directory, "nginx.conf")
        with open(conf, "w") as f:
            # The documented file, run as this user: a pid file and temporary paths here,
            # and a port anyone may bind.
            f.write(
                nginxConfig(
                    "127.0.0.1:%d" % freePort(),
                    EXAMPLE_BACKENDS,
                    2,
                    pidFile=os.path.join(directory, "nginx.pid"),
                    tempDir=directory,
                )
            )
        check = subprocess.run(
            [nginx, "-e", "stderr", "-t", "-p", directory, "-c", conf], capture_output=True
        )
        self.assertEqual(check.returncode, 0, check.stderr)


EXAMPLE_BACKENDS = ["10.0.0.1:8081", "10.0.0.2:8081"]


def testSuite() -> SharedSuite:
    """
    This module's tests, for trial: L{ProxyTests} share the servers and proxies.
    """
    loader = TestLoader()
    return SharedSuite(
        [loader.loadClass(DocumentedConfigTests), loader.loadClass(ProxyTests)], [_servers]
    )
