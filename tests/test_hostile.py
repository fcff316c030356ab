"""
Hostile and broken input: every case gets an exact, short answer (status, body, close
code), nothing is echoed back, no session is created by accident, and everyone else is
unaffected.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from collections.abc import Iterable
from typing import Any, Optional

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from sockjs_twisted import SockJSFactory
from sockjs_twisted.testserver import EchoFactory

from ._fakes import RecordingFactory
from ._harness import HTTPClient, WebSocket, sockjsClient

PAYLOAD_EXPECTED = b"Payload expected."
BROKEN = b"Broken JSON encoding."


class HostileTestCase(SynchronousTestCase):
    options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.factory = RecordingFactory()
        self.factory.onData = lambda protocol, data: protocol.transport.write(data)
        self.client, self.resource = sockjsClient(self.factory, **self.options)

    def openSession(self, sessionId: str = "s") -> str:
        url = f"/echo/000/{sessionId}"
        self.assertEqual(self.client.post(url + "/xhr").body, b"o\n")
        return url

    def assertEchoes(self, url: str, message: str = "ok") -> None:
        """The session still works: a message goes round."""
        r = self.client.post(url + "/xhr_send", f'["{message}"]'.encode())
        self.assertEqual(r.status, 204)
        self.client.advance()
        self.assertEqual(self.client.post(url + "/xhr").body, f'a["{message}"]\n'.encode())


class SendBodyTests(HostileTestCase):
    CASES = [
        (b"", PAYLOAD_EXPECTED),
        (b"not json", BROKEN),
        (b'"a string"', BROKEN),
        (b'{"an": "object"}', BROKEN),
        (b"[1, null, {}]", BROKEN),
        (b'["a", 1]', BROKEN),
        (b'["\xff\xfe"]', BROKEN),
        (b'["trunc', BROKEN),
        (b"[NaN]", BROKEN),
        (b"[-Infinity]", BROKEN),
        (b"[" * 50000 + b"]" * 50000, BROKEN),
    ]

    def test_xhrSend(self) -> None:
        """Each malformed xhr_send body gets 500 with the spec's one-line text; the session lives on."""
        url = self.openSession()
        for body, answer in self.CASES:
            r = self.client.post(url + "/xhr_send", body)
            self.assertEqual((r.status, r.body), (500, answer), body[:30])
            self.assertEqual(r.header("content-type"), "text/plain; charset=UTF-8")
        self.assertEqual(self.factory.built[0].received, [])
        self.assertEchoes(url)

    def test_jsonpSend(self) -> None:
        """The same bodies, form-encoded or raw, on jsonp_send get the same answers."""
        url = self.openSession()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for body, answer in self.CASES:
            r = self.client.post(url + "/jsonp_send", body)
            self.assertEqual((r.status, r.body), (500, answer), body[:30])
            encoded = b"d=" + b"".join(b"%%%02X" % b for b in body)
            r = self.client.post(url + "/jsonp_send", encoded, headers=form)
            self.assertEqual((r.status, r.body), (500, answer), body[:30])
        for body in [b"p=p", b"d=", b"d"]:
            r = self.client.post(url + "/jsonp_send", body, headers=form)
            self.assertEqual((r.status, r.body), (500, PAYLOAD_EXPECTED))
        self.assertEchoes(url)

    def test_nothingAfterBadMessage(self) -> None:
        """A payload with one bad element delivers none of its messages."""
        url = self.openSession()
        self.client.post(url + "/xhr_send", b'["good", 2]')
        self.assertEqual(self.factory.built[0].received, [])


class BodyLimitTests(HostileTestCase):
    options = {"max_body_size": 100}

    def test_endpointLimit(self) -> None:
        """A send body over max_body_size gets 413 'Payload too large.'; the session lives on."""
        url = self.openSession()
        body = b'["' + b"x" * 200 + b'"]'
        for transport in ("xhr_send", "jsonp_send"):
            r = self.client.post(url + "/" + transport, body)
            self.assertEqual((r.status, r.body), (413, b"Payload too large."))
        self.assertEchoes(url)


def refusal(status: int, phrase: str, body: str) -> bytes:
    """The exact bytes of a refused request's answer."""
    data = body.encode("ascii") + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
        % (status, phrase.encode("ascii"), len(data), data)
    )


TOO_LARGE = refusal(413, "Payload Too Large", "Payload too large.")
URI_TOO_LONG = refusal(414, "URI Too Long", "URI too long.")
HEADERS_TOO_LARGE = refusal(431, "Request Header Fields Too Large", "Request headers too large.")
BAD_REQUEST = refusal(400, "Bad Request", "Bad request.")
NO_HOST = refusal(400, "Bad Request", "Host header required.")
TWO_HOSTS = refusal(400, "Bad Request", "Duplicate Host header.")
TOO_SLOW = refusal(408, "Request Timeout", "Request too slow.")


class SiteLimitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.client, _ = sockjsClient(EchoFactory())
        self.client.site.maxBodySize = 1000
        self.connection = self.client.connect()

    def send(self, data: bytes) -> bytes:
        """Send raw bytes; everything written back since the last send."""
        transport = self.connection.transport
        transport.protocol.dataReceived(data)
        written = transport.value()
        transport.clear()
        return written

    def assertLingers(self) -> None:
        """The connection is open, reading and discarding, until the client is silent for 2 s."""
        transport = self.connection.transport
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.send(b"more body " * 1000), b"")
        self.client.clock.advance(1.9)
        self.assertFalse(transport.disconnecting)
        self.client.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_declaredLength(self) -> None:
        """A Content-Length over the site's limit gets the 413 at once, then a lingering close."""
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 1000001\r\n\r\n"
        self.assertEqual(self.send(head), TOO_LARGE)
        self.assertLingers()

    def test_expectContinue(self) -> None:
        """A too large body announced with Expect: 100-continue gets the 413 and no 100 Continue."""
        head = (
            b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        self.assertEqual(self.send(head), TOO_LARGE)
        self.assertLingers()

    def test_chunkedBody(self) -> None:
        """A chunked body growing past the site's limit gets 413, then a lingering close."""
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"%x\r\n%s\r\n" % (600, b"x" * 600)
        self.assertEqual(self.send(head + chunk), b"")
        self.assertEqual(self.send(chunk), TOO_LARGE)
        self.assertLingers()

    def test_chunkSizeLine(self) -> None:
        """A chunk-size line announcing more than the limit gets 413 before any of the chunk."""
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        self.assertEqual(self.send(head + b"10\r\n" + b"x" * 16 + b"\r\n"), b"")
        self.assertEqual(self.send(b"3d9\r\n"), TOO_LARGE)
        self.assertLingers()

    def test_chunkSizeLineHuge(self) -> None:
        """A chunk-size line announcing 2**80 bytes gets 413 at once."""
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        self.assertEqual(self.send(head + b"%x\r\n" % (2**80,)), TOO_LARGE)

    def test_chunkSizeAtLimit(self) -> None:
        """A chunked body of exactly the limit is accepted."""
        self.client.post("/echo/0/s/xhr")
        body = b'["' + b"x" * 996 + b'"]'
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        answer = self.send(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        self.assertTrue(answer.startswith(b"HTTP/1.1 204 No Content\r\n"), answer)

    def test_lingerSize(self) -> None:
        """A refused client is cut off once it has sent 16 MiB more."""
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
        self.assertEqual(self.send(head), TOO_LARGE)
        piece = b"x" * (1024 * 1024)
        for _ in range(16):
            self.send(piece)
        self.assertFalse(self.connection.transport.disconnecting)
        self.send(b"x")
        self.assertTrue(self.connection.transport.disconnecting)

    def test_lingerTime(self) -> None:
        """A refused client that keeps sending is cut off 10 s after the answer."""
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
        self.assertEqual(self.send(head), TOO_LARGE)
        for _ in range(9):
            self.client.clock.advance(1)
            self.send(b"x" * 1000)
        self.assertFalse(self.connection.transport.disconnecting)
        self.client.clock.advance(1)
        self.assertTrue(self.connection.transport.disconnecting)

    def test_lingerClientCloses(self) -> None:
        """A refused client that closes ends the lingering close; no timer is left behind."""
        head = b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
        self.assertEqual(self.send(head), TOO_LARGE)
        self.connection.close()
        calls = [c for c in self.client.clock.getDelayedCalls() if "LogDateTime" not in repr(c)]
        self.assertEqual(calls, [])

    def test_slowHeaders(self) -> None:
        """Headers trickling in for longer than the request timeout get 408, then a lingering close."""
        self.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
        for _ in range(29):
            self.client.clock.advance(1)
            self.assertEqual(self.send(b"X-A: b\r\n"), b"")
        self.client.clock.advance(1)
        self.assertEqual(self.send(b""), TOO_SLOW)
        self.assertLingers()

    def test_slowBody(self) -> None:
        """A body that never completes gets 408 after the request timeout."""
        self.send(b'POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n["')
        self.client.clock.advance(30)
        self.assertEqual(self.send(b""), TOO_SLOW)
        self.assertLingers()

    def test_idleKeepAlive(self) -> None:
        """An idle keep-alive connection is closed after the idle timeout."""
        c = self.connection
        self.assertEqual(c.request("GET", "/echo").status, 200)
        self.client.advance(59)
        self.assertFalse(c.closed)
        self.client.advance(1)
        self.assertTrue(c.closed)

    def test_idleCountsFromLastRequest(self) -> None:
        """The idle timeout counts from the end of the last request, not from the first."""
        c = self.connection
        self.assertEqual(c.request("GET", "/echo").status, 200)
        self.client.advance(50)
        self.assertEqual(c.request("GET", "/echo").status, 200)
        self.client.advance(59)
        self.assertFalse(c.closed)
        self.client.advance(1)
        self.assertTrue(c.closed)

    def test_idleTimerGoneWithConnection(self) -> None:
        """A connection that closes leaves no idle timer behind."""
        c = self.connection
        self.assertEqual(c.request("GET", "/echo").status, 200)
        self.client.advance(30)
        c.close()
        calls = [c for c in self.client.clock.getDelayedCalls() if "LogDateTime" not in repr(c)]
        self.assertEqual(calls, [])

    def test_longPollNotTimedOut(self) -> None:
        """A waiting poll or stream is not an idle connection: heartbeats keep coming."""
        c = self.connection
        stream = c.request("POST", "/echo/0/s/xhr_streaming")
        for _ in range(4):
            self.client.advance(25)
        self.assertFalse(c.closed)
        self.assertTrue(stream.body.endswith(b"o\nh\nh\nh\nh\n"))

    def test_hugeHeaders(self) -> None:
        """Headers adding up to more than 16 KiB get 431."""
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1000) for i in range(20))
        answer = self.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        self.assertEqual(answer, HEADERS_TOO_LARGE)
        self.assertLingers()

    def test_hugeHeaderLine(self) -> None:
        """One header line over 16 KiB gets 431, before its end arrives."""
        answer = self.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000)
        self.assertEqual(answer, HEADERS_TOO_LARGE)
        self.assertLingers()

    def test_longRequestLine(self) -> None:
        """A request line over 16 KiB gets 414, before its end arrives."""
        self.assertEqual(self.send(b"GET /echo/" + b"a" * 20000), URI_TOO_LONG)
        self.assertLingers()

    def test_limits(self) -> None:
        """A request line and headers adding up to 16 KiB (line ends not counted) are accepted; one byte more gets 431."""
        line = b"GET /echo/info?" + b"a" * (8 * 1024) + b" HTTP/1.1"
        for extra, answer in [(0, b"HTTP/1.1 200 OK\r\n"), (1, HEADERS_TOO_LARGE)]:
            self.setUp()
            header = b"X-H: " + b"a" * (16 * 1024 - len(line) - len(b"Host: x") - 5 + extra)
            head = line + b"\r\nHost: x\r\n" + header + b"\r\n\r\n"
            self.assertTrue(self.send(head).startswith(answer), extra)

    def test_noHost(self) -> None:
        """An HTTP/1.1 request without Host gets 400 (RFC 9112); HTTP/1.0 needs none."""
        self.assertEqual(self.send(b"GET /echo/info HTTP/1.1\r\n\r\n"), NO_HOST)
        self.assertLingers()
        self.setUp()
        self.assertTrue(self.send(b"GET /echo/info HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200"))

    def test_twoHosts(self) -> None:
        """A request with two Host headers gets 400 (RFC 9112)."""
        answer = self.send(b"GET /echo/info HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        self.assertEqual(answer, TWO_HOSTS)
        self.assertLingers()

    def test_malformed(self) -> None:
        """What twisted.web cannot parse gets a 400 with a body, then a lingering close."""
        for raw in [
            b"GET /echo/info HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
            b"NOT A REQUEST LINE AT ALL\r\n\r\n",
            b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"POST /echo/0/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ]:
            self.setUp()
            self.assertEqual(self.send(raw), BAD_REQUEST, raw)
            self.assertLingers()


def exchange(port: int, head: bytes, body: Iterable[bytes] = ()) -> tuple[bytes, Optional[str]]:
    """
    A blocking client on a real socket: send C{head} then every piece of C{body} without
    reading, shut down the sending side, then read until the server closes.

    :return: What was read, and the first socket error (C{None} when there was none).
    """
    error: Optional[str] = None
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(head)
            for piece in body:
                s.sendall(piece)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            error = repr(e)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                received += data
        except OSError as e:
            error = error or repr(e)
    return received, error


class _ObservedSite(SockJSFactory):
    """A SockJSFactory that tells when each of its connections is lost."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lost: list[Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        lost: Deferred[None] = Deferred()
        self.lost.append(lost)
        original = channel.connectionLost

        def connectionLost(reason: Any) -> None:
            original(reason)
            lost.callback(None)

        channel.connectionLost = connectionLost
        return channel


MB10 = 10 * 1000 * 1000


class RealSocketRefusalTests(TestCase):
    """
    Refusals on a real socket, with a client that keeps sending without reading: it is
    never reset, and reads the whole answer once it has sent everything.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        site = _ObservedSite(EchoFactory(), reactor=reactor, prefix="/echo")
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.site = site
        self.port = port.getHost().port

    async def refused(self, head: bytes, body: Iterable[bytes] = ()) -> bytes:
        received, error = await deferToThread(exchange, self.port, head, body)
        self.assertIsNone(error)
        await gatherResults(self.site.lost)
        return received

    async def test_contentLength(self) -> None:
        """A 10 MB xhr_send body gets 413; the client sends it all, then reads the answer."""
        head = (
            b"POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MB10
        )
        piece = b"x" * 100000
        answer = await self.refused(head, [piece] * (MB10 // len(piece)))
        self.assertEqual(answer, TOO_LARGE)

    async def test_jsonpSend(self) -> None:
        """A 10 MB form-encoded jsonp_send body gets 413; the client sends it all, then reads the answer."""
        head = (
            b"POST /echo/000/s/jsonp_send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nd=" % MB10
        )
        piece = b"%41" * 33333 + b"x"
        answer = await self.refused(head, [piece] * (MB10 // len(piece)))
        self.assertEqual(answer, TOO_LARGE)

    async def test_halfClose(self) -> None:
        """After the 413 the server shuts down only its sending side: the client reads the answer and its end while it can still send the rest."""

        def client() -> tuple[bytes, Optional[str]]:
            head = b"POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
                s.sendall(head % MB10 + b"x" * 1000000)
                received = b""
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    received += data
                try:
                    for _ in range(9):
                        s.sendall(b"x" * 1000000)
                except OSError as e:
                    return received, repr(e)
            return received, None

        received, error = await deferToThread(client)
        self.assertEqual((received, error), (TOO_LARGE, None))
        await gatherResults(self.site.lost)

    async def test_silentClient(self) -> None:
        """A refused client that stops sending but keeps its socket open is closed after 2 s of silence, leaving no timer behind."""

        def client() -> tuple[socket.socket, bytes]:
            head = b"POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            s.sendall(head % MB10 + b"x" * 100000)
            received = b""
            while True:
                data = s.recv(65536)
                if not data:
                    return s, received
                received += data

        s, received = await deferToThread(client)
        self.addCleanup(s.close)
        self.assertEqual(received, TOO_LARGE)
        await gatherResults(self.site.lost)

    async def test_chunked(self) -> None:
        """A 10 MB chunked body gets 413; the client sends it all, then reads the answer."""
        head = (
            b"POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (100000, b"x" * 100000)
        answer = await self.refused(head, [chunk] * (MB10 // 100000) + [b"0\r\n\r\n"])
        self.assertEqual(answer, TOO_LARGE)

    async def test_chunkSizeLine(self) -> None:
        """A chunk-size line announcing 2 MiB gets 413 at once: the client reads it without sending the chunk."""

        def client() -> tuple[socket.socket, bytes]:
            head = b"POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            s.sendall(head + b"%x\r\n" % (2 * 1024 * 1024))
            received = b""
            while True:
                data = s.recv(65536)
                if not data:
                    return s, received
                received += data

        s, received = await deferToThread(client)
        s.close()
        self.assertEqual(received, TOO_LARGE)
        await gatherResults(self.site.lost)

    async def test_requestLine(self) -> None:
        """A 1 MB request line gets 414."""
        head = b"GET /echo/" + b"a" * 1000000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assertEqual(await self.refused(head), URI_TOO_LONG)

    async def test_sessionId(self) -> None:
        """A 100 kB session id gets 414."""
        head = b"POST /echo/000/" + b"s" * 100000 + b"/xhr HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assertEqual(await self.refused(head), URI_TOO_LONG)

    async def test_callback(self) -> None:
        """A 100 kB callback name gets 414."""
        head = b"GET /echo/000/s/jsonp?c=" + b"c" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assertEqual(await self.refused(head), URI_TOO_LONG)

    async def test_oneHeader(self) -> None:
        """One 64 kB header gets 431."""
        head = b"GET /echo/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
        self.assertEqual(await self.refused(head), HEADERS_TOO_LARGE)

    async def test_headerThenEndOfSending(self) -> None:
        """A header just over the limit, sent whole and followed by the client's end of sending, still gets 431."""
        for size in (20_000, 40_000):
            head = b"GET /echo/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
            self.assertEqual(await self.refused(head), HEADERS_TOO_LARGE)
            self.site.lost.clear()

    async def test_manyHeaders(self) -> None:
        """1 MB of headers gets 431."""
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1000) for i in range(1000))
        head = b"GET /echo/info HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"
        self.assertEqual(await self.refused(head), HEADERS_TOO_LARGE)


class URLTests(HostileTestCase):
    def test_badIds(self) -> None:
        """Empty ids, ids with dots and ids over 128 bytes get 404 and create nothing."""
        long = "x" * 129
        for path in [
            "//s/xhr",
            "/0//xhr",
            "/a.b/s/xhr",
            "/0/a.b/xhr",
            f"/0/{long}/xhr",
            f"/{long}/s/xhr",
        ]:
            r = self.client.post("/echo" + path)
            self.assertEqual(r.status, 404, path)
        self.assertEqual(len(self.resource.sessions), 0)
        self.assertEqual(self.client.post(f"/echo/0/{'x' * 128}/xhr").body, b"o\n")

    def test_unknownTransport(self) -> None:
        """Unknown transports and extra path segments get 404."""
        for path in ["/0/s/xhr_polling", "/0/s/XHR", "/0/s/xhr/", "/0/s/xhr/x", "/0/s"]:
            self.assertEqual(self.client.post("/echo" + path).status, 404, path)
        self.assertEqual(len(self.resource.sessions), 0)

    def test_percentEncodedRoutes(self) -> None:
        """Transports, ids and the prefix are matched on the raw path: a percent-encoded name gets 404 and creates nothing."""
        for method, path in [
            ("POST", "/echo/000/abc/%78hr"),
            ("POST", "/echo/000/abc/xhr%5Fstreaming"),
            ("GET", "/echo/000/abc/%65ventsource"),
            ("GET", "/echo/000/abc/jsonp%3F?c=x"),
            ("GET", "/echo/%69nfo"),
            ("GET", "/echo/iframe%2Ehtml"),
            ("GET", "/echo/%77ebsocket"),
            ("GET", "/%65cho/info"),
            ("GET", "/%65cho"),
            ("GET", "/%65cho/"),
            ("POST", "/%65cho/000/abc/xhr"),
        ]:
            r = self.client.request(method, path)
            self.assertEqual((r.status, r.body), (404, b"Not found."), path)
        self.assertEqual(len(self.resource.sessions), 0)

    def test_percentEncodedIds(self) -> None:
        """A session id is its raw segment, on every transport: a%62c and abc are two sessions."""
        self.assertEqual(self.client.post("/echo/000/a%62c/xhr").body, b"o\n")
        self.assertEqual(self.client.post("/echo/000/abc/xhr_send", b'["x"]').status, 404)
        ws = self.client.websocket("/echo/000/a%62c/websocket")
        self.assertEqual(ws.frames(), ["o"])
        ids = [p.transport.sessionId for p in self.factory.built]
        self.assertEqual(ids, ["a%62c", "a%62c"])

    def test_sendToMissingOrClosed(self) -> None:
        """Sends to a missing or a closed session get 404 and never create a session."""
        for transport in ("xhr_send", "jsonp_send"):
            self.assertEqual(self.client.post(f"/echo/0/none/{transport}", b'["x"]').status, 404)
        self.assertEqual(len(self.resource.sessions), 0)
        url = self.openSession()
        self.factory.built[0].transport.loseConnection()
        self.assertEqual(self.client.post(url + "/xhr_send", b'["x"]').status, 404)

    def test_wrongMethods(self) -> None:
        """Wrong methods get 405 with Allow, no body and no content type."""
        cases = [
            ("GET", "/0/s/xhr", "OPTIONS, POST"),
            ("PUT", "/0/s/xhr_send", "OPTIONS, POST"),
            ("GET", "/0/s/xhr_streaming", "OPTIONS, POST"),
            ("POST", "/0/s/eventsource", "GET"),
            ("POST", "/0/s/htmlfile", "GET"),
            ("POST", "/0/s/jsonp", "GET"),
            ("GET", "/0/s/jsonp_send", "POST"),
            ("POST", "/0/s/websocket", "GET"),
            ("DELETE", "/info", "OPTIONS, GET"),
            ("POST", "/iframe.html", "GET"),
            ("POST", "", "GET"),
        ]
        for method, path, allow in cases:
            r = self.client.request(method, "/echo" + path)
            self.assertEqual(r.status, 405, (method, path))
            self.assertEqual(r.header("allow"), allow)
            self.assertEqual(r.body, b"")
            self.assertIsNone(r.header("content-type"))
        self.assertEqual(len(self.resource.sessions), 0)

    def test_head(self) -> None:
        """HEAD on the greeting, info and iframe answers 200 without a body."""
        for path in ["", "/", "/info", "/iframe.html"]:
            r = self.client.request("HEAD", "/echo" + path)
            self.assertEqual((r.status, r.body), (200, b""), path)

    def test_badCallbacks(self) -> None:
        """Bad callbacks get 500 'invalid "callback" parameter' and are never echoed."""
        for callback in ["%3Cscript%3E", "a(b)", "alert%281%29", "%E9", "a%0Ab", "x" * 300]:
            for transport in ("jsonp", "htmlfile"):
                r = self.client.get(f"/echo/0/s/{transport}?c={callback}")
                self.assertEqual((r.status, r.body), (500, b'invalid "callback" parameter'))
        self.assertEqual(len(self.resource.sessions), 0)

    def test_callbackCloaking(self) -> None:
        """The query is split on '&' only: c=a;alert(1) is an invalid callback, never a callback 'a'."""
        cases = [
            ("c=a;alert(1)", 'invalid "callback" parameter'),
            ("c=a%3Balert(1)", 'invalid "callback" parameter'),
            ("x=1;c=a", '"callback" parameter required'),
            ("c=a&c=b", 'invalid "callback" parameter'),
            ("c=a&c=a", 'invalid "callback" parameter'),
            ("c=", 'invalid "callback" parameter'),
            ("c", 'invalid "callback" parameter'),
            ("C=a", '"callback" parameter required'),
            ("", '"callback" parameter required'),
        ]
        for query, answer in cases:
            for transport in ("jsonp", "htmlfile"):
                r = self.client.get(f"/echo/0/s/{transport}?{query}")
                self.assertEqual((r.status, r.text), (500, answer), (transport, query))
                self.assertEqual(r.header("content-type"), "text/plain; charset=UTF-8")
        self.assertEqual(len(self.resource.sessions), 0)

    def test_callbackDecoded(self) -> None:
        """A valid callback is percent-decoded and may sit among other parameters, before or after."""
        r = self.client.get("/echo/0/j/jsonp?t=1;2&c=%61.b_c-1&x")
        self.assertEqual((r.status, r.body), (200, b'/**/a.b_c-1("o");\r\n'))
        r = self.client.get("/echo/0/h/htmlfile?c=cb&t=1")
        self.assertEqual(r.status, 200)
        self.assertIn(b"var c = parent.cb;", r.body)


class HeaderJunkTests(HostileTestCase):
    def test_originJunkNotReflected(self) -> None:
        """An Origin with control or non-ASCII bytes is never reflected; '*' is sent instead."""
        c = self.client.connect()
        raw = (
            b"GET /echo/info HTTP/1.1\r\nHost: x\r\nOrigin: http://a\x01b\xff\r\n"
            b"Access-Control-Request-Headers: a\x7fb\r\n\r\n"
        )
        c.send(raw)
        r = c._responses[0]
        self.assertEqual(r.header("access-control-allow-origin"), "*")
        self.assertIsNone(r.header("access-control-allow-headers"))

    def test_originStar(self) -> None:
        """A literal 'Origin: *' gets 'Access-Control-Allow-Origin: *' and never credentials."""
        star = {"Origin": "*"}
        for r in [
            self.client.post("/echo/0/o/xhr", headers=star),
            self.client.post("/echo/0/o/xhr_send", b'["x"]', headers=star),
            self.client.get("/echo/info", headers=star),
            self.client.request("OPTIONS", "/echo/0/o/xhr", headers=star),
            self.client.request("OPTIONS", "/echo/info", headers=star),
            self.client.get("/echo/0/j/jsonp?c=x", headers=star),
        ]:
            self.assertLess(r.status, 300)
            self.assertEqual(r.header("access-control-allow-origin"), "*")
            self.assertIsNone(r.header("access-control-allow-credentials"))
        r = self.client.post("/echo/0/p/xhr", headers={"Origin": "https://a.example"})
        self.assertEqual(r.header("access-control-allow-origin"), "https://a.example")
        self.assertEqual(r.header("access-control-allow-credentials"), "true")

    def test_cookieJunk(self) -> None:
        """A JSESSIONID cookie with junk in it is not reflected into Set-Cookie."""
        client, _ = sockjsClient(EchoFactory(), jsessionid=True)
        r = client.post("/echo/0/s/xhr", headers={"Cookie": "JSESSIONID=a\x01b"})
        self.assertEqual(r.header("set-cookie"), "JSESSIONID=dummy; path=/")


class OriginPolicyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.client, self.resource = sockjsClient(
            EchoFactory(),
            allowed_origins=["https://good.example", "https://*.trusted.example"],
        )

    def test_info(self) -> None:
        """/info lists the allowed origins."""
        import json

        data = json.loads(self.client.get("/echo/info").body)
        self.assertEqual(data["origins"], ["https://good.example", "https://*.trusted.example"])

    def test_websocketRefused(self) -> None:
        """Both websocket endpoints refuse other origins (and 'null') with 403."""
        for origin in ["https://evil.example", "null", "https://trusted.example.evil"]:
            for path in ["/echo/0/s/websocket", "/echo/websocket"]:
                ws = self.client.websocket(path, headers={"Origin": origin})
                self.assertEqual(ws.response.status, 403, (origin, path))

    def test_websocketAllowed(self) -> None:
        """Listed origins, exact or by wildcard, and requests without Origin are accepted."""
        for headers in [
            {"Origin": "https://good.example"},
            {"Origin": "https://a.trusted.example"},
            {},
        ]:
            ws = self.client.websocket("/echo/0/s/websocket", headers=headers)
            self.assertEqual(ws.response.status, 101, headers)

    def test_cors(self) -> None:
        """CORS headers go only to allowed origins, always with Vary: Origin."""
        r = self.client.post("/echo/0/a/xhr", headers={"Origin": "https://evil.example"})
        self.assertIsNone(r.header("access-control-allow-origin"))
        self.assertEqual(r.header("vary"), "Origin")
        r = self.client.get("/echo/info", headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("access-control-allow-origin"))
        r = self.client.post("/echo/0/b/xhr", headers={"Origin": "https://good.example"})
        self.assertEqual(r.header("access-control-allow-origin"), "https://good.example")
        self.assertEqual(r.header("access-control-allow-credentials"), "true")
        self.assertEqual(r.header("vary"), "Origin")

    def test_httpTransportsRefused(self) -> None:
        """Session URLs refuse requests from other origins with 403: no session, no send."""
        evil = {"Origin": "https://evil.example"}
        for method, path in [
            ("POST", "xhr"),
            ("POST", "xhr_streaming"),
            ("GET", "eventsource"),
            ("GET", "htmlfile?c=x"),
            ("GET", "jsonp?c=x"),
            ("OPTIONS", "xhr"),
        ]:
            r = self.client.request(method, f"/echo/0/e/{path}", headers=evil)
            self.assertEqual((r.status, r.body), (403, b"Origin not allowed."), path)
        self.assertEqual(len(self.resource.sessions), 0)
        self.client.post("/echo/0/good/xhr")
        for transport in ("xhr_send", "jsonp_send"):
            r = self.client.post(f"/echo/0/good/{transport}", b'["x"]', headers=evil)
            self.assertEqual(r.status, 403)

    def test_nullWhenListed(self) -> None:
        """Origin 'null' is allowed only when listed."""
        client, _ = sockjsClient(EchoFactory(), allowed_origins=["null"])
        ws = client.websocket("/echo/0/s/websocket", headers={"Origin": "null"})
        self.assertEqual(ws.response.status, 101)


class WebSocketTests(HostileTestCase):
    options = {"max_message_size": 1000}

    def test_missingConnection(self) -> None:
        """An upgrade without 'Connection: Upgrade' gets 400 with the spec's text."""
        r = self.client.get("/echo/0/s/websocket", headers={"Upgrade": "websocket"})
        self.assertEqual((r.status, r.body), (400, b'"Connection" must be "Upgrade".'))

    def test_wrongUpgrade(self) -> None:
        """An Upgrade to something else gets 400 with the spec's text."""
        r = self.client.get(
            "/echo/0/s/websocket", headers={"Upgrade": "h2c", "Connection": "Upgrade"}
        )
        self.assertEqual((r.status, r.body), (400, b'Can "Upgrade" only to "WebSocket".'))

    def test_wrongVersion(self) -> None:
        """An unsupported websocket version gets a 4xx, no session."""
        ws = self.client.websocket("/echo/0/s/websocket", headers={"Sec-WebSocket-Version": "99"})
        self.assertEqual(ws.response.status, 400)
        self.assertEqual(len(self.resource.sessions), 0)

    def test_disabled(self) -> None:
        """With websocket off, both websocket URLs answer 404."""
        client, _ = sockjsClient(EchoFactory(), websocket=False)
        for path in ["/echo/0/s/websocket", "/echo/websocket"]:
            self.assertEqual(client.websocket(path).response.status, 404)

    def test_upgradeElsewhere(self) -> None:
        """An upgrade request to a non-websocket URL gets that URL's own answer."""
        headers = {"Upgrade": "websocket", "Connection": "Upgrade"}
        self.assertEqual(self.client.get("/echo", headers=headers).status, 200)
        self.assertEqual(self.client.get("/echo/info", headers=headers).status, 200)
        self.assertEqual(self.client.post("/echo/0/u/xhr", headers=headers).body, b"o\n")
        self.assertEqual(self.client.get("/echo/0/u/xhr_send", headers=headers).status, 405)

    def test_tooBig(self) -> None:
        """A message over max_message_size closes the websocket with 1009."""
        ws = self.client.websocket("/echo/0/s/websocket")
        self.assertEqual(ws.frames(), ["o"])
        ws.sendText('["' + "x" * 2000 + '"]')
        self.assertEqual(ws.closeCode, 1009)
        self.assertEqual(self.factory.built[0].received, [])

    def test_invalidUTF8(self) -> None:
        """Invalid UTF-8 in a text frame closes the websocket with 1007."""
        ws = self.client.websocket("/echo/0/s/websocket")
        ws.frames()
        ws.sendRaw(0x1, b'["\xff"]')
        self.assertEqual(ws.closeCode, 1007)

    def test_unmaskedFrame(self) -> None:
        """An unmasked client frame is a protocol error: closed with 1002."""
        ws = self.client.websocket("/echo/0/s/websocket")
        ws.frames()
        ws.connection.transport.protocol.dataReceived(b"\x81\x05hello")
        ws.pump()
        self.assertEqual(ws.closeCode, 1002)

    def test_brokenJSON(self) -> None:
        """Broken JSON drops the connection; the protocol gets connectionLost once."""
        ws = self.client.websocket("/echo/0/s/websocket")
        ws.frames()
        ws.sendText('["a')
        self.assertTrue(ws.connection.closed)
        self.assertEqual(self.factory.built[0].events, ["makeConnection", "connectionLost"])

    def test_nonStringMessages(self) -> None:
        """A websocket array of non-strings is broken framing, delivered to no one."""
        ws = self.client.websocket("/echo/0/s/websocket")
        ws.frames()
        ws.sendText("[1, null]")
        self.assertTrue(ws.connection.closed)
        self.assertEqual(self.factory.built[0].received, [])


def frame(
    opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """One client websocket frame, as bytes."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = b"\x01\x02\x03\x04"
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def closeFrame(code: int, reason: bytes = b"") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason)


# A frame that ends the connection, and the close code the server answers it with.
ENDINGS = [
    ("clean close", closeFrame(1000, b"bye"), 1000),
    ("unmasked frame", frame(0x1, b"x", masked=False), 1002),
    ("reserved opcode", frame(0x3, b"x"), 1002),
    ("reserved bit", frame(0x1, b"x", rsv=4), 1002),
    ("continuation first", frame(0x0, b"x"), 1002),
    ("fragmented ping", frame(0x9, b"x", fin=False), 1002),
    ("long ping", frame(0x9, b"x" * 126), 1002),
    ("invalid close code", closeFrame(999), 1002),
    ("close reason not UTF-8", closeFrame(1000, b"\xff"), 1007),
    ("text not UTF-8", frame(0x1, b"\xff"), 1007),
    ("too big", frame(0x1, b"x" * 2000), 1009),
]


class SameReadTests(HostileTestCase):
    """
    A message and whatever ends the connection, in one TCP read: the reply to the message
    goes out before the close frame, on both websocket endpoints.
    """

    options = {"max_message_size": 1000}

    def test_framed(self) -> None:
        """On the SockJS websocket the reply a["hi"] comes before each close frame."""
        for name, ending, code in ENDINGS:
            ws = self.client.websocket("/echo/0/s/websocket")
            self.assertEqual(ws.frames(), ["o"])
            ws.connection.transport.protocol.dataReceived(frame(0x1, b'["hi"]') + ending)
            # Invalid UTF-8 is ours to find (Autobahn's check is off): a SockJS close
            # frame comes before the websocket one.
            sockjsClose = [(1007, "Invalid UTF-8")] if name == "text not UTF-8" else []
            self.assertEqual(ws.frames(), [["hi"], *sockjsClose], name)
            self.assertEqual(ws.closeCode, code, name)

    def test_raw(self) -> None:
        """On the raw websocket the reply 'hi' comes before each close frame."""
        for name, ending, code in ENDINGS:
            ws = self.client.websocket("/echo/websocket")
            ws.connection.transport.protocol.dataReceived(frame(0x1, b"hi") + ending)
            self.assertEqual(ws.receive(), ["hi"], name)
            self.assertEqual(ws.closeCode, code, name)

    def test_brokenFraming(self) -> None:
        """Broken SockJS framing after a good message: the reply, then the connection dropped without a close frame."""
        ws = self.client.websocket("/echo/0/s/websocket")
        self.assertEqual(ws.frames(), ["o"])
        ws.connection.transport.protocol.dataReceived(frame(0x1, b'["hi"]') + frame(0x1, b'["a'))
        self.assertEqual(ws.frames(), [["hi"]])
        self.assertIsNone(ws.closeCode)
        self.assertTrue(ws.connection.closed)


class EarlyMessageTests(HostileTestCase):
    """A message sent in the same packet as the websocket handshake is delivered."""

    def handshake(self, path: str) -> bytes:
        return (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode("ascii")

    def open(self, path: str, data: bytes, chunkSize: Optional[int] = None) -> WebSocket:
        return self.client.websocket(path, early=data, chunkSize=chunkSize)

    def test_framed(self) -> None:
        """On the SockJS websocket, messages behind the handshake reach the protocol after connectionMade and are echoed."""
        data = frame(0x1, b'["a"]') + frame(0x1, b'["b","c"]')
        ws = self.open("/echo/0/s/websocket", data)
        self.assertEqual(ws.response.status, 101)
        self.assertEqual(ws.frames(), ["o", ["a", "b", "c"]])
        protocol = self.factory.built[0]
        self.assertEqual(protocol.events[0], "makeConnection")
        self.assertEqual(protocol.received, [b"a", b"b", b"c"])

    def test_raw(self) -> None:
        """On the raw websocket, a message behind the handshake is delivered and echoed."""
        ws = self.open("/echo/websocket", frame(0x1, b"early"))
        self.assertEqual(ws.response.status, 101)
        self.assertEqual(ws.receive(), ["early"])
        self.assertEqual(self.factory.built[0].received, [b"early"])

    def test_closeBehindHandshake(self) -> None:
        """A message and a close behind the handshake: the reply, then the close."""
        ws = self.open("/echo/0/s/websocket", frame(0x1, b'["a"]') + closeFrame(1000))
        self.assertEqual(ws.frames(), ["o", ["a"]])
        self.assertEqual(ws.closeCode, 1000)


class CloseFrameTests(HostileTestCase):
    def closeWith(self, code: int, reason: str) -> WebSocket:
        ws = self.client.websocket("/echo/0/s/websocket")
        self.assertEqual(ws.frames(), ["o"])
        self.factory.built[-1].transport.close(code, reason)
        ws.pump()
        return ws

    def test_wireCode(self) -> None:
        """The close frame carries the session's code when a server may send it, else 1000; the SockJS frame always has it."""
        cases = [(1000, 1000), (1001, 1001), (1003, 1003), (1004, 1000), (1005, 1000)]
        cases += [(1006, 1000), (1007, 1007), (1014, 1014), (1015, 1000), (2010, 1000)]
        cases += [(2999, 1000), (3000, 3000), (4999, 4999), (5000, 1000), (999, 1000)]
        for code, wire in cases:
            ws = self.closeWith(code, "r")
            self.assertEqual(ws.frames(), [(code, "r")], code)
            self.assertEqual((ws.closeCode, ws.closeReason), (wire, "r"), code)

    def test_reasonCutOnCharacter(self) -> None:
        """A close reason over 123 bytes is cut on a character boundary: valid UTF-8 on the wire."""
        for reason, sent in [
            ("é" * 62, "é" * 61),
            ("a" + "é" * 61, "a" + "é" * 61),
            ("€" * 42, "€" * 41),
            ("😀" * 31, "😀" * 30),
            ("a" * 123, "a" * 123),
            ("a" * 124, "a" * 123),
        ]:
            ws = self.closeWith(3001, reason)
            self.assertEqual(ws.frames(), [(3001, reason)])
            self.assertEqual((ws.closeCode, ws.closeReason), (3001, sent))


@implementer(IPushProducer)
class Flood(Protocol):
    """Writes numbered 1 kB messages until its transport pauses it; records pauses and resumes."""

    def __init__(self) -> None:
        self.sent = 0
        self.paused = False
        self.events: list[str] = []

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]

    def flood(self, limit: int = 10000) -> None:
        while not self.paused and self.sent < limit:
            self.transport.write(b"%06d" % self.sent + b"x" * 1000)  # type: ignore[union-attr]
            self.sent += 1

    def pauseProducing(self) -> None:
        self.paused = True
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.paused = False
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


class BackpressureTests(SynchronousTestCase):
    """
    A client that does not read pauses the protocol's producer; when it reads again it gets
    every message, in order, and the producer is resumed.
    """

    def setUp(self) -> None:
        self.built: list[Flood] = []
        self.factory = Factory.forProtocol(Flood)
        buildProtocol = self.factory.buildProtocol

        def build(addr: Any) -> Any:
            protocol = buildProtocol(addr)
            self.built.append(protocol)
            return protocol

        self.factory.buildProtocol = build  # type: ignore[method-assign]
        self.client, self.resource = sockjsClient(self.factory, response_limit=64 * 1024 * 1024)

    def assertComplete(self, protocol: Flood, messages: list[str]) -> None:
        expected = ["%06d" % i + "x" * 1000 for i in range(protocol.sent)]
        self.assertEqual(messages, expected)
        self.assertLess(protocol.sent, 10000)

    def protocol(self) -> Flood:
        [protocol] = self.built
        return protocol

    def test_htmlfile(self) -> None:
        """htmlfile: the TCP connection's pause reaches the protocol; its resume delivers everything."""
        c = self.client.connect()
        r = c.request("GET", "/echo/0/s/htmlfile?c=cb")
        self.assertEqual(scriptFrames(r.read()), ["o"])
        protocol = self.protocol()
        c.transport.producer.pauseProducing()
        protocol.flood()
        self.client.advance()
        self.assertEqual(protocol.events, ["pause"])
        self.assertEqual(r.read(), b"")
        c.transport.producer.resumeProducing()
        self.client.advance()
        self.assertEqual(protocol.events, ["pause", "resume"])
        frames = scriptFrames(r.read())
        self.assertComplete(protocol, [m for f in frames for m in json.loads(f[1:])])

    def test_jsonp(self) -> None:
        """jsonp: with no poll waiting the protocol is paused; the next poll takes everything and resumes it."""
        self.assertEqual(self.client.get("/echo/0/s/jsonp?c=cb").body, b'/**/cb("o");\r\n')
        protocol = self.protocol()
        protocol.flood()
        self.client.advance()
        self.assertEqual(protocol.events, ["pause"])
        body = self.client.get("/echo/0/s/jsonp?c=cb").body
        self.assertEqual(protocol.events, ["pause", "resume"])
        self.assertTrue(body.startswith(b'/**/cb("a[') and body.endswith(b'");\r\n'))
        frame = json.loads(body[len(b"/**/cb(") : -len(b");\r\n")])
        self.assertComplete(protocol, json.loads(frame[1:]))

    def test_rawWebsocket(self) -> None:
        """The raw websocket: the TCP connection's pause reaches the protocol; its resume delivers everything."""
        ws = self.client.websocket("/echo/websocket")
        protocol = self.protocol()
        ws.connection.transport.producer.pauseProducing()
        protocol.flood()
        self.client.advance()
        self.assertEqual(protocol.events, ["pause"])
        self.assertEqual(ws.receive(), [])
        ws.connection.transport.producer.resumeProducing()
        self.client.advance()
        self.assertEqual(protocol.events, ["pause", "resume"])
        self.assertComplete(protocol, ws.receive())


def scriptFrames(body: bytes) -> list[str]:
    """The SockJS frames in a piece of htmlfile body."""
    found = re.findall(rb"<script>\np\((\".*?\")\);\n</script>\r\n", body)
    return [json.loads(f) for f in found]


class ConnectionHeadersTests(HostileTestCase):
    def test_neverCookies(self) -> None:
        """Over websocket and HTTP, a session exposes selected headers and never cookies."""
        sent = {"Cookie": "secret=1", "User-Agent": "ua", "X-Forwarded-For": "1.2.3.4"}
        ws = self.client.websocket("/echo/0/w/websocket", headers=sent)
        self.assertEqual(ws.frames(), ["o"])
        self.client.post("/echo/0/h/xhr", headers=sent)
        for protocol in self.factory.built:
            headers = protocol.transport.headers
            self.assertNotIn("cookie", headers)
            self.assertEqual(headers["user-agent"], "ua")
            self.assertEqual(headers["x-forwarded-for"], "1.2.3.4")
            self.assertEqual(headers["host"], "127.0.0.1:8081")


class UserCodeTests(SynchronousTestCase):
    def test_dataReceivedRaises(self) -> None:
        """A protocol raising in dataReceived: logged once, its session closed with 1011, others fine."""
        factory = RecordingFactory()

        def onData(protocol: Any, data: bytes) -> None:
            if data == b"boom":
                raise ValueError("user bug")
            protocol.transport.write(data)

        factory.onData = onData
        client, resource = sockjsClient(factory)
        client.post("/echo/0/bad/xhr")
        client.post("/echo/0/good/xhr")
        r = client.post("/echo/0/bad/xhr_send", b'["boom"]')
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(client.post("/echo/0/bad/xhr").body, b'c[1011,"Internal error"]\n')
        client.post("/echo/0/good/xhr_send", b'["fine"]')
        client.advance()
        self.assertEqual(client.post("/echo/0/good/xhr").body, b'a["fine"]\n')

    def test_tooManySessions(self) -> None:
        """Past max_sessions a new session gets c[1013,"Too many sessions"] and nothing is built."""
        factory = RecordingFactory()
        client, resource = sockjsClient(factory, max_sessions=2)
        client.post("/echo/0/a/xhr")
        client.post("/echo/0/b/xhr")
        self.assertEqual(client.post("/echo/0/c/xhr").body, b'c[1013,"Too many sessions"]\n')
        self.assertEqual(len(factory.built), 2)
        ws = client.websocket("/echo/0/d/websocket")
        self.assertEqual(ws.frames(), [(1013, "Too many sessions")])


class IsolationTests(SynchronousTestCase):
    def test_sameIdTwoEndpoints(self) -> None:
        """The same session id under two endpoints of one Site names two unrelated sessions."""
        from twisted.internet.testing import MemoryReactorClock
        from twisted.web.resource import Resource

        from sockjs_twisted import SockJSResource

        clock = MemoryReactorClock()
        a, b = RecordingFactory(), RecordingFactory()
        root = Resource()
        root.putChild(b"a", SockJSResource(a, reactor=clock))
        root.putChild(b"b", SockJSResource(b, reactor=clock))
        client = HTTPClient(root, clock)
        client.post("/a/0/same/xhr")
        self.assertEqual(client.post("/b/0/same/xhr_send", b'["x"]').status, 404)
        self.assertEqual(client.post("/b/0/same/xhr").body, b"o\n")
        client.post("/b/0/same/xhr_send", b'["to b"]')
        self.assertEqual(a.built[0].received, [])
        self.assertEqual(b.built[0].received, [b"to b"])
