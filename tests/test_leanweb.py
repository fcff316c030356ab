"""
Tests for L{sockjs_twisted._leanweb}: the lean request must answer exactly as
twisted.web's own request does.  Generated sequences of requests (every SockJS URL kind,
static pages, resources of the user's own in the same site, every method, HTTP/1.0 and
1.1, origins, cookies, bodies, pipelining) go to two identical servers, one building
L{LeanRequest}s and one plain twisted.web requests; everything written to every
connection, and which connections are closed, must be the same but for the C{Date}
header (the lean one takes it from the reactor's clock).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http_headers
from twisted.web.resource import EncodingResourceWrapper, Resource
from twisted.web.server import NOT_DONE_YET, GzipEncoderFactory, Request
from twisted.web.static import Data

from sockjs_twisted import SockJSFactory, _leanweb
from sockjs_twisted._factory import _BoundedRequest, _LeanBoundedRequest
from sockjs_twisted._leanweb import KNOWN_NAMES, LeanRequest

deterministic = settings(derandomize=True, max_examples=80, deadline=None, database=None)


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


class UserLeaf(Resource):
    """
    A resource of the user's own, next to the SockJS endpoint, using what twisted.web's
    request offers: odd header values, cookies, ETag, Last-Modified, several values of
    one header, a body that is not bytes, methods it does not support.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"X-Odd", b"one\r\ntwo\nthree")
        request.setHeader(b"Content-Type", b"text/plain\r\nX-Injected: 1")
        request.setHeader("X-Str", "value")
        request.responseHeaders.addRawHeader(b"X-Many", b"a")
        request.responseHeaders.addRawHeader(b"X-Many", b"b")
        request.addCookie(b"k", b"v", path=b"/")
        request.setETag(b'"e"')
        request.setLastModified(1_000_000)
        return b"user body"

    def render_POST(self, request: Request) -> Any:
        return "not bytes"

    def render_DELETE(self, request: Request) -> bytes:
        request.setResponseCode(204)
        return b"dropped"


class UserAsync(Resource):
    """
    Answers later, in pieces, with a length or chunked.
    """

    isLeaf = True

    def __init__(self, clock: MemoryReactorClock) -> None:
        super().__init__()
        self.clock = clock

    def render_GET(self, request: Request) -> Any:
        if request.args.get(b"length"):
            request.setHeader(b"Content-Length", b"4")

        def later() -> None:
            request.write(b"ab")
            request.write(b"")
            request.write(b"cd")
            request.finish()

        self.clock.callLater(1, later)
        return NOT_DONE_YET


class UserRaises(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        raise RuntimeError("user bug")


class Server:
    """
    A SockJS site with resources of the user's own, building lean requests or not.
    """

    def __init__(self, lean: bool, options: dict[str, Any]) -> None:
        self.clock = MemoryReactorClock()
        self.clock.advance(1_800_000_000.25)
        self.site = SockJSFactory(
            Factory.forProtocol(Echo), reactor=self.clock, prefix="/echo", **options
        )
        self.site.requestFactory = _LeanBoundedRequest if lean else _BoundedRequest
        user = Resource()
        user.putChild(b"leaf", UserLeaf())
        user.putChild(b"async", UserAsync(self.clock))
        user.putChild(b"raises", UserRaises())
        user.putChild(
            b"gzip",
            EncodingResourceWrapper(Data(b"z" * 200, "text/plain"), [GzipEncoderFactory()]),
        )
        self.site.resource.putChild(b"user", user)
        self.site.startFactory()
        self.connections: list[tuple[Any, StringTransport]] = []

    def send(self, data: bytes, connection: int) -> None:
        """
        Send C{data} on connection number C{connection} (a new one if there is no such
        connection yet or it is closing).
        """
        if connection < len(self.connections):
            protocol, transport = self.connections[connection]
            if not transport.disconnecting:
                protocol.dataReceived(data)
                self.clock.advance(0)
                return
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8081),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000 + len(self.connections)),
        )
        protocol = self.site.buildProtocol(transport.getPeer())
        transport.protocol = protocol
        protocol.makeConnection(transport)
        self.connections.append((protocol, transport))
        protocol.dataReceived(data)
        self.clock.advance(0)

    def outcome(self) -> list[tuple[bytes, bool]]:
        return [(_masked(t.value()), t.disconnecting) for p, t in self.connections]


_DATE = re.compile(rb"\r\nDate: [^\r\n]*")
_EXPIRES = re.compile(rb"\r\nExpires: [^\r\n]*")
# twisted.web's page for a body that is not bytes shows the request's and the
# resource's reprs: the request's class name and both addresses differ, and so the
# page's length.
_REQUEST_REPR = re.compile(rb"(\w*Request|object) at 0x[0-9a-f]+")
_LENGTH = re.compile(rb"\r\nContent-Length: [0-9]+")


def _masked(output: bytes) -> bytes:
    output = _DATE.sub(b"\r\nDate: -", output)
    output = _EXPIRES.sub(b"\r\nExpires: -", output)
    masked = _REQUEST_REPR.sub(b"- at -", output)
    if masked != output:
        masked = _LENGTH.sub(b"\r\nContent-Length: -", masked)
    return masked


PATHS = [
    b"/echo",
    b"/echo/",
    b"/echo/info",
    b"/echo/info?t=1",
    b"/echo/iframe.html",
    b"/echo/iframe-1.2.html",
    b"/echo/websocket",
    b"/echo/000/{s}/xhr",
    b"/echo/000/{s}/xhr",
    b"/echo/000/{s}/xhr_send",
    b"/echo/000/{s}/xhr_send",
    b"/echo/000/{s}/xhr_streaming",
    b"/echo/000/{s}/eventsource",
    b"/echo/000/{s}/htmlfile?c=cb",
    b"/echo/000/{s}/htmlfile",
    b"/echo/000/{s}/htmlfile?c=%20x",
    b"/echo/000/{s}/jsonp?c=cb",
    b"/echo/000/{s}/jsonp",
    b"/echo/000/{s}/jsonp_send",
    b"/echo/000/{s}/websocket",
    b"/echo/000/{s}/bogus",
    b"/echo/0.0/{s}/xhr",
    b"/echo/0%30/{s}/xhr",
    b"/echo/000/{s}%2e/xhr",
    b"/echo/000/{s}/xhr/more",
    b"/ec%68o/info",
    b"/user/leaf",
    b"/user/async",
    b"/user/async?length=1",
    b"/user/raises",
    b"/user/gzip",
    b"/nothing",
    b"*",
]

BODIES = [b"", b'["a"]', b'["a","b\\u00e9"]', b"x", b"[1]", b"d=%5B%22f%22%5D", b"d="]


@st.composite
def requests(draw: Any) -> tuple[bytes, int]:
    method = draw(
        st.sampled_from([b"GET", b"GET", b"POST", b"POST", b"OPTIONS", b"HEAD", b"PUT", b"DELETE"])
    )
    path = draw(st.sampled_from(PATHS)).replace(b"{s}", draw(st.sampled_from([b"s1", b"s2"])))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    lines = [b"%s %s %s" % (method, path, version), b"Host: a.example"]
    origin = draw(
        st.sampled_from(
            [None, None, b"http://a.example", b"*", b"null", b"http://b.example", b"\x01x"]
        )
    )
    if origin is not None:
        lines.append(b"Origin: " + origin)
    if draw(st.integers(0, 3)) == 0:
        lines.append(
            b"Access-Control-Request-Headers: "
            + draw(st.sampled_from([b"x-a, x-b", b"", b"\x02"]))
        )
    cookie = draw(
        st.sampled_from(
            [None, None, b"JSESSIONID=abc", b"JSESSIONID=", b"a=1; JSESSIONID=q", b"x"]
        )
    )
    if cookie is not None:
        lines.append(b"Cookie: " + cookie)
    connection = draw(st.sampled_from([None, None, b"close", b"keep-alive"]))
    if connection is not None:
        lines.append(b"Connection: " + connection)
    if draw(st.integers(0, 4)) == 0:
        lines.append(b"If-None-Match: " + draw(st.sampled_from([b'"nope"', b"*"])))
    if draw(st.integers(0, 3)) == 0:
        lines.append(b"Accept-Encoding: gzip")
    body = b""
    if method in (b"POST", b"PUT") or draw(st.integers(0, 9)) == 0:
        body = draw(st.sampled_from(BODIES))
        contentType = draw(
            st.sampled_from(
                [None, b"text/plain", b"application/x-www-form-urlencoded; charset=UTF-8"]
            )
        )
        if contentType is not None:
            lines.append(b"Content-Type: " + contentType)
    if body and draw(st.integers(0, 3)) == 0:
        lines.append(b"Transfer-Encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        lines.append(b"Content-Length: %d" % (len(body),))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body, draw(st.integers(0, 3))


OPTIONS = [
    {},
    {"jsessionid": True, "allowed_origins": ["http://a.example"]},
    {"disable_cors": True, "response_limit": 300, "websocket": False},
]


class DifferentialTests(SynchronousTestCase):
    """
    A L{LeanRequest} answers every request exactly as twisted.web's request does.
    """

    def setUp(self) -> None:
        # The same entropy in /info from both.
        self.patch(secrets, "randbits", lambda bits: 123456)

    def compare(self, options: dict[str, Any], sequence: list[tuple[bytes, int]]) -> None:
        lean = Server(True, options)
        plain = Server(False, options)
        for server in (lean, plain):
            for data, connection in sequence:
                server.send(data, connection)
            # Heartbeats, answers that come later, timeouts.
            for _ in range(3):
                server.clock.advance(13)
        self.assertEqual(lean.outcome(), plain.outcome(), f"requests: {sequence!r}")
        self.flushLoggedErrors(RuntimeError)

    @deterministic
    @given(st.sampled_from(OPTIONS), st.lists(requests(), min_size=1, max_size=8))
    def test_sameResponses(
        self, options: dict[str, Any], sequence: list[tuple[bytes, int]]
    ) -> None:
        """Every generated request sequence gets the same bytes from both requests."""
        self.compare(options, sequence)

    @deterministic
    @given(st.sampled_from(OPTIONS), st.lists(requests(), min_size=2, max_size=6))
    def test_samePipelined(
        self, options: dict[str, Any], sequence: list[tuple[bytes, int]]
    ) -> None:
        """Requests pipelined in one read get the same bytes from both requests."""
        joined = b"".join(data for data, connection in sequence)
        self.compare(options, [(joined, 0)])

    def test_pollingCycle(self) -> None:
        """An xhr session opened, sent to and polled answers the same on both."""
        send = b'POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n["a"]'
        poll = b"POST /echo/000/s/xhr HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        self.compare({}, [(poll, 0), (send, 1), (poll, 0), (poll, 0), (send, 1)])

    def test_userResources(self) -> None:
        """The user's own resources answer the same on both, whatever they do."""
        sequence = []
        for method, path in [
            (b"GET", b"/user/leaf"),
            (b"HEAD", b"/user/leaf"),
            (b"POST", b"/user/leaf"),
            (b"PUT", b"/user/leaf"),
            (b"DELETE", b"/user/leaf"),
            (b"GET", b"/user/async"),
            (b"GET", b"/user/async?length=1"),
            (b"GET", b"/user/raises"),
            (b"GET", b"/user/gzip"),
            (b"HEAD", b"/user/gzip"),
        ]:
            head = b"%s %s HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n" % (method, path)
            sequence.append((head + b"Content-Length: 0\r\n\r\n", len(sequence)))
        self.compare({}, sequence)

    def test_leanUsed(self) -> None:
        """A SockJSSite builds lean requests where twisted.web allows them."""
        server = Server(True, {})
        server.send(b"GET /echo/info HTTP/1.1\r\nHost: a\r\n\r\n", 0)
        self.assertTrue(_leanweb.SUPPORTED)
        self.assertIs(SockJSFactory.requestFactory, _LeanBoundedRequest)
        self.assertIn(b"HTTP/1.1 200 OK", server.connections[0][1].value())


class LeanRequestTests(SynchronousTestCase):
    """
    What the lean request does its own way.
    """

    def test_dateFromTheReactorClock(self) -> None:
        """The Date header is the site's reactor time, formatted anew each second."""
        server = Server(True, {})
        info = b"GET /echo/ HTTP/1.1\r\nHost: a\r\n\r\n"
        server.send(info, 0)
        server.clock.advance(0.5)
        server.send(info, 0)
        server.clock.advance(0.5)
        server.send(info, 0)
        dates = re.findall(rb"Date: ([^\r]*)", server.connections[0][1].value())
        self.assertEqual(
            dates,
            [
                b"Fri, 15 Jan 2027 08:00:00 GMT",
                b"Fri, 15 Jan 2027 08:00:00 GMT",
                b"Fri, 15 Jan 2027 08:00:01 GMT",
            ],
        )

    def test_knownNamesAreCanonical(self) -> None:
        """Every header name stored as it is is what twisted.web's Headers stores it as."""
        for name in KNOWN_NAMES:
            headers = http_headers.Headers()
            headers.setRawHeaders(name.lower(), [b"v"])
            self.assertEqual(list(headers.getAllRawHeaders()), [(name, [b"v"])])

    def test_unsafeValueSanitized(self) -> None:
        """A known header set with a line break in its value is sanitized as twisted.web does."""
        server = Server(True, {})
        channel = server.site.buildProtocol(None)
        channel.makeConnection(StringTransport())
        request = LeanRequest(channel)
        request.setHeader(b"Content-Type", b"a\r\nb")
        request.setHeader(b"Vary", "Origin")
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"a b"])
        self.assertEqual(request.responseHeaders.getRawHeaders(b"vary"), [b"Origin"])

    def test_unsupportedTwistedWeb(self) -> None:
        """Headers stored under other names than the canonical ones rule the lean path out."""

        class OldHeaders(http_headers.Headers):
            def setRawHeaders(self, name: Any, values: Any) -> None:
                self._rawHeaders[name.lower()] = list(values)

        self.patch(_leanweb, "Headers", OldHeaders)
        self.assertFalse(_leanweb._supported())

    def test_http2LikeChannel(self) -> None:
        """A channel that writes headers its own way gets them through writeHeaders."""
        from twisted.web.http import HTTPChannel

        written: list[Any] = []

        class OwnHeaders(HTTPChannel):
            def writeHeaders(
                self, version: bytes, code: bytes, reason: bytes, headers: Any
            ) -> None:
                written.append((version, code, reason, list(headers.getAllRawHeaders())))

        server = Server(True, {})
        channel = OwnHeaders()
        channel.site = server.site  # type: ignore[attr-defined]
        transport = StringTransport()
        channel.makeConnection(transport)
        request = _LeanBoundedRequest(channel)
        channel.requests.append(request)
        request.gotLength(0)
        request.requestReceived(b"GET", b"/echo/", b"HTTP/1.1")
        self.assertEqual(len(written), 1)
        self.assertEqual(written[0][:3], (b"HTTP/1.1", b"200", b"OK"))
        self.assertEqual(transport.value(), b"Welcome to SockJS!\n")


class StockRequestTests(SynchronousTestCase):
    """
    Without the lean request (a SockJSResource in a plain Site, or an older twisted.web),
    the transports answer the same through twisted.web's public API.
    """

    def test_plainRequestFactory(self) -> None:
        """_BoundedRequest, the fallback, is a plain twisted.web request."""
        self.assertFalse(issubclass(_BoundedRequest, LeanRequest))
        server = Server(False, {})
        server.send(b"POST /echo/000/s/xhr HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0)
        out = server.connections[0][1].value()
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK\r\n"), out)
        self.assertTrue(out.endswith(b"2\r\no\n\r\n0\r\n\r\n"), out)


class ConnectionInfoTests(SynchronousTestCase):
    """
    The headers a session exposes are found by the names requests carry them under.
    """

    def test_exposedHeaders(self) -> None:
        """Exposed headers are kept under lower-case names whatever their spelling; others not."""
        for lean in (True, False):
            server = Server(lean, {})
            server.send(
                b"POST /echo/000/s/xhr HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\n"
                b"x-real-ip: 1.2.3.4\r\nDNT: 1\r\nCookie: c=1\r\nX-Other: o\r\n"
                b"Content-Length: 0\r\n\r\n",
                0,
            )
            session = server.site.sockjsResource.sessions.getSession("s")
            assert session is not None
            self.assertEqual(
                session.transport.headers,
                {"host": "a", "user-agent": "u", "x-real-ip": "1.2.3.4", "dnt": "1"},
            )

    def test_exposedNamesConstant(self) -> None:
        """The exposed names are known by twisted.web's canonical names, one each, nothing learnt from clients."""
        from sockjs_twisted._session import EXPOSED_HEADERS
        from sockjs_twisted._transports import _http

        self.assertEqual(sorted(_http._EXPOSED_NAMES.values()), sorted(EXPOSED_HEADERS))
        self.assertEqual(_http._EXPOSED_NAMES[b"DNT"], "dnt")
        self.assertEqual(_http._EXPOSED_NAMES[b"X-Forwarded-For"], "x-forwarded-for")
