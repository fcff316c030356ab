"""
The real plugin, started as `twistd sockjs` would be, on a free port, spoken to over real
sockets: HTTP/1.0 and 1.1, streaming, websockets, a graceful stop on SIGTERM, and
L{sockjs_twisted.testing.SockJSClient} over each of its transports.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Optional

import websocket
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from sockjs_twisted import SockJSFactory
from sockjs_twisted.testing import TRANSPORTS, SockJSClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Server:
    """
    `python -m twisted sockjs` on 127.0.0.1, port chosen by the kernel.
    """

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twisted",
                "sockjs",
                "--port",
                "tcp:0:interface=127.0.0.1",
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.log: list[str] = []
        self.port = self._waitForPort()

    def _waitForPort(self) -> int:
        deadline = time.monotonic() + 30
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode("utf-8", "replace")
            if not line:
                break
            self.log.append(line)
            match = re.search(r"starting on (\d+)", line)
            if match:
                return int(match.group(1))
        self.stop()
        raise AssertionError("server did not start:\n" + "".join(self.log))

    def stop(self, sig: int = signal.SIGKILL) -> Optional[int]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


class IntegrationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = Server()
        self.addCleanup(self.server.stop)

    def connection(self) -> http.client.HTTPConnection:
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        self.addCleanup(c.close)
        return c

    def url(self, service: str = "echo") -> str:
        return f"/{service}/000/{uuid.uuid4()}"

    def test_greetingKeepAlive(self) -> None:
        """Two requests on one HTTP/1.1 connection both get the greeting."""
        c = self.connection()
        for _ in range(2):
            c.request("GET", "/echo")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"Welcome to SockJS!\n"))

    def test_http10(self) -> None:
        """An HTTP/1.0 request gets a Content-Length or a closed connection, never chunks."""
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET /echo HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        self.assertNotIn(b"transfer-encoding", head.lower())
        self.assertEqual(body, b"Welcome to SockJS!\n")

    def test_xhrPolling(self) -> None:
        """A session opened, sent to and polled over real sockets echoes."""
        url = self.url()
        c = self.connection()
        c.request("POST", url + "/xhr")
        self.assertEqual(c.getresponse().read(), b"o\n")
        c.request("POST", url + "/xhr_send", body=b'["a\\u2028", "\xc3\xa9"]')
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (204, b""))
        c.request("POST", url + "/xhr")
        self.assertEqual(c.getresponse().read(), 'a["a\\u2028","\u00e9"]\n'.encode())

    def test_xhrStreaming(self) -> None:
        """Frames arrive on an open streaming response as they are sent."""
        url = self.url("broadcast")
        stream = self.connection()
        stream.request("POST", url + "/xhr_streaming")
        r = stream.getresponse()
        self.assertEqual(
            r.read1(2049) if hasattr(r, "read1") else r.read(2049), b"h" * 2048 + b"\n"
        )
        self.assertEqual(r.read(2), b"o\n")
        sender = self.connection()
        sender.request("POST", url + "/xhr_send", body=b'["x"]')
        self.assertEqual(sender.getresponse().status, 204)
        self.assertEqual(r.read(7), b'a["x"]\n')

    def test_websocket(self) -> None:
        """The SockJS websocket echoes, and /close closes with 3000 "Go away!"."""
        base = f"ws://127.0.0.1:{self.server.port}"
        ws = websocket.create_connection(base + self.url() + "/websocket", timeout=10)
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv(), "o")
        ws.send('["a","b"]')
        self.assertEqual(ws.recv(), 'a["a","b"]')
        closing = websocket.create_connection(base + self.url("close") + "/websocket", timeout=10)
        self.addCleanup(closing.close)
        self.assertEqual(closing.recv(), "o")
        self.assertEqual(closing.recv(), 'c[3000,"Go away!"]')

    def test_rawWebsocket(self) -> None:
        """The raw /websocket endpoint echoes unframed text."""
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{self.server.port}/echo/websocket", timeout=10
        )
        self.addCleanup(ws.close)
        ws.send("plain \uffff")
        self.assertEqual(ws.recv(), "plain \uffff")

    def test_amplify(self) -> None:
        """/amplify answers message n with 2**n x's."""
        url = self.url("amplify")
        c = self.connection()
        c.request("POST", url + "/xhr")
        c.getresponse().read()
        c.request("POST", url + "/xhr_send", body=b'["4"]')
        c.getresponse().read()
        c.request("POST", url + "/xhr")
        self.assertEqual(json.loads(c.getresponse().read()[1:]), ["x" * 16])


class ShutdownTests(SynchronousTestCase):
    def test_sigterm(self) -> None:
        """On SIGTERM open sessions get a close frame and the server exits promptly."""
        server = Server()
        self.addCleanup(server.stop)
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/echo/000/{uuid.uuid4()}/websocket", timeout=10
        )
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv(), "o")
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        frame = ws.recv()
        self.assertEqual(frame, 'c[1001,"Server shutting down"]')
        # twist exits by re-raising the signal once the reactor has stopped cleanly.
        self.assertIn(server.process.wait(10), (0, -signal.SIGTERM))
        self.assertLess(time.monotonic() - started, 6)

    def test_sigtermHTTPSession(self) -> None:
        """On SIGTERM an open xhr_streaming response gets c[1001,"Server shutting down"] and ends."""
        server = Server()
        self.addCleanup(server.stop)
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self.addCleanup(c.close)
        c.request("POST", f"/echo/000/{uuid.uuid4()}/xhr_streaming")
        r = c.getresponse()
        self.assertEqual(r.read(2049 + 2), b"h" * 2048 + b"\n" + b"o\n")
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(r.read(), b'c[1001,"Server shutting down"]\n')
        self.assertIn(server.process.wait(10), (0, -signal.SIGTERM))

    def test_sigtermRawWebsocket(self) -> None:
        """On SIGTERM a raw websocket gets a close frame with 1001 "Server shutting down"."""
        server = Server()
        self.addCleanup(server.stop)
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/echo/websocket", timeout=10
        )
        self.addCleanup(ws.close)
        ws.send("before")
        self.assertEqual(ws.recv(), "before")
        server.process.send_signal(signal.SIGTERM)
        opcode, frame = ws.recv_data_frame(True)
        self.assertEqual(opcode, websocket.ABNF.OPCODE_CLOSE)
        self.assertEqual(frame.data[:2], (1001).to_bytes(2, "big"))
        self.assertEqual(frame.data[2:], b"Server shutting down")
        self.assertIn(server.process.wait(10), (0, -signal.SIGTERM))


class _Collector(Protocol):
    """
    Collects messages; C{arrived} fires when C{expected} of them did, C{lost} on
    C{connectionLost} with the reason.
    """

    def __init__(self, expected: int = 0) -> None:
        self.expected = expected
        self.messages: list[bytes] = []
        self.arrived: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Optional[Failure] = None

    def dataReceived(self, data: bytes) -> None:
        self.messages.append(data)
        if len(self.messages) == self.expected:
            self.arrived.callback(None)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.reason = reason
        self.lost.callback(None)


class SockJSClientTests(TestCase):
    """
    The testing kit's client against the real plugin.
    """

    timeout = 30

    def setUp(self) -> None:
        self.server = Server()
        self.addCleanup(self.server.stop)

    async def test_everyTransport(self) -> None:
        """Over each transport /echo echoes and /close closes with 3000 "Go away!"."""
        from twisted.internet import reactor

        base = f"http://127.0.0.1:{self.server.port}"
        for transport in TRANSPORTS:
            echo = _Collector(expected=2)
            await SockJSClient(reactor, base + "/echo", transport).connect(echo)
            echo.transport.write("\u00e9t\u00e9".encode())
            echo.transport.write(b"x" * 5000)
            await echo.arrived
            self.assertEqual(echo.messages, ["\u00e9t\u00e9".encode(), b"x" * 5000], transport)
            echo.transport.loseConnection()
            await echo.lost

            closing = _Collector()
            await SockJSClient(reactor, base + "/close", transport).connect(closing)
            await closing.lost
            assert closing.reason is not None
            closing.reason.trap(ConnectionDone)
            self.assertEqual(
                (closing.transport.closeCode, closing.transport.closeReason),
                (3000, "Go away!"),
                transport,
            )


class _Pauser(Protocol):
    """
    Records messages; C{pause} pauses its transport.  C{received} fires with the
    messages once C{expected} arrived.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.messages: list[bytes] = []
        self.received: Deferred[list[bytes]] = Deferred()
        self.pausedNow: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.messages.append(data)
        if data == b"pause":
            self.transport.pauseProducing()
            self.pausedNow.callback(None)
        if len(self.messages) == self.expected:
            self.received.callback(self.messages)


class IncomingFlowControlTests(TestCase):
    """
    A protocol that pauses its transport stops its websocket's socket being read, on a
    real socket.
    """

    timeout = 30

    async def test_websocketStopsReading(self) -> None:
        """While the protocol is paused its websocket is not read; on resume every message arrives, in order."""
        from twisted.internet import reactor

        server = _Pauser(expected=4)
        port = reactor.listenTCP(
            0,
            SockJSFactory(Factory.forProtocol(lambda: server), reactor=reactor),
            interface="127.0.0.1",
        )
        self.addCleanup(port.stopListening)
        client = _Collector()
        await SockJSClient(
            reactor, f"http://127.0.0.1:{port.getHost().port}", "websocket"
        ).connect(client)
        client.transport.write(b"pause")
        await server.pausedNow
        # The read that carried "pause" is handled once this turn ends.
        await deferLater(reactor, 0, lambda: None)
        socket = server.transport._session._sink.transport  # the websocket's TCP connection
        self.assertNotIn(socket, reactor.getReaders())
        client.transport.write(b"b")
        client.transport.write(b"c")
        client.transport.write(b"d")
        await deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(server.messages, [b"pause"])
        server.transport.resumeProducing()
        self.assertEqual(await server.received, [b"pause", b"b", b"c", b"d"])
        self.assertIn(socket, reactor.getReaders())
        client.transport.loseConnection()
        await client.lost


class ClientExampleTests(SynchronousTestCase):
    """
    The client example of docs/client.rst against `twistd sockjs`.
    """

    def test_echoClient(self) -> None:
        """examples/client/echo_client.py echoes through the server over each transport, and by default picks the websocket."""
        server = Server()
        self.addCleanup(server.stop)
        url = f"http://127.0.0.1:{server.port}/echo"
        for transports in [[], *[[name] for name in TRANSPORTS]]:
            flags = [arg for name in transports for arg in ("--transport", name)]
            result = subprocess.run(
                [sys.executable, "-m", "examples.client.echo_client", url, "hello", "w\u00f6rld"]
                + flags,
                cwd=ROOT,
                env={**os.environ, "PYTHONIOENCODING": "utf-8"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
            output = result.stdout.decode("utf-8", "replace")
            self.assertEqual(result.returncode, 0, output)
            expected = (transports or ["websocket"])[0]
            self.assertEqual(output.splitlines(), [expected, "hello", "w\u00f6rld"], output)
