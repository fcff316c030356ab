"""
Tests for L{sockjs_twisted._httpfast}: the request fast path must behave exactly as
twisted.web's own parser does.  Generated request streams (valid and invalid request
lines and header fields, every kind of C{Content-Length}, chunked bodies, HTTP/1.0,
keep-alive and close, pipelined requests, slow answers, websocket upgrades followed by
frames, heads over the limits) are split at every point and fed to a channel with the
fast path on and off; what the resources see, every byte written, the connection's
state and its timers, then and after the clock moves on, must be the same.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from sockjs_twisted import SockJSFactory, _httpfast
from sockjs_twisted._factory import _SockJSChannel

deterministic = settings(derandomize=True, max_examples=40, deadline=None, database=None)

# Small limits, so that generated heads reach them.
MAX_LENGTH = 90
TOTAL_HEADERS = 160
MAX_HEADERS = 5


class Echo(Protocol):
    """
    Records every message it gets and sends it back.
    """

    def dataReceived(self, data: bytes) -> None:
        self.factory.received.append(data)  # type: ignore[attr-defined]
        self.transport.write(data)  # type: ignore[union-attr]


class EchoFactory(Factory):
    protocol = Echo

    def __init__(self) -> None:
        self.received: list[bytes] = []


class Recorder(Resource):
    """
    Records what each request looks like to a resource and answers it with its body;
    below C{/rec/slow} the answer comes a second later, below C{/rec/drop} the
    connection is closed once it is answered.
    """

    isLeaf = True

    def __init__(self, clock: MemoryReactorClock) -> None:
        super().__init__()
        self.clock = clock
        self.seen: list[tuple[Any, ...]] = []

    def render(self, request: Any) -> Any:
        body = request.content.read()
        self.seen.append(
            (
                request.method,
                request.uri,
                request.path,
                request.clientproto,
                [
                    (name, list(values))
                    for name, values in request.requestHeaders.getAllRawHeaders()
                ],
                body,
                dict(request.received_cookies),
                request.args,
            )
        )
        answer = b"%s %s %d\n" % (request.method, request.path, len(body))
        if request.path.startswith(b"/rec/drop"):
            request.write(answer)
            request.finish()
            request.transport.loseConnection()
            return NOT_DONE_YET
        if request.path.startswith(b"/rec/slow"):
            self.clock.callLater(1, self._finish, request, answer)
            return NOT_DONE_YET
        return answer

    def _finish(self, request: Any, answer: bytes) -> None:
        if not request._disconnected:
            request.write(answer)
            request.finish()


class OwnHeaders(_SockJSChannel):
    """
    A channel with its own C{allHeadersReceived}: the fast path calls it rather than
    doing its work inline.
    """

    def allHeadersReceived(self) -> None:
        super().allHeadersReceived()


class Run:
    """
    One connection to a fresh in-memory server (a SockJS endpoint at C{/echo}, the
    recorder at C{/rec}), with the request fast path on or off, and small limits on
    the head unless C{limits} is false, and a channel class of its own unless
    C{inline}.
    """

    def __init__(self, fast: bool, limits: bool = True, inline: bool = True) -> None:
        self.clock = MemoryReactorClock()
        self.factory = EchoFactory()
        site = SockJSFactory(self.factory, reactor=self.clock, prefix="/echo")
        self.recorder = Recorder(self.clock)
        site.resource.putChild(b"rec", self.recorder)
        if not inline:
            site.protocol = OwnHeaders
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8081),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        channel = site.buildProtocol(self.transport.getPeer())
        assert isinstance(channel, _SockJSChannel)
        channel.fastRequests = fast
        if limits:
            channel.MAX_LENGTH = MAX_LENGTH
            channel.totalHeadersSize = TOTAL_HEADERS
            channel.maxHeaders = MAX_HEADERS
        self.channel = channel
        self.transport.protocol = channel
        channel.makeConnection(self.transport)

    def state(self) -> tuple[Any, ...]:
        # Date and Expires are from the wall clock, not the reactor's.
        written = re.sub(rb"\r\n(Date|Expires): [^\r]*", rb"\r\n\1: -", self.transport.value())
        return (
            written,
            self.transport.disconnecting,
            self.transport.producerState,
            list(self.recorder.seen),
            list(self.factory.received),
            sorted(c.getTime() for c in self.clock.getDelayedCalls()),
            # What a refusal counts towards its lingering close's limit.
            (self.channel.refused, self.channel._discarded),
        )

    def feed(self, chunks: list[bytes]) -> list[tuple[Any, ...]]:
        # What raises (StringTransport refuses to resume producing once closing, which
        # a refusal after Connection: close asks of it with Twisted 25.5) is compared
        # too.
        raised: list[str] = []
        for chunk in chunks:
            if self.transport.disconnecting:
                break
            try:
                self.transport.protocol.dataReceived(chunk)
            except Exception as e:
                raised.append(repr(e))
        states = [self.state() + (list(raised),)]
        for step in (1, 1, 30, 60):
            try:
                self.clock.advance(step)
            except Exception as e:
                raised.append(repr(e))
            states.append(self.state() + (list(raised),))
        return states


def compare(testCase: SynchronousTestCase, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    plain = Run(False).feed(chunks)
    fast = Run(True).feed(chunks)
    testCase.assertEqual(fast, plain, f"chunks: {chunks!r}")
    called = Run(True, inline=False).feed(chunks)
    testCase.assertEqual(called, plain, f"chunks: {chunks!r}, allHeadersReceived called")
    return fast


def splits(stream: bytes) -> list[list[bytes]]:
    """
    The stream in one read, and cut in two at every point.
    """
    return [[stream]] + [[stream[:i], stream[i:]] for i in range(1, len(stream))]


KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def maskedFrame(opcode: int, payload: bytes) -> bytes:
    mask = b"\x9a\x05\xc3\x7e"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


UPGRADE = (
    b"GET /echo/websocket HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)

methods = st.sampled_from([b"GET", b"GET", b"POST", b"POST", b"OPTIONS", b"get", b"G(T", b""])
targets = st.sampled_from(
    [
        b"/rec",
        b"/rec/a?b=c&d=%20",
        b"/rec/slow",
        b"/rec/drop",
        b"/rec/%7e",
        b"/rec/a\x7fb",
        b"/rec/\xa0",
        b"*",
        b"/nothere",
        b"",
        b"/rec/" + b"p" * 60,
        b"/rec/" + b"p" * 85,
        b"/echo",
        b"/echo/",
        b"/echo/000/s1/xhr",
        b"/echo/000/s1/xhr_send",
    ]
)
cleanTargets = st.sampled_from(
    [
        b"/rec",
        b"/rec/a?b=c&d=%20",
        b"/rec/slow",
        b"/rec/slow",
        b"/rec/drop",
        b"/rec/%7e",
        b"/rec/" + b"p" * 60,
        b"/rec/" + b"p" * 85,
        b"/echo/000/s1/xhr",
        b"/echo/000/s1/xhr_send",
        b"/nothere",
    ]
)
versions = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"http/1.1", b"HTTP/2"]
)
spaces = st.sampled_from([b" ", b" ", b" ", b" ", b"  ", b"\t"])

names = st.sampled_from(
    [
        b"Host",
        b"host",
        b"X-Thing",
        b"x-THING",
        b"Cookie",
        b"Connection",
        b"Content-Type",
        b"Dnt",
        b"content-md5",
        b"Upgrade",
        b"X Bad",
        b"X(bad)",
        b"",
        b"Caf\xc3\xa9",
    ]
)
values = st.sampled_from(
    [
        b"a",
        b"",
        b"  spaced out  ",
        b"\ttab\t",
        b"a, b",
        b"k=v; k2=v2;bare",
        b"close",
        b"keep-alive",
        b"Upgrade",
        b"keep-alive, Upgrade",
        b"text/plain",
        b"x\x00y",
        b"x\x7fy",
        b"x\x01y",
        b"caf\xc3\xa9",
        b"x\ry",
        b"x\ny",
        b"v" * 40,
        b"v" * 80,
        b"v" * 100,
    ]
)
colons = st.sampled_from([b":", b": ", b": ", b": ", b" :", b":  ", b":\t"])
lengths = st.sampled_from(
    [
        b"0",
        b"3",
        b"3",
        b"5",
        b"+3",
        b"-1",
        b"3 ",
        b" 3",
        b"03",
        b"0x3",
        b"3, 3",
        b"",
        b"99999999999999",
    ]
)


cleanNames = st.sampled_from(
    [b"Host", b"X-Thing", b"x-THING", b"Cookie", b"Connection", b"Content-Type", b"Dnt"]
)
cleanValues = st.sampled_from(
    [
        b"a",
        b"",
        b"  spaced out  ",
        b"\ttab\t",
        b"k=v; k2=v2;bare",
        b"close",
        b"keep-alive",
        b"caf\xc3\xa9",
        b"v" * 40,
        b"v" * 80,
        b"v" * 100,
    ]
)


@st.composite
def headerFields(draw: Any, clean: bool) -> list[bytes]:
    kind = draw(st.integers(0, 19))
    if clean:
        return [draw(cleanNames) + draw(st.sampled_from([b":", b": "])) + draw(cleanValues)]
    if kind == 0:
        return [b"Content-Length" + draw(colons) + draw(lengths)]
    if kind == 1:
        return [b"Transfer-Encoding: " + draw(st.sampled_from([b"chunked", b"identity", b"gzip"]))]
    if kind == 2:
        return [b"Expect: 100-continue"]
    if kind == 3:
        return [b"X-Folded: a", draw(st.sampled_from([b" folded", b"\tfolded"]))]
    if kind == 4:
        return [draw(st.sampled_from([b"NoColon", b"\x00: x", b"content-length: 3"]))]
    return [draw(names) + draw(colons) + draw(values)]


bodies = st.sampled_from(
    [b"", b"", b"abc", b"abcde", b'["x"]', b"3\r\nabc\r\n0\r\n\r\n", b"zz\r\n", b"\r\n"]
)
cleanBodies = st.sampled_from([b"", b"abc", b'["x"]'])


@st.composite
def requests(draw: Any) -> bytes:
    """
    A request as clients send them (half of them), or one with odd parts anywhere.
    """
    clean = draw(st.booleans())
    if clean:
        line = (
            draw(st.sampled_from([b"GET", b"POST", b"OPTIONS"]))
            + b" "
            + draw(cleanTargets)
            + b" "
            + draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
        )
    else:
        line = draw(methods) + draw(spaces) + draw(targets) + b" " + draw(versions)
    fields: list[bytes] = []
    if draw(st.integers(0, 5)):
        fields.append(b"Host: " + draw(st.sampled_from([b"a", b"a", b"127.0.0.1:8081", b""])))
    for field in draw(st.lists(headerFields(clean), max_size=4)):
        fields += field
    body = draw(cleanBodies if clean else bodies)
    if body if clean else draw(st.integers(0, 3)) == 0:
        fields.append(b"Content-Length: %d" % len(body if clean else draw(bodies)))
    head = b"\r\n".join([line] + fields) + b"\r\n\r\n"
    if not clean and draw(st.integers(0, 9)) == 0:
        head = b"\r\n" + head  # the empty line some clients send before a request
    return head + body


@st.composite
def upgrades(draw: Any) -> bytes:
    frames = draw(st.lists(st.sampled_from([b"hello", b"", b"x" * 30]), max_size=3))
    out = UPGRADE + b"".join(maskedFrame(1, f) for f in frames)
    if draw(st.booleans()):
        out += maskedFrame(8, b"\x03\xe8")
    return out


streams = st.lists(
    st.one_of(requests(), requests(), requests(), upgrades()), min_size=1, max_size=3
).map(b"".join)

# What the load client sends: an xhr_send and a poll, pipelined or not.
XHR_SEND = (
    b"POST /echo/000/s1/xhr_send HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
    b'Content-Length: 5\r\n\r\n["x"]'
)
XHR = b"POST /echo/000/s1/xhr HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"


def _line(n: int) -> bytes:
    """
    A request line of C{n} bytes.
    """
    return b"GET /rec/" + b"p" * (n - 18) + b" HTTP/1.1"


def _field(n: int) -> bytes:
    """
    A header field line of C{n} bytes.
    """
    return b"X-F: " + b"v" * (n - 5)


def _request(*fields: bytes, line: bytes = b"GET /rec/r HTTP/1.1", body: bytes = b"") -> bytes:
    return b"\r\n".join((line,) + fields) + b"\r\n\r\n" + body


NEXT = b"GET /rec/next HTTP/1.1\r\nHost: a\r\n\r\n"

# One stream for each rule the fast path must keep as twisted.web does; each is followed
# by another request, to see that the channel goes on (or not) alike.
RULES = {
    "request line at MAX_LENGTH": _request(b"Host: a", line=_line(MAX_LENGTH)),
    "request line over MAX_LENGTH": _request(b"Host: a", line=_line(MAX_LENGTH + 1)),
    "field at MAX_LENGTH": _request(b"Host: a", _field(MAX_LENGTH)),
    "field over MAX_LENGTH": _request(b"Host: a", _field(MAX_LENGTH + 1)),
    "head at totalHeadersSize": _request(
        b"Host: a", _field(80), _field(TOTAL_HEADERS - 19 - 7 - 80)
    ),
    "head over totalHeadersSize": _request(
        b"Host: a", _field(80), _field(TOTAL_HEADERS - 19 - 7 - 79)
    ),
    "maxHeaders fields": _request(b"Host: a", *[b"X-A: %d" % i for i in range(MAX_HEADERS - 1)]),
    "over maxHeaders fields": _request(b"Host: a", *[b"X-A: %d" % i for i in range(MAX_HEADERS)]),
    "two Content-Length": _request(
        b"Host: a", b"Content-Length: 3", b"content-length: 3", body=b"abc"
    ),
    "Content-Length +3": _request(b"Host: a", b"Content-Length: +3", body=b"abc"),
    "Content-Length -1": _request(b"Host: a", b"Content-Length: -1", body=b"abc"),
    "Content-Length 0x3": _request(b"Host: a", b"Content-Length: 0x3", body=b"abc"),
    "Content-Length 3 3": _request(b"Host: a", b"Content-Length: 3 3", body=b"abc"),
    "Content-Length empty": _request(b"Host: a", b"Content-Length:", body=b"abc"),
    "Content-Length 003": _request(b"Host: a", b"Content-Length: 003", body=b"abc"),
    "Content-Length huge": _request(b"Host: a", b"Content-Length: 99999999999", body=b"abc"),
    "Content-Length over body": _request(b"Host: a", b"Content-Length: 5", body=b"abc"),
    "chunked": _request(b"Host: a", b"Transfer-Encoding: chunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
    "chunked and Content-Length": _request(
        b"Host: a", b"Transfer-Encoding: chunked", b"Content-Length: 3", body=b"abc"
    ),
    "identity": _request(b"Host: a", b"Transfer-Encoding: identity", b"Content-Length: 3")
    + b"abc",
    "Expect": _request(b"Host: a", b"Expect: 100-continue", b"Content-Length: 3", body=b"abc"),
    "folded": _request(b"Host: a", b"X-A: a", b" folded"),
    "space before colon": _request(b"Host : a"),
    "no colon": _request(b"Host: a", b"NoColon"),
    "empty name": _request(b"Host: a", b": v"),
    "control byte": _request(b"Host: a", b"X-A: a\x01b"),
    "NUL": _request(b"Host: a", b"X-A: a\x00b"),
    "bare CR": _request(b"Host: a", b"X-A: a\rb"),
    "bare LF": _request(b"Host: a", b"X-A: a\nb"),
    "blanks around values": _request(b"Host:\t a \t", b"X-A:b  ", b"X-B: \t"),
    "HTTP/1.0": _request(b"Host: a", line=b"GET /rec/r HTTP/1.0"),
    "HTTP/1.0 keep-alive": _request(
        b"Host: a", b"Connection: keep-alive", line=b"GET /rec/r HTTP/1.0"
    ),
    "HTTP/1.0 without Host": _request(line=b"GET /rec/r HTTP/1.0"),
    "close": _request(b"Host: a", b"Connection: close"),
    "close among others": _request(b"Host: a", b"Connection: foo close"),
    "no Host": _request(),
    "two Hosts": _request(b"Host: a", b"host: b"),
    "empty Host": _request(b"Host:"),
    "cookies": _request(b"Host: a", b"Cookie: a=b; c=d", b"cookie: e=f;g"),
    "leading empty line": b"\r\n" + _request(b"Host: a"),
    "two leading empty lines": b"\r\n\r\n" + _request(b"Host: a"),
    "double space": _request(b"Host: a", line=b"GET  /rec/r HTTP/1.1"),
    "lower-case method": _request(b"Host: a", line=b"get /rec/r HTTP/1.1"),
    "HTTP/1.2": _request(b"Host: a", line=b"GET /rec/r HTTP/1.2"),
    "DEL in target": _request(b"Host: a", line=b"GET /rec/\x7f HTTP/1.1"),
    "slow then more": _request(b"Host: a", line=b"GET /rec/slow HTTP/1.1"),
    "closing answer": _request(b"Host: a", line=b"GET /rec/drop HTTP/1.1"),
    "slow POST": _request(
        b"Host: a", b"Content-Length: 3", line=b"POST /rec/slow HTTP/1.1", body=b"abc"
    ),
    "request line where a field belongs": _request(b"Host: a", b"GET /rec/r HTTP/1.1"),
    "upgrade": UPGRADE + maskedFrame(1, b"hi") + maskedFrame(8, b"\x03\xe8"),
}


class RuleTests(SynchronousTestCase):
    """
    Each rule of twisted.web's parser, on a request followed by another, in every split:
    the fast path and twisted.web alone do the same.
    """

    def test_rules(self) -> None:
        """Every stream of L{RULES}, cut at every point, gives the same everything."""
        for name, stream in RULES.items():
            with self.subTest(name):
                for chunks in splits(stream + NEXT):
                    compare(self, chunks)

    def test_rulesAtDefaultLimits(self) -> None:
        """Heads around twisted.web's default 16 KiB limits give the same everything."""
        for n in (16384 - 2, 16384 - 1, 16384, 16385):
            for stream in (
                _request(b"Host: a", line=_line(n)),
                _request(b"Host: a", _field(n - 9 - 19)),
                _request(b"Host: a", _field(8000), _field(n - 8000 - 19 - 7)),
            ):
                fast = Run(True, limits=False).feed([stream + NEXT])
                plain = Run(False, limits=False).feed([stream + NEXT])
                self.assertEqual(fast, plain)


class DifferentialTests(SynchronousTestCase):
    """
    The fast path and twisted.web alone do the same with every request stream, however
    split.
    """

    @deterministic
    @given(stream=streams)
    def test_sameAsTwisted(self, stream: bytes) -> None:
        """Any stream, cut at every point: same requests seen, same bytes, same state."""
        for chunks in splits(stream):
            compare(self, chunks)

    @settings(derandomize=True, max_examples=300, deadline=None, database=None)
    @given(stream=streams, cut=st.integers(0, 10_000))
    def test_oneOrTwoReads(self, stream: bytes, cut: int) -> None:
        """Many more streams, in one read and cut in two somewhere: the same."""
        compare(self, [stream])
        cut %= len(stream) + 1
        compare(self, [stream[:cut], stream[cut:]])

    @deterministic
    @given(
        stream=st.lists(requests(), min_size=1, max_size=3).map(b"".join),
        cuts=st.lists(st.integers(0, 10_000), max_size=6),
    )
    def test_manyReads(self, stream: bytes, cuts: list[bytes]) -> None:
        """A stream cut in many places arrives the same."""
        points = sorted({c % (len(stream) + 1) for c in cuts})
        edges = [0] + points + [len(stream)]
        compare(self, [stream[a:b] for a, b in zip(edges, edges[1:]) if b > a])

    def test_oneByteReads(self) -> None:
        """Reads of one byte each arrive the same."""
        stream = XHR + XHR_SEND + XHR
        compare(self, [stream[i : i + 1] for i in range(len(stream))])

    def test_sockjsCycle(self) -> None:
        """An xhr poll, an xhr_send, and a poll again, however split, answer the same."""
        stream = XHR + XHR_SEND + XHR
        for chunks in splits(stream):
            compare(self, chunks)

    def test_pipelinedBehindSlow(self) -> None:
        """Requests pipelined behind one answered later wait for it, as with twisted.web."""
        slow = b"GET /rec/slow HTTP/1.1\r\nHost: a\r\n\r\n"
        post = b"POST /rec/p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        for stream in (slow + post + slow, post + slow + post, slow * 3):
            for chunks in splits(stream):
                compare(self, chunks)

    def test_pipelinedPause(self) -> None:
        """Over 16 KiB pipelined behind a slow request pauses the transport, as before."""
        slow = b"GET /rec/slow HTTP/1.1\r\nHost: a\r\n\r\n"
        many = b"GET /rec/x HTTP/1.1\r\nHost: a\r\n\r\n" * 600
        states = compare(self, [slow + many])
        self.assertEqual(states[0][2], "paused")
        body = b"POST /rec/slow HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        compare(self, [body + many])

    def test_upgradeWithFrames(self) -> None:
        """Frames behind an upgrade request in the same read reach the websocket."""
        stream = UPGRADE + maskedFrame(1, b"hello") + maskedFrame(8, b"\x03\xe8")
        states = compare(self, [stream])
        self.assertEqual(states[0][4], [b"hello"])
        for chunks in splits(stream):
            compare(self, chunks)

    def test_closeThenMore(self) -> None:
        """Requests after C{Connection: close}, HTTP/1.0 or a closing answer are dropped alike."""
        close = b"GET /rec/a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        old = b"GET /rec/a HTTP/1.0\r\n\r\n"
        post = b"POST /rec/a HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"
        drop = b"GET /rec/drop HTTP/1.1\r\nHost: a\r\n\r\n"
        for stream in (close + XHR, old + XHR, post + XHR, drop + XHR):
            for chunks in splits(stream):
                compare(self, chunks)


class FastPathTakenTests(SynchronousTestCase):
    """
    The requests the fast path is for do take it (the comparison is not of one path
    with itself).
    """

    def setUp(self) -> None:
        self.lines: list[bytes] = []
        original = HTTPChannel.lineReceived

        def lineReceived(channel: Any, line: bytes) -> None:
            self.lines.append(line)
            original(channel, line)

        self.patch(HTTPChannel, "lineReceived", lineReceived)

    def test_xhrCycle(self) -> None:
        """A poll and an xhr_send, pipelined in one read, never reach the line parser."""
        run = Run(True)
        run.feed([XHR + XHR_SEND + XHR])
        self.assertEqual(self.lines, [])
        self.assertIn(b'a["x"]\n', run.transport.value())

    def test_upgrade(self) -> None:
        """An upgrade request never reaches the line parser."""
        run = Run(True)
        run.channel.MAX_LENGTH = run.channel.totalHeadersSize = 16384
        run.feed([UPGRADE + maskedFrame(1, b"hi")])
        self.assertEqual(self.lines, [])
        self.assertEqual(run.factory.received, [b"hi"])

    def test_switchedOff(self) -> None:
        """With C{fastRequests} off, every request goes through twisted.web's parser."""
        run = Run(False)
        run.feed([XHR])
        self.assertEqual(self.lines[0], b"POST /echo/000/s1/xhr HTTP/1.1")

    def test_partialHead(self) -> None:
        """A head cut by the read is twisted.web's, and so is the rest of it."""
        run = Run(True)
        run.feed([XHR[:20], XHR[20:]])
        self.assertEqual(len(self.lines), 4)


class NamesTests(SynchronousTestCase):
    """
    Header names are canonicalised through twisted.web's own cache where it fits.
    """

    def test_twistedCache(self) -> None:
        """With the installed Twisted, the names parseHead looks up are twisted.web's cache."""
        from twisted.web.http_headers import _nameEncoder

        self.assertIs(_httpfast._names, _nameEncoder._canonicalHeaderCache)
        _httpfast.parseHead(XHR.replace(b"Host", b"X-Names-Test"), 1000, 1000, 10)
        self.assertEqual(_nameEncoder._canonicalHeaderCache[b"X-Names-Test"], b"X-Names-Test")

    def test_encoderWithoutCache(self) -> None:
        """An encoder without a cache of its own gives none."""

        class NoCache:
            def encode(self, name: bytes) -> bytes:
                return name.title()

        self.patch(_httpfast, "_nameEncoder", NoCache())
        self.assertIsNone(_httpfast._twistedNames())

    def test_encoderTakingAnything(self) -> None:
        """An encoder that does not refuse names that are not tokens gives no cache."""

        class Lax:
            def __init__(self) -> None:
                self._canonicalHeaderCache: dict[bytes, bytes] = {}

            def encode(self, name: bytes) -> bytes:
                self._canonicalHeaderCache[name] = name.title()
                return name.title()

        self.patch(_httpfast, "_nameEncoder", Lax())
        self.assertIsNone(_httpfast._twistedNames())

    def test_ownNames(self) -> None:
        """Without Twisted's cache, names are kept in the module's own, bounded."""
        own: dict[bytes, bytes] = {}
        self.patch(_httpfast, "_ownNames", own)
        self.patch(_httpfast, "_names", own)
        self.patch(_httpfast, "_MAX_NAMES", 2)
        for name in (b"a-b", b"c-d", b"e-f"):
            self.assertEqual(_httpfast._canonical(name), name.title())
        self.assertEqual(own, {b"a-b": b"A-B", b"c-d": b"C-D"})


class CookieTests(SynchronousTestCase):
    """
    Cookies are parsed when there is a Cookie header, and a request's own parseCookies
    is always called, as twisted.web calls it.
    """

    GET = b"GET /rec/a HTTP/1.1\r\nHost: a\r\n%s\r\n"

    def test_cookies(self) -> None:
        """A lean request has its cookies parsed if it has a Cookie header, none if not."""
        run = Run(True)
        run.feed([self.GET % b"Cookie: a=b\r\n" + self.GET % b""])
        self.assertEqual([seen[6] for seen in run.recorder.seen], [{b"a": b"b"}, {}])

    def test_ownParseCookies(self) -> None:
        """A request class with a parseCookies of its own has it called for every request."""
        run = Run(True)
        calls: list[bool] = []
        original = run.channel.requestFactory

        class Own(original):  # type: ignore[valid-type,misc]
            def parseCookies(self) -> None:
                calls.append(b"Cookie" in self.requestHeaders._rawHeaders)
                super().parseCookies()

        run.channel.requestFactory = Own
        run.feed([self.GET % b"Cookie: a=b\r\n" + self.GET % b""])
        self.assertEqual(calls, [True, False])
        self.assertEqual([seen[6] for seen in run.recorder.seen], [{b"a": b"b"}, {}])


class RequestFactoryTests(SynchronousTestCase):
    """
    The channel's request factory is called as twisted.web calls it: with the channel
    alone if it provides INonQueuedRequestFactory, with the queue position too if not;
    which kind it is, is asked once per factory.
    """

    def setUp(self) -> None:
        self.asked: list[Any] = []
        real = _httpfast.INonQueuedRequestFactory

        class Counting:
            @staticmethod
            def providedBy(factory: Any) -> bool:
                self.asked.append(factory)
                return bool(real.providedBy(factory))

        self.patch(_httpfast, "INonQueuedRequestFactory", Counting)
        self.patch(_httpfast, "_nonQueued", {})

    def feedTwice(self, wrap: Any) -> list[tuple[Any, ...]]:
        """Two polls, each on a channel whose request factory is C{wrap(original)}."""
        calls: list[tuple[Any, ...]] = []
        for _ in range(2):
            run = Run(True)
            original = run.channel.requestFactory
            run.channel.requestFactory = wrap(original, calls)
            run.feed([XHR])
            self.assertIn(b"o\n", run.transport.value())
        return calls

    def test_nonQueued(self) -> None:
        """The site's request class is called with the channel, and asked about once."""
        calls = self.feedTwice(lambda original, calls: original)
        self.assertEqual(calls, [])
        self.assertEqual(len(self.asked), 1)

    def test_queued(self) -> None:
        """A factory that is not INonQueuedRequestFactory gets the queue position, each time."""

        class Queued(QueuedFactory):
            def __hash__(self) -> int:  # type: ignore[override]
                return 0

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Queued)

        calls = self.feedTwice(Queued)
        self.assertEqual(calls, [(0,), (0,)])
        self.assertEqual(len(self.asked), 1)

    def test_unhashable(self) -> None:
        """An unhashable factory works, and is asked about every time."""
        calls = self.feedTwice(QueuedFactory)
        self.assertEqual(calls, [(0,), (0,)])
        self.assertEqual(len(self.asked), 2)


class QueuedFactory:
    """
    A request factory that is not an INonQueuedRequestFactory (and not hashable):
    records the queue position it is called with, and makes C{original}'s request.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, original: Any, calls: list[tuple[Any, ...]]) -> None:
        self.original = original
        self.calls = calls

    def __call__(self, channel: Any, queued: int) -> Any:
        self.calls.append((queued,))
        return self.original(channel)


class ParseHeadTests(SynchronousTestCase):
    """
    L{_httpfast.parseHead} takes only requests twisted.web accepts, and parses them as
    twisted.web does; everything else is left to twisted.web.
    """

    def parse(
        self, data: bytes, maxLine: int = 16384, maxTotal: int = 16384, maxHeaders: int = 500
    ) -> Any:
        return _httpfast.parseHead(data, maxLine, maxTotal, maxHeaders)

    def test_simple(self) -> None:
        """Method, target, version, canonical header names, stripped values, body offset."""
        data = b"POST /a?b HTTP/1.1\r\nhost:  x \r\ncontent-LENGTH: 2\r\ndnt:\t1\r\n\r\nabNEXT"
        self.assertEqual(
            self.parse(data),
            (
                b"POST",
                b"/a?b",
                b"HTTP/1.1",
                {b"Host": [b"x"], b"Content-Length": [b"2"], b"DNT": [b"1"]},
                2,
                len(data) - 6,
            ),
        )

    def test_repeatedHeaders(self) -> None:
        """Repeated fields keep their order under one name, as C{addRawHeader} does."""
        parsed = self.parse(b"GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\na: 3\r\n\r\n")
        self.assertEqual(parsed[3], {b"A": [b"1", b"3"], b"B": [b"2"]})
        self.assertEqual(list(parsed[3]), [b"A", b"B"])

    def test_emptyValues(self) -> None:
        """An empty or all-blank value is the empty string."""
        parsed = self.parse(b"GET / HTTP/1.1\r\nA:\r\nB: \t \r\n\r\n")
        self.assertEqual(parsed[3], {b"A": [b""], b"B": [b""]})

    def test_innerBlanks(self) -> None:
        """Blanks inside a value stay."""
        parsed = self.parse(b"GET / HTTP/1.1\r\nA: x \t y\r\n\r\n")
        self.assertEqual(parsed[3], {b"A": [b"x \t y"]})

    def test_incomplete(self) -> None:
        """A head without its empty line, or a body not all there, is left."""
        self.assertIsNone(self.parse(b"GET / HTTP/1.1\r\nHost: a\r\n"))
        self.assertIsNone(self.parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab"))

    def test_requestLine(self) -> None:
        """Only C{token SP visible-ASCII SP HTTP/1.x} request lines are taken."""
        for line in (
            b"GET  / HTTP/1.1",
            b"GET /\tx HTTP/1.1",
            b"GET / HTTP/1.1 ",
            b" GET / HTTP/1.1",
            b"G@T / HTTP/1.1",
            b"GET / HTTP/1.2",
            b"GET / http/1.1",
            b"GET /\x7f HTTP/1.1",
            b"GET /\xa0 HTTP/1.1",
            b"GET  HTTP/1.1",
            b"GET /",
        ):
            with self.subTest(line):
                self.assertIsNone(self.parse(line + b"\r\nHost: a\r\n\r\n"))

    def test_leadingEmptyLine(self) -> None:
        """The empty line a client may send before a request is twisted.web's to eat."""
        self.assertIsNone(self.parse(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))

    def test_headerFields(self) -> None:
        """Names must be tokens right before the colon; no folding; no control bytes."""
        for field in (
            b"Host : a",
            b" Host: a",
            b"X-A: a\r\n folded",
            b"X-A: a\r\n\tfolded",
            b"NoColon",
            b": empty name",
            b"X(A): a",
            b"Caf\xc3\xa9: a",
            b"X-A: a\x00b",
            b"X-A: a\x01b",
            b"X-A: a\x7fb",
            b"X-A: a\rb",
            b"X-A: a\nb",
        ):
            with self.subTest(field):
                self.assertIsNone(self.parse(b"GET / HTTP/1.1\r\n" + field + b"\r\n\r\n"))

    def test_nonASCIIValue(self) -> None:
        """Non-ASCII bytes in a value pass as they are."""
        parsed = self.parse(b"GET / HTTP/1.1\r\nX-A: caf\xc3\xa9\r\n\r\n")
        self.assertEqual(parsed[3], {b"X-A": [b"caf\xc3\xa9"]})

    def test_contentLength(self) -> None:
        """One C{Content-Length} of digits only; leading zeros are fine."""
        for value in (b"+3", b"-1", b"3 3", b"0x3", b"", b"3, 3", b"\xd9\xa3"):
            with self.subTest(value):
                self.assertIsNone(
                    self.parse(b"POST / HTTP/1.1\r\nContent-Length: " + value + b"\r\n\r\nabc")
                )
        self.assertIsNone(
            self.parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc")
        )
        self.assertEqual(self.parse(b"POST / HTTP/1.1\r\nContent-Length: 003\r\n\r\nabc")[4], 3)

    def test_transferCoding(self) -> None:
        """Any C{Transfer-Encoding} is twisted.web's, even C{identity}."""
        for value in (b"chunked", b"identity", b"gzip"):
            with self.subTest(value):
                self.assertIsNone(
                    self.parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: " + value + b"\r\n\r\n")
                )

    def test_expect(self) -> None:
        """An C{Expect} header is twisted.web's to answer."""
        self.assertIsNone(self.parse(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"))

    def test_limits(self) -> None:
        """No line over C{maxLine}, lines together within C{maxTotal}, C{maxHeaders} fields."""
        data = b"GET / HTTP/1.1\r\nA: 1\r\nB: 22\r\n\r\n"
        self.assertIsNotNone(self.parse(data, maxLine=14))
        self.assertIsNone(self.parse(data, maxLine=13))
        self.assertIsNotNone(self.parse(data, maxTotal=14 + 4 + 5))
        self.assertIsNone(self.parse(data, maxTotal=14 + 4 + 4))
        self.assertIsNotNone(self.parse(data, maxHeaders=2))
        self.assertIsNone(self.parse(data, maxHeaders=1))


class FallbackTests(SynchronousTestCase):
    """
    With a Twisted whose internals differ from what the fast path drives, the channel
    uses twisted.web's parser alone.
    """

    def test_headersStoredOtherwise(self) -> None:
        """A C{Headers} that keeps names another way is not supported."""

        class OtherHeaders:
            def __init__(self) -> None:
                self._rawHeaders: dict[bytes, list[bytes]] = {}

            def addRawHeader(self, name: bytes, value: bytes) -> None:
                self._rawHeaders.setdefault(name.lower(), []).append(value)

        self.assertTrue(_httpfast._twistedFits())
        self.patch(_httpfast, "Headers", OtherHeaders)
        self.assertFalse(_httpfast._twistedFits())

    def test_noNameEncoder(self) -> None:
        """A Twisted without the header name encoder is not supported."""
        self.patch(_httpfast, "_nameEncoder", None)
        self.assertFalse(_httpfast._twistedFits())

    def test_channelStateMissing(self) -> None:
        """A channel without the parser state the fast path sets is not supported."""
        self.patch(HTTPChannel, "_HTTPChannel__first_line", 0)
        self.assertFalse(_httpfast._twistedFits())

    def test_requestLineReadOtherwise(self) -> None:
        """A channel whose allContentReceived does not read the request line where receive puts it is not supported."""

        def allContentReceived(self: Any) -> None:
            pass

        self.assertTrue(_httpfast._twistedFits())
        self.patch(HTTPChannel, "allContentReceived", allContentReceived)
        self.assertFalse(_httpfast._twistedFits())

    def test_inlineHeaders(self) -> None:
        """
        C{allHeadersReceived} is done inline for L{_SockJSChannel} over the twisted.web
        code it knows, and called otherwise.
        """
        self.assertTrue(_httpfast._canInlineHeaders(_SockJSChannel))
        self.assertFalse(_httpfast._canInlineHeaders(OwnHeaders))
        self.patch(_httpfast, "_ALL_HEADERS_RECEIVED", ((), ()))
        self.assertFalse(_httpfast._canInlineHeaders(_SockJSChannel))

    def test_unsupportedServes(self) -> None:
        """A channel made when the fast path is unsupported serves through twisted.web."""
        self.patch(_SockJSChannel, "fastRequests", False)

        def fail(channel: Any, data: bytes) -> bool:
            raise AssertionError("fast path used")

        self.patch(_httpfast, "receive", fail)
        clock = MemoryReactorClock()
        site = SockJSFactory(EchoFactory(), reactor=clock, prefix="/echo")
        transport = StringTransport()
        channel = site.buildProtocol(None)
        channel.makeConnection(transport)
        channel.dataReceived(XHR)
        self.assertIn(b"\r\no\n", transport.value())
