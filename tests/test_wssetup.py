"""
Tests for the websocket set-up and teardown paths of
L{sockjs_twisted._transports._wsfast}: a session's whole life (the upgrade request, what
the protocol does when it opens, the frames the client sends, a close by either side, the
TCP connection lost) must go the same through the fast paths as through Autobahn alone.
Generated lives are run twice and compared: every byte written to the client, whether
and how the connection is being closed, what the user's protocol gets, Autobahn's view
of the connection at the end and the timers left.
"""

from __future__ import annotations

import json
import struct
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from autobahn.twisted.websocket import WebSocketAdapterProtocol
from autobahn.websocket import protocol as abprotocol
from autobahn.websocket.protocol import WebSocketProtocol, WebSocketServerProtocol
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from sockjs_twisted import SockJSFactory
from sockjs_twisted._session import EXPOSED_HEADERS
from sockjs_twisted._transports import _wsfast
from sockjs_twisted._transports._wsfast import FastFrameReceiver, HandshakeFromRequest
from sockjs_twisted._transports.websocket import SockJSWebSocketProtocol

from .test_wsfast import BASE_HEADERS, HANDSHAKES, frame

deterministic = settings(derandomize=True, max_examples=300, deadline=None, database=None)


@contextmanager
def paths(fast: bool) -> Iterator[None]:
    """
    Run the code inside with every fast path on, or with Autobahn alone.
    """
    saved = (
        HandshakeFromRequest.handshakeFromRequest,
        HandshakeFromRequest.leanConnection,
        FastFrameReceiver.fastFrames,
    )
    HandshakeFromRequest.handshakeFromRequest = fast
    HandshakeFromRequest.leanConnection = fast
    FastFrameReceiver.fastFrames = fast
    try:
        yield
    finally:
        (
            HandshakeFromRequest.handshakeFromRequest,
            HandshakeFromRequest.leanConnection,
            FastFrameReceiver.fastFrames,
        ) = saved


class Behaving(Protocol):
    """
    A user protocol that records what it gets and does what its factory says: echo,
    write or close when it opens, close when told to by a message.
    """

    def connectionMade(self) -> None:
        factory: Any = self.factory
        self.log: list[Any] = []
        factory.lives.append(self.log)
        self.log.append("open")
        if factory.behaviour == "write-at-open":
            self.transport.write(b"hi")  # type: ignore[union-attr]
        elif factory.behaviour == "close-at-open":
            self.transport.loseConnection()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.log.append(data)
        factory: Any = self.factory
        if data == b"close" and factory.closeWith is not None:
            self.transport.close(*factory.closeWith)  # type: ignore[union-attr]
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.log.append(("lost", type(reason.value).__name__))


class BehavingFactory(Factory):
    protocol = Behaving

    def __init__(self, behaviour: str, closeWith: Optional[tuple[int, str]]) -> None:
        self.behaviour = behaviour
        self.closeWith = closeWith
        self.lives: list[list[Any]] = []

    def buildProtocol(self, addr: Any) -> Optional[Protocol]:
        if self.behaviour == "refuse":
            return None
        return super().buildProtocol(addr)


class WriteCountingTransport(StringTransport):
    """
    A transport that also keeps every write apart.
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


# The connection's state as Autobahn keeps it, compared at the end of a life (but not
# http_response_data, a copy of the answer for Autobahn's testsuite that is not kept).
STATE = [
    "state",
    "wasClean",
    "closedByMe",
    "droppedByMe",
    "failedByMe",
    "localCloseCode",
    "localCloseReason",
    "remoteCloseCode",
    "remoteCloseReason",
    "wasNotCleanReason",
    "data",
    "http_status_line",
    "http_headers",
    "http_request_uri",
    "http_request_path",
    "http_request_params",
    "http_request_host",
    "websocket_version",
    "websocket_origin",
    "websocket_protocols",
    "websocket_protocol_in_use",
    "websocket_extensions_in_use",
    "inside_message",
    "current_frame",
    "peer",
    "send_queue",
    "openHandshakeTimeoutCall",
    "closeHandshakeTimeoutCall",
    "autoPingPendingCall",
]


def connectionState(ws: Any) -> dict[str, Any]:
    """
    What Autobahn knows of the connection C{ws}.
    """
    state = {name: getattr(ws, name, "(unset)") for name in STATE}
    state["send_queue"] = list(state["send_queue"])  # an empty deque, or none at all
    # Only the headers a session exposes are kept (the others go unread).
    if isinstance(state["http_headers"], dict):
        state["http_headers"] = {
            k: v for k, v in state["http_headers"].items() if k in EXPOSED_HEADERS
        }
    frame = state["current_frame"]
    if frame is not None and frame != "(unset)":
        state["current_frame"] = (frame.opcode, frame.fin, frame.rsv, frame.length, frame.mask)
    extensions = getattr(ws, "websocket_extensions", [])
    state["websocket_extensions"] = [(e[0], e[1]) for e in extensions]
    state["trafficStats"] = ws.trafficStats.__json__()
    state["is_open"] = ws.is_open.called
    state["is_closed"] = ws.is_closed.called
    state["countConnections"] = ws.factory.countConnections
    state["secure"] = ws.transport_details.is_secure
    return state


def life(
    fast: bool,
    request: bytes,
    early: bytes,
    chunks: list[bytes],
    end: str,
    behaviour: str = "echo",
    closeWith: Optional[tuple[int, str]] = None,
) -> tuple[Any, ...]:
    """
    One session's life, through the fast paths or through Autobahn alone: the upgrade
    C{request} with C{early} behind it in the same read, then the reads C{chunks}, then
    C{end}: C{"done"}, C{"lost"} or C{"aborted"} (the TCP connection lost for that
    reason), C{"timeout"} (the clock runs past the close handshake's deadline first) or
    C{"open"} (nothing).
    """
    with paths(fast):
        clock = MemoryReactorClock()
        factory = BehavingFactory(behaviour, closeWith)
        site = SockJSFactory(factory, reactor=clock, prefix="/echo", max_message_size=300)
        transport = WriteCountingTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8081),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        protocol = site.buildProtocol(transport.getPeer())
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(request + early)
        ws: Any = transport.protocol
        opened = isinstance(ws, SockJSWebSocketProtocol)
        for chunk in chunks:
            if not opened or transport.disconnecting:
                break
            ws.dataReceived(chunk)
        if end == "timeout":
            clock.advance(10)
        if opened and end != "open" and (end != "timeout" or transport.disconnecting):
            reason = {"lost": ConnectionLost, "aborted": ConnectionAborted}.get(
                end, ConnectionDone
            )
            ws.connectionLost(Failure(reason()))
        return (
            transport.value(),
            transport.disconnecting,
            transport.disconnected,
            factory.lives,
            connectionState(ws) if opened else None,
            len(clock.getDelayedCalls()),
            len(site.sockjsResource.sessions.openSessions()),
        )


def request(path: str, headers: list[tuple[str, str]], version: str = "1.1") -> bytes:
    lines = [f"GET /echo/{path} HTTP/{version}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


PLAIN = request("000/a/websocket", BASE_HEADERS)
RAW = request("websocket", BASE_HEADERS)


def closeFrame(
    code: Optional[int], reason: bytes = b"", masked: bool = True, payload: Optional[bytes] = None
) -> bytes:
    """
    A close frame as a client sends it: no payload when C{code} is C{None}.
    """
    if payload is None:
        payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(8, payload, masked=masked)


closeCodes = st.sampled_from(
    [None, 1000, 1001, 1002, 1005, 1006, 1011, 1015, 999, 2999, 3000, 4999, 5000]
)
closeReasons = st.sampled_from(
    [b"", b"bye", "adi\u00f3s".encode(), b"\xff", b"\xed\xa0\x80", b"\xe2\x82", b"x" * 123]
)


@st.composite
def clientCloses(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["close", "close", "close", "one byte", "unmasked", "long"]))
    if kind == "one byte":
        return closeFrame(None, payload=b"\x03")
    if kind == "long":
        return frame(8, b"\x03\xe8" + b"x" * 124)  # over 125 bytes
    code = draw(closeCodes)
    reason = draw(closeReasons) if code is not None else b""
    return closeFrame(code, reason, masked=kind != "unmasked")


messages = st.lists(st.sampled_from(["a", "close", "\u00e9t\u00e9", ""]), max_size=3).map(
    lambda ms: frame(1, json.dumps(ms).encode("utf-8"))
)
otherFrames = st.sampled_from(
    [frame(9, b"ping"), frame(10, b"pong"), frame(1, b"not json"), frame(1, b'["a"', fin=False)]
)
streams = st.lists(
    st.one_of(messages, messages, clientCloses(), clientCloses(), otherFrames),
    min_size=1,
    max_size=4,
).map(b"".join)
requests = st.one_of(
    st.just(PLAIN),
    st.just(RAW),
    st.sampled_from(sorted(HANDSHAKES)).map(lambda name: request(*HANDSHAKES[name])),
    st.just(request("000/a/websocket", BASE_HEADERS, version="1.0")),
)
behaviours = st.sampled_from(["echo", "echo", "write-at-open", "close-at-open", "refuse"])
closesWith = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from([1000, 3000, 4999, 2000, 1005]),
        st.sampled_from(["", "bye", "\u00e9" * 70]),
    ),
)
ends = st.sampled_from(["done", "done", "lost", "aborted", "timeout", "open"])


def cuts(stream: bytes, points: list[int]) -> list[list[bytes]]:
    """
    The stream in one read, in reads of one byte, and cut at each of C{points}.
    """
    out = [[stream], [stream[i : i + 1] for i in range(len(stream))]]
    for point in points:
        point %= len(stream) + 1
        out.append([stream[:point], stream[point:]])
    return out


class LifeTests(SynchronousTestCase):
    """
    A session's life goes the same through the fast paths as through Autobahn alone.
    """

    maxDiff = None

    def assertSameLife(self, *args: Any, **kw: Any) -> tuple[Any, ...]:
        fast = life(True, *args, **kw)
        plain = life(False, *args, **kw)
        self.assertEqual(fast, plain, f"life: {args!r} {kw!r}")
        return fast

    @deterministic
    @given(
        request=requests,
        stream=streams,
        early=st.integers(0, 2),
        points=st.lists(st.integers(0, 10_000), max_size=2),
        end=ends,
        behaviour=behaviours,
        closeWith=closesWith,
    )
    def test_sameLife(
        self,
        request: bytes,
        stream: bytes,
        early: int,
        points: list[int],
        end: str,
        behaviour: str,
        closeWith: Optional[tuple[int, str]],
    ) -> None:
        """Any request, client stream, split and ending: the same bytes, state and close."""
        if early == 2:
            # The client's frames behind its request, in the same read.
            self.assertSameLife(request, stream, [], end, behaviour, closeWith)
            return
        for chunks in cuts(stream, points):
            self.assertSameLife(request, b"", chunks, end, behaviour, closeWith)

    def test_clientCloses(self) -> None:
        """Every close code and reason a client may send is answered as Autobahn does."""
        for code in [None, 1000, 1001, 1002, 1005, 1011, 2999, 3000, 4999, 5000, 999]:
            for reason in [b"", b"bye", b"\xff", "\u00e9".encode(), b"\xed\xa0\x80"]:
                if code is None and reason:
                    continue
                with self.subTest(code=code, reason=reason):
                    self.assertSameLife(PLAIN, b"", [closeFrame(code, reason)], "done")

    def test_serverCloses(self) -> None:
        """A session closed by its protocol, answered by the client, ends the same."""
        for code in [None, 1000, 3000, 1002]:
            with self.subTest(code=code):
                written = self.assertSameLife(
                    PLAIN, b"", [closeFrame(code)], "done", "close-at-open"
                )[0]
                self.assertIn(b'c[3000,"Go away!"]', written)

    def test_serverClosesUnanswered(self) -> None:
        """A client that never answers the close frame is dropped at the deadline."""
        result = self.assertSameLife(PLAIN, b"", [], "timeout", "close-at-open")
        self.assertTrue(result[2])  # aborted
        self.assertEqual(result[5], 0)

    def test_clientDrops(self) -> None:
        """A client that drops the TCP connection without a close frame: the same."""
        for end in ["done", "lost", "aborted"]:
            with self.subTest(end=end):
                self.assertSameLife(PLAIN, b"", [frame(1, b'["a"]')], end)

    def test_earlyFrames(self) -> None:
        """Frames sent with the request, a close among them, arrive as with Autobahn."""
        early = frame(1, b'["a"]') + closeFrame(1000) + frame(1, b'["b"]')
        self.assertSameLife(PLAIN, early, [], "done")

    def test_fastClose(self) -> None:
        """The common life (open, a message, the client's close) gets the expected bytes."""
        written, closing, aborted, lives, state, timers, sessions = self.assertSameLife(
            PLAIN, b"", [frame(1, b'["a"]') + closeFrame(1000)], "done"
        )
        self.assertTrue(written.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"))
        self.assertTrue(written.endswith(b"\x81\x01o" + b'\x81\x06a["a"]' + b"\x88\x02\x03\xe8"))
        self.assertEqual(lives, [["open", b"a", ("lost", "ConnectionDone")]])
        self.assertEqual((closing, aborted, timers, sessions), (True, False, 0, 0))
        self.assertEqual(state["state"], WebSocketProtocol.STATE_CLOSED)
        self.assertTrue(state["wasClean"])


def opened(transport: StringTransport, behaviour: str = "echo") -> Any:
    """
    The websocket protocol of a session opened on C{transport} with the common request.
    """
    site = SockJSFactory(
        BehavingFactory(behaviour, None), reactor=MemoryReactorClock(), prefix="/echo"
    )
    protocol = site.buildProtocol(None)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    protocol.dataReceived(PLAIN)
    return transport.protocol


class FastPathTakenTests(SynchronousTestCase):
    """
    The common set-up and teardown do not reach Autobahn's own code for them.
    """

    def test_autobahnNotCalled(self) -> None:
        """Open, either close and connectionLost skip Autobahn's code for them."""
        calls: list[Any] = []

        def recording(cls: type, name: str) -> None:
            original = getattr(cls, name)

            def record(self: Any, *args: Any, **kw: Any) -> Any:
                calls.append((self, name))
                return original(self, *args, **kw)

            self.patch(cls, name, record)

        for name in ["connectionMade", "connectionLost", "dataReceived"]:
            recording(WebSocketAdapterProtocol, name)
        for name in [
            "__init__",
            "_connectionMade",
            "processHandshake",
            "succeedHandshake",
            "processData",
            "onCloseFrame",
            "sendFrame",
            "dropConnection",
            "_connectionLost",
        ]:
            for cls in [abprotocol.WebSocketProtocol, WebSocketServerProtocol]:
                if name in vars(cls):
                    recording(cls, name)
        for behaviour in ["echo", "close-at-open"]:
            with self.subTest(behaviour=behaviour):
                del calls[:]
                ws = opened(StringTransport(), behaviour)
                ws.dataReceived(closeFrame(1000))
                ws.connectionLost(Failure(ConnectionDone()))
                self.assertEqual([name for (who, name) in calls if who is ws], [])
                self.assertEqual(ws.factory.registry.openSessions(), [])

    def test_oneWrite(self) -> None:
        """The 101 answer and the o frame leave in one write."""
        transport = WriteCountingTransport()
        opened(transport)
        self.assertEqual(len(transport.writes), 1)
        self.assertTrue(transport.writes[0].startswith(b"HTTP/1.1 101 "))
        self.assertTrue(transport.writes[0].endswith(b"\r\n\r\n\x81\x01o"))

    def test_rawAnswerWritten(self) -> None:
        """A raw websocket, which sends nothing when it opens, still gets its answer."""
        written = life(True, RAW, b"", [], "open")[0]
        self.assertTrue(written.startswith(b"HTTP/1.1 101 "))
        self.assertTrue(written.endswith(b"\r\n\r\n"))


class LeanStateCheckTests(SynchronousTestCase):
    """
    When Autobahn gives a connection state the lean connections would not have, they are
    built and opened by Autobahn as before.
    """

    def assertAutobahnOpens(self) -> None:
        called = []
        original = abprotocol.WebSocketServerProtocol.succeedHandshake

        def succeedHandshake(self: Any, res: Any) -> None:
            called.append(True)
            original(self, res)

        self.patch(abprotocol.WebSocketServerProtocol, "succeedHandshake", succeedHandshake)
        result = life(True, PLAIN, b"", [closeFrame(1000)], "done")
        self.assertEqual(called, [True])
        self.assertEqual(result[:4], life(False, PLAIN, b"", [closeFrame(1000)], "done")[:4])
        self.assertEqual(result[3], [["open", ("lost", "ConnectionDone")]])

    def test_newConnectionState(self) -> None:
        """A new attribute set by Autobahn's connectionMade turns the lean path off."""
        original = abprotocol.WebSocketProtocol._connectionMade

        def _connectionMade(self: Any) -> None:
            original(self)
            self.somethingNew = 1

        self.patch(abprotocol.WebSocketProtocol, "_connectionMade", _connectionMade)
        self.assertAutobahnOpens()

    def test_changedDefault(self) -> None:
        """A default that Autobahn's connectionMade changed turns the lean path off."""
        self.patch(_wsfast, "_SHARED_STATE", {**_wsfast._SHARED_STATE, "closedByMe": None})
        self.assertAutobahnOpens()

    def test_newConstructorState(self) -> None:
        """A new attribute set by Autobahn's constructor turns the lean path off."""
        original = abprotocol.WebSocketProtocol.__init__

        def __init__(self: Any) -> None:
            original(self)
            self.somethingNew = 1

        self.patch(abprotocol.WebSocketProtocol, "__init__", __init__)
        self.assertAutobahnOpens()

    def test_leanWhenUnchanged(self) -> None:
        """With the Autobahn installed, connections are lean."""
        ws: Any = opened(StringTransport())
        self.assertNotIn("closedByMe", vars(ws))
        self.assertNotIn("is_closed", vars(ws))

    def test_isClosedAfterQuietClose(self) -> None:
        """is_closed, first asked for after a quiet close, has fired; is_open too."""
        ws: Any = opened(StringTransport())
        ws.dataReceived(closeFrame(1000))
        self.assertIs(self.successResultOf(ws.is_closed), ws)
        self.assertIsNone(self.successResultOf(ws.is_open))

    def test_isClosedBeforeClose(self) -> None:
        """is_closed asked for while open fires when the connection closes."""
        ws: Any = opened(StringTransport())
        closed = ws.is_closed
        self.assertNoResult(closed)
        ws.dataReceived(closeFrame(1000))
        self.assertIs(self.successResultOf(closed), ws)


class KeptStateTests(SynchronousTestCase):
    """
    What Autobahn's parser sets is made from the handshake when asked for, not kept.
    """

    def test_notKept(self) -> None:
        """A connection opened from the request keeps none of the parser's derived values."""
        ws: Any = opened(StringTransport())
        for name in ("http_status_line", "http_request_path", "websocket_protocols", "_wskey"):
            self.assertNotIn(name, vars(ws))
        self.assertNotIn("peer", vars(ws))
        self.assertIsNone(ws._handshake.answer)

    def test_madeWhenAsked(self) -> None:
        """Asked for, they are Autobahn's values, the same object each time."""
        ws: Any = opened(StringTransport())
        self.assertEqual(ws.http_status_line, "GET /echo/000/a/websocket HTTP/1.1")
        self.assertEqual(ws.http_request_path, "/echo/000/a/websocket")
        self.assertEqual(ws.http_request_params, {})
        self.assertEqual(ws.websocket_version, 13)
        self.assertEqual(ws.websocket_extensions_in_use, [])
        self.assertIs(ws.websocket_protocols, ws.websocket_protocols)

    def test_missingWithoutHandshake(self) -> None:
        """A connection with no handshake taken from a request has none of them, as in Autobahn before its parser ran."""
        site = SockJSFactory(BehavingFactory("echo", None), reactor=MemoryReactorClock())
        gate: Any = site.sockjsResource._rawWebSocket
        ws: Any = gate._factory.buildProtocol(None)
        for name in ("http_status_line", "websocket_version", "websocket_extensions_in_use"):
            self.assertFalse(hasattr(ws, name), name)

    def test_extensionsInUseOnlyOnceOpened(self) -> None:
        """websocket_extensions_in_use is missing until succeedHandshake's work is done."""
        ws: Any = opened(StringTransport())
        ws._openedQuietly = False
        self.assertFalse(hasattr(ws, "websocket_extensions_in_use"))
