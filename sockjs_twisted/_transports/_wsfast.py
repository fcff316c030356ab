"""
Faster paths through Autobahn for the websocket traffic that dominates a SockJS server.

- :class:`FastFrameReceiver`: complete, masked, unfragmented text or binary frames that a
  network read carries whole are parsed and unmasked here and handed to ``onMessage``;
  anything else (a frame split across reads, fragments, control frames, unmasked or
  invalid frames, frames over the size limits) and everything after it in the read goes
  to Autobahn's own parser, unchanged.  ``tests/test_wsfast.py`` checks, on generated
  byte streams split at every point, that both deliver the same messages and write the
  same bytes.
- :class:`HandshakeFromRequest`: the upgrade request twisted.web has already parsed is
  checked and answered from its parsed form; Autobahn's own handshake parser runs only
  for what this does not take (another HTTP version, duplicate or odd headers, a
  subprotocol request, an origin Autobahn would refuse), and then answers as before.
- :class:`LeanProtocolFactory`: the protocol options live once per factory (as class
  attributes of a protocol class made for it), not copied into every connection, and
  Autobahn does not pretty-print them for a debug log line on every connection.

Unmasking: on CPython, XOR of two big integers (``int.from_bytes``) is fastest for small
payloads and Autobahn's native masker for large ones; on PyPy a plain loop over a
``bytearray``, which its JIT compiles, beats both (``bench/inmemory.py`` and the numbers
in ``docs/performance.rst``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import sys
from collections import deque
from types import FunctionType
from typing import Any, Callable, Optional

from autobahn.twisted.util import create_transport_details, peer2str
from autobahn.wamp.types import TransportDetails
from autobahn.websocket import protocol as _abprotocol
from autobahn.websocket.protocol import (
    ConnectionDeny,
    ConnectionRequest,
    TrafficStats,
    WebSocketProtocol,
)
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

__all__ = [
    "FastFrameReceiver",
    "HandshakeFromRequest",
    "LeanProtocolFactory",
    "upgradeFromRequest",
    "unmask",
]

_OPEN = WebSocketProtocol.STATE_OPEN
_CONNECTING = WebSocketProtocol.STATE_CONNECTING
_CLOSING = WebSocketProtocol.STATE_CLOSING
_CLOSED = WebSocketProtocol.STATE_CLOSED
_CODE = struct.Struct("!H")

# Above this payload size Autobahn's native (SIMD) masker beats the integer XOR on CPython.
_NATIVE_FROM = 2048


def _unmaskInt(mask: bytes, payload: bytes, _fromBytes: Any = int.from_bytes) -> bytes:
    n = len(payload)
    key = mask * ((n + 3) >> 2)
    if len(key) != n:
        key = key[:n]
    return (_fromBytes(payload, "little") ^ _fromBytes(key, "little")).to_bytes(n, "little")


def _unmaskLoop(mask: bytes, payload: bytes) -> bytes:
    out = bytearray(payload)
    m0, m1, m2, m3 = mask[0], mask[1], mask[2], mask[3]
    n = len(out)
    i = 0
    while i + 4 <= n:
        out[i] ^= m0
        out[i + 1] ^= m1
        out[i + 2] ^= m2
        out[i + 3] ^= m3
        i += 4
    while i < n:
        out[i] ^= mask[i & 3]
        i += 1
    return bytes(out)


def _nativeMasker() -> Callable[[bytes, int], Any] | None:
    try:
        from autobahn.websocket import USES_NVX  # type: ignore[attr-defined]
        from autobahn.websocket.xormasker import create_xor_masker
    except ImportError:
        return None
    return create_xor_masker if USES_NVX else None  # type: ignore[no-any-return]


def _choose() -> Callable[[bytes, bytes], bytes]:
    if sys.implementation.name == "pypy":
        return _unmaskLoop
    native = _nativeMasker()
    if native is None:
        return _unmaskInt

    def unmaskCPython(mask: bytes, payload: bytes) -> bytes:
        n = len(payload)
        if n < _NATIVE_FROM:
            return _unmaskInt(mask, payload)
        result: bytes = native(mask, n).process(payload)
        return result

    return unmaskCPython


unmask: Callable[[bytes, bytes], bytes] = _choose()
unmask.__doc__ = "XOR C{payload} with the 4-byte websocket C{mask}, repeated."


class FastFrameReceiver:
    """
    A mixin for an Autobahn C{WebSocketProtocol} (put it before Autobahn's class in the
    bases) whose C{onMessage(payload, isBinary)} takes every message: see the module
    docstring.

    Whole, masked close frames are handled here too, as Autobahn's C{onCloseFrame} does
    for a valid code and reason (the reply, then the TCP connection closed), and close
    frames are sent without C{sendFrame}.

    :cvar fastFrames: Set to C{False} (on the class or an instance) to hand every read to
        Autobahn.
    """

    fastFrames = True
    # Bytes that go out before the next write (see HandshakeFromRequest).
    _head = b""

    def sendWholeMessage(self, payload: bytes) -> None:
        """
        Send C{payload} as one unfragmented text message, however large: the size limit
        is for what clients send.  The common case is framed here; anything else
        (compression, queued or logged sends) goes through Autobahn's C{sendMessage}.
        """
        me: Any = self
        if (
            self.fastFrames
            and me.state == _OPEN
            and me._perMessageCompress is None
            and not me.send_queue
            and not me.logFrames
            and not me.logOctets
            and me.trackedTimings is None
            and not me.autoFragmentSize
            and not me.maskServerFrames
        ):
            n = len(payload)
            if n < 126:
                head = bytes((0x81, n))
            elif n < 0x10000:
                head = b"\x81\x7e" + n.to_bytes(2, "big")
            else:
                head = b"\x81\x7f" + n.to_bytes(8, "big")
            before = self._head
            if before:
                self._head = b""
                me.transport.write(before + head + payload)
            else:
                me.transport.write(head + payload)
            stats = me.trafficStats
            stats.outgoingWebSocketMessages += 1
            stats.outgoingWebSocketFrames += 1
            stats.outgoingOctetsAppLevel += n
            stats.outgoingOctetsWebSocketLevel += n
            stats.outgoingOctetsWireLevel += n + len(head)
            return
        limit: int = me.maxMessagePayloadSize
        if 0 < limit < len(payload):
            me.maxMessagePayloadSize = 0
            try:
                me.sendMessage(payload)
            finally:
                me.maxMessagePayloadSize = limit
        else:
            me.sendMessage(payload)

    def sendData(self, data: bytes, sync: bool = False, chopsize: Optional[int] = None) -> None:
        # Autobahn's own formats a debug log line (type names, colours) for every write,
        # logged or not; the common case without it.
        me: Any = self
        before = self._head
        if before:
            self._head = b""
        if sync or chopsize or me.send_queue or me.logOctets:
            if before:
                me.transport.write(before)
            if me.send_queue is _NO_QUEUE:
                me.send_queue = deque()
            super().sendData(data, sync, chopsize)  # type: ignore[misc]
            return
        me.transport.write(before + data if before else data)
        state = me.state
        if state == _OPEN:
            me.trafficStats.outgoingOctetsWireLevel += len(data)
        elif state == _CONNECTING:
            me.trafficStats.preopenOutgoingOctetsWireLevel += len(data)

    def sendCloseFrame(
        self, code: Optional[int] = None, reasonUtf8: Optional[bytes] = None, isReply: bool = False
    ) -> None:
        me: Any = self
        payload = b"" if code is None else _CODE.pack(code) if 0 <= code < 0x10000 else None
        if reasonUtf8 is not None and payload is not None:
            payload += reasonUtf8
        if (
            me.state != _OPEN
            or not self.fastFrames
            or payload is None
            or len(payload) > 125
            or me.logFrames
            or me.maskServerFrames
            or (not isReply and me.closeHandshakeTimeout > 0)
        ):
            super().sendCloseFrame(code, reasonUtf8, isReply)  # type: ignore[misc]
            return
        # What Autobahn's does when open, with the frame made here.
        me.sendData(bytes((0x88, len(payload))) + payload)
        me.state = _CLOSING
        me.closedByMe = not isReply
        me.localCloseCode = code
        me.localCloseReason = reasonUtf8

    def dataReceived(self, data: bytes) -> None:
        me: Any = self
        if not (
            me.state == _OPEN
            and me.current_frame is None
            and not me.inside_message
            and self.fastFrames
            and me._perMessageCompress is None
            and not me.utf8validateIncoming
            and not me.logOctets
            and not me.logFrames
            and me.trackedTimings is None
            and me.applyMask
            and not me.failedByMe
        ):
            if me.state == _CLOSING and self._closingDataReceived(data):
                return
            # What Autobahn's Twisted adapter does, less its debug log line's formatting.
            me._dataReceived(data)
            return
        # What Autobahn's parser buffered (a frame header cut by the last read) goes first.
        buffered = me.data
        if buffered:
            me.data = b""
            data = buffered + data
        stats = me.trafficStats
        stats.incomingOctetsWireLevel += len(data) - len(buffered)
        limit = _limit(me.maxFramePayloadSize, me.maxMessagePayloadSize)
        onMessage = me.onMessage
        end = len(data)
        pos = 0
        octets = frames = 0
        try:
            while end - pos >= 6:
                b0 = data[pos]
                if b0 != 0x81 and b0 != 0x82:
                    if b0 == 0x88:
                        pos = self._closeFrameReceived(data, pos, end)
                    break  # fragment, control frame, RSV bits, reserved opcode
                length = data[pos + 1] - 0x80
                if length < 0:
                    break  # unmasked
                if length < 126:
                    maskAt = pos + 2
                elif length == 126:
                    if end - pos < 8:
                        break
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    if length < 126:
                        break  # not minimal: Autobahn's error
                    maskAt = pos + 4
                else:
                    break  # 64-bit lengths: Autobahn's
                if length > limit:
                    break  # Autobahn refuses it (1009)
                start = maskAt + 4
                stop = start + length
                if stop > end:
                    break  # incomplete: Autobahn buffers it
                payload = unmask(data[maskAt:start], data[start:stop]) if length else b""
                pos = stop
                octets += length
                frames += 1
                onMessage(payload, b0 == 0x82)
                if me.state != _OPEN:
                    break
        finally:
            if frames:
                stats.incomingOctetsWebSocketLevel += octets
                stats.incomingOctetsAppLevel += octets
                stats.incomingWebSocketFrames += frames
                stats.incomingWebSocketMessages += frames
        if pos < end:
            me.data = data[pos:] if pos else data
            me.consumeData()

    def _closingDataReceived(self, data: bytes) -> bool:
        """
        Handle a read that begins with a close frame while ours waits for its answer, if
        it is whole, masked and valid (see L{_closeFrameReceived}); C{False} if not.
        """
        me: Any = self
        if not (
            len(data) >= 6
            and data[0] == 0x88
            and me.current_frame is None
            and not me.inside_message
            and not me.data
            and self.fastFrames
            and me._perMessageCompress is None
            and not me.logOctets
            and not me.logFrames
            and me.trackedTimings is None
            and me.applyMask
            and not me.failedByMe
        ):
            return False
        end = self._closeFrameReceived(data, 0, len(data))
        if not end:
            return False
        if end < len(data):
            me.data = data[end:]  # after the close: Autobahn leaves it there too
        return True

    def _closeFrameReceived(self, data: bytes, pos: int, end: int) -> int:
        """
        Handle the close frame at C{data[pos:]} if it is whole, masked and valid, and
        return where it ends; else return C{pos}, leaving it to Autobahn.
        """
        me: Any = self
        length = data[pos + 1] - 0x80
        start = pos + 6
        stop = start + length
        if length < 0 or length > 125 or length == 1 or stop > end or me.echoCloseCodeReason:
            return pos
        code = reason = None
        if length:
            payload = unmask(data[pos + 2 : start], data[start:stop])
            code = (payload[0] << 8) | payload[1]
            if not (3000 <= code <= 4999 or code in me.CLOSE_STATUS_CODES_ALLOWED):
                return pos  # Autobahn's protocol violation
            if length > 2:
                try:
                    reason = payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    return pos  # Autobahn's invalid payload
        # What Autobahn's onCloseFrame does with it.
        me.remoteCloseCode = code
        me.remoteCloseReason = reason
        me.wasClean = True
        if me.state == _OPEN:
            me.sendCloseFrame(code=WebSocketProtocol.CLOSE_STATUS_CODE_NORMAL, isReply=True)
            me.dropConnection(abort=False)
        else:
            # The answer to our close frame.
            timer = me.closeHandshakeTimeoutCall
            if timer is not None:
                timer.cancel()
                me.closeHandshakeTimeoutCall = None
            me.dropConnection(abort=True)
        return stop


def _limit(frameLimit: int, messageLimit: int) -> int:
    limit = 1 << 62
    if frameLimit > 0:
        limit = frameLimit
    if 0 < messageLimit < limit:
        limit = messageLimit
    return limit


def _classValue(value: Any) -> Any:
    # A plain function stored on a class would become a method of its instances.
    return staticmethod(value) if isinstance(value, FunctionType) else value


class LeanProtocolFactory:
    """
    A mixin for an Autobahn C{WebSocketServerFactory} (before Autobahn's class in the
    bases): its protocols read the options from a protocol class made for this factory
    (rebuilt by every C{setProtocolOptions}), so no connection holds a copy and Autobahn
    logs no per-connection dump of them.  When that class passes
    :func:`_leanStateMatches`, its connections are also built without Autobahn's
    constructor (see :class:`HandshakeFromRequest`).
    """

    _leanProtocol: Any = None
    _answerHead: tuple[str, bytes] = ("", b"")

    def setProtocolOptions(self, **options: Any) -> None:
        super().setProtocolOptions(**options)  # type: ignore[misc]
        self._leanProtocol = None

    def leanProtocolClass(self) -> Any:
        """
        The protocol class made for this factory's options (made now if need be).
        """
        cls: Any = self._leanProtocol
        me: Any = self
        if cls is None or cls.__bases__[0] is not me.protocol:
            base = me.protocol
            attrs = {name: _classValue(getattr(me, name)) for name in base.CONFIG_ATTRS}
            attrs["CONFIG_ATTRS"] = ()
            attrs["__module__"] = base.__module__
            cls = self._leanProtocol = type(base.__name__, (base,), attrs)
            cls._leanState = issubclass(cls, HandshakeFromRequest) and _leanStateMatches(cls, me)
        return cls

    def buildProtocol(self, addr: Any) -> Any:
        cls = self.leanProtocolClass()
        protocol = cls.__new__(cls) if cls._leanState and cls.leanConnection else cls()
        protocol.factory = self
        return protocol

    def answerHead(self) -> Optional[bytes]:
        """
        The start of Autobahn's answer to a handshake it accepts with no subprotocol, no
        extension and no header of its own, up to C{Sec-WebSocket-Accept}; C{None} if
        this factory adds headers.
        """
        me: Any = self
        if me.headers:
            return None
        server = me.server
        cached = self._answerHead
        if cached[0] is server and cached[1]:
            return cached[1]
        head = "HTTP/1.1 101 Switching Protocols\r\n"
        if server:
            head += f"Server: {server}\r\n"
        head += "Upgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
        self._answerHead = (server, head.encode("utf-8"))
        return self._answerHead[1]


def upgradeFromRequest(factory: Any, request: IRequest) -> bool:
    """
    Take over the connection of C{request}, an upgrade request twisted.web has parsed,
    for a protocol of C{factory} (a :class:`LeanProtocolFactory`), and open the
    websocket from the parsed request, as Autobahn's C{WebSocketResource.render} would
    after parsing the request again; or return C{False}, having done nothing, for a
    request this does not take (then C{WebSocketResource} should have it).
    """
    req: Any = request
    channel = req.channel
    transport = channel.transport
    if transport is None:
        return False  # HTTP/2: Autobahn's resource answers 426
    cls = factory.leanProtocolClass()
    if not (cls._leanState and cls.leanConnection and cls.handshakeFromRequest):
        return False
    handshake = readHandshake(cls, factory, request)
    if handshake is None:
        return False
    protocol = factory.buildProtocol(req.transport.getPeer())
    # Take the transport over from twisted.web, as WebSocketResource.render does.
    channel.transport = None
    if isinstance(transport, ProtocolWrapper):
        transport.wrappedProtocol = protocol
    elif isinstance(transport.protocol, ProtocolWrapper):
        transport.protocol.wrappedProtocol = protocol
    else:
        transport.protocol = protocol
    protocol.connectionFromRequest(transport)
    if hasattr(transport, "_networkProducer"):
        transport._networkProducer.resumeProducing()
    elif hasattr(transport, "resumeProducing"):
        transport.resumeProducing()
    protocol.openFromRequest(handshake, req.content.read())
    return True


_NO_QUEUE: Any = ()

_KEY = re.compile(rb"[A-Za-z0-9+/]{22}==")


def _single(found: dict[str, Any], name: str) -> Optional[bytes]:
    """
    The value of header C{name} if it came exactly once, C{b""} if not at all, C{None} if
    more than once.
    """
    values = found.get(name)
    if not values:
        return b""
    if len(values) != 1:
        return None
    value: bytes = values[0]
    return value


# The headers of a handshake, and the lower-case form of header names as twisted.web
# keeps them (a bounded cache: names are few).
_HANDSHAKE_HEADERS = frozenset(
    [
        "host",
        "sec-websocket-key",
        "origin",
        "sec-websocket-extensions",
        "sec-websocket-version",
        "sec-websocket-protocol",
    ]
)
_lowerNames: dict[bytes, str] = {}


class _Handshake:
    """
    An opening handshake read from a parsed request: what Autobahn's parser would have
    found in it, and the size of the request as Autobahn's replay would have sent it.
    """

    __slots__ = ("headers", "uri", "host", "origin", "extensions", "key", "size", "answer")

    def __init__(
        self,
        headers: dict[str, str],
        uri: str,
        host: str,
        origin: str,
        extensions: str,
        key: str,
        size: int,
        answer: Optional[bytes],
    ) -> None:
        self.headers = headers
        self.uri = uri
        self.host = host
        self.origin = origin
        self.extensions = extensions
        self.key = key
        self.size = size
        self.answer = answer


def readHandshake(cls: Any, factory: Any, request: IRequest) -> Optional[_Handshake]:
    """
    Check the upgrade request C{request} as Autobahn's parser would for a protocol of
    class C{cls}: the handshake it accepts, or C{None} for anything else (another HTTP
    version, duplicate or odd headers, a subprotocol request, an origin Autobahn would
    refuse), which Autobahn's parser should see.
    """
    req: Any = request
    uri: bytes = req.uri
    if (
        req.clientproto != b"HTTP/1.1"
        or req.method != b"GET"
        or b"#" in uri
        or cls.maxConnections > 0
        or 13 not in cls.versions
        or cls.trustXForwardedFor
        or factory.externalPort
    ):
        return None
    # One pass over the headers as twisted.web parsed them: those of the handshake, and
    # Autobahn's view of the request (lower-case names, repeated headers joined with
    # ",", as WebSocketResource's replay joins them; only those in keptHeaders, when it
    # is set), and the size of that replay.
    kept = cls.keptHeaders
    lowerNames = _lowerNames
    found: dict[str, Any] = {}
    headers = {}
    size = len(req.method) + len(uri) + 14
    for rawName, values in req.requestHeaders.getAllRawHeaders():
        name = lowerNames.get(rawName)
        if name is None:
            name = rawName.decode("latin-1").lower()
            if len(lowerNames) < 1000:
                lowerNames[rawName] = name
        if name in _HANDSHAKE_HEADERS:
            found[name] = values
        if kept is None or name in kept:
            value = b",".join(values)
            headers[name] = value.decode("latin-1")
            size += len(rawName) + len(value) + 4
        else:
            size += len(rawName) + sum(map(len, values)) + len(values) + 3
    host = _single(found, "host")
    key = _single(found, "sec-websocket-key")
    origin = _single(found, "origin")
    extensions = _single(found, "sec-websocket-extensions")
    if (
        not host
        or key is None
        or _KEY.fullmatch(key.strip()) is None
        or _single(found, "sec-websocket-version") != b"13"
        or origin is None
        or extensions is None
        or "sec-websocket-protocol" in found
    ):
        return None
    hostText = host.decode("latin-1").strip()
    if ":" in hostText and not hostText.endswith("]"):
        hostText, port = hostText.rsplit(":", 1)
        if not port.strip().isdigit():
            return None
    originText = origin.decode("latin-1").strip()
    if originText:
        try:
            originTuple = _abprotocol._url_to_origin(originText)
        except ValueError:
            return None
        if not (originTuple == "null" and factory.allowNullOrigin):
            if not _abprotocol._is_same_origin(
                originTuple,
                "https" if factory.isSecure else "http",
                factory.externalPort or factory.port,
                cls.allowedOriginsPatterns,
            ):
                return None
    answer = None
    if not extensions:
        head = factory.answerHead()
        if head is not None:
            accept = base64.b64encode(hashlib.sha1(key.strip() + _WS_MAGIC).digest())
            answer = head + accept + b"\r\n\r\n"
    return _Handshake(
        headers,
        uri.decode("latin-1"),
        hostText,
        originText,
        extensions.decode("latin-1"),
        key.decode("ascii").strip(),
        size,
        answer,
    )


_WS_MAGIC = WebSocketProtocol._WS_MAGIC


def _future(resolved: bool, result: Any) -> Deferred[Any]:
    # What txaio.create_future and txaio.resolve make on Twisted.
    future: Deferred[Any] = Deferred()
    if resolved:
        future.callback(result)
    return future


class _PerConnection:
    """
    An attribute of a connection made on first use: a non-data descriptor, so the value
    it stores on the instance is found before it from then on.
    """

    def __init__(self, make: Callable[[Any], Any]) -> None:
        self._make = make
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        value = self._make(instance)
        instance.__dict__[self._name] = value
        return value


def _transportDetails(protocol: Any) -> Any:
    details = create_transport_details(protocol.transport, protocol.is_server)
    details.channel_framing = TransportDetails.CHANNEL_FRAMING_WEBSOCKET
    return details


# What Autobahn's constructor and its connectionMade give every connection: the values
# that are the same for all connections (no per-connection state until changed), and
# the objects made for each connection, here on first use.  _leanStateMatches checks
# this against the Autobahn that is installed.
_SHARED_STATE: dict[str, Any] = {
    "_perMessageCompress": None,
    "trackedTimings": None,
    "send_state": WebSocketProtocol.SEND_STATE_GROUND,
    "data": b"",
    "triggered": False,
    "wasMaxFramePayloadSizeExceeded": False,
    "wasMaxMessagePayloadSizeExceeded": False,
    "closedByMe": False,
    "failedByMe": False,
    "droppedByMe": False,
    "wasClean": False,
    "wasNotCleanReason": None,
    "wasServerConnectionDropTimeout": False,
    "wasOpenHandshakeTimeout": False,
    "wasCloseHandshakeTimeout": False,
    "wasServingFlashSocketPolicyFile": False,
    "localCloseCode": None,
    "localCloseReason": None,
    "remoteCloseCode": None,
    "remoteCloseReason": None,
    "openHandshakeTimeoutCall": None,
    "closeHandshakeTimeoutCall": None,
    "autoPingTimeoutCall": None,
    "autoPingPending": None,
    "autoPingPendingCall": None,
    "autoPingPendingSeq": 0,
    "autoPingPendingSent": None,
}
# Made per connection (or dropped: the UTF-8 validator is for utf8validateIncoming, the
# send queue for chopped or synchronous sends, made when one is asked for).
_OWN_STATE = frozenset(
    ["state", "trafficStats", "send_queue", "utf8validator", "factory", "peer"]
    + ["is_open", "is_closed", "_valid_events", "_results", "_transport_details"]
)


def _leanStateMatches(cls: Any, factory: Any) -> bool:
    """
    Whether Autobahn's constructor and C{_connectionMade} give a connection of class
    C{cls} exactly the state :class:`HandshakeFromRequest` provides without them: run
    them on one probe connection and compare.
    """
    if cls.openHandshakeTimeout > 0 or cls.utf8validateIncoming or cls.trackTimings:
        return False
    probe = cls()
    made = vars(probe)
    if (
        set(made) != {"is_open", "is_closed", "_valid_events", "_results", "_transport_details"}
        or made["_valid_events"] != ["message"]
        or made["_results"] != {"message": None}
        or not isinstance(made["_transport_details"], TransportDetails)
        or made["is_open"].called
        or made["is_closed"].called
    ):
        return False
    probe.factory = factory
    probe.peer = "probe"
    count = factory.countConnections
    try:
        _abprotocol.WebSocketServerProtocol._connectionMade(probe)
    except Exception:
        return False
    finally:
        factory.countConnections = count
    for name, value in made.items():
        if name in _OWN_STATE:
            continue
        default = _SHARED_STATE.get(name, _MISSING)
        if type(default) is not type(value) or default != value:
            return False
    return (
        made["state"] == _CONNECTING
        and type(made["trafficStats"]) is TrafficStats
        and made["send_queue"] == deque()
    )


_MISSING = object()


class HandshakeFromRequest:
    """
    A mixin for C{WebSocketServerProtocol} (before Autobahn's class in the bases): the
    opening handshake is taken from the twisted.web request being upgraded, and the
    connection's life is handled without Autobahn's per-connection ceremony where
    nothing would differ.

    - :func:`upgradeFromRequest` opens a connection from the parsed request: it answers a
      handshake with no subprotocol, extension or header of the factory's, in one write
      together with what the protocol writes while it opens (the SockJS ``o`` frame),
      and leaves the rest (extensions offered, an C{onConnect} that picks a subprotocol
      or adds headers, C{ConnectionDeny}) to Autobahn's C{succeedHandshake} and
      C{failHandshake}.
    - The per-connection state that Autobahn's constructor and C{connectionMade} set
      is, where it is the same for every connection, a class attribute until changed;
      what is made per connection (the transport details, the C{is_open} and
      C{is_closed} futures) is made when first asked for.  :func:`_leanStateMatches`
      checks this against the installed Autobahn, else connections are built and
      opened by Autobahn as usual.
    - A clean close (C{dropConnection} after the closing handshake) and the
      C{connectionLost} of a websocket closed cleanly, or dropped by either side, do
      what Autobahn's do without its debug log lines' formatting.
    - When the factory's C{pendingRequest} is set during Autobahn's own handshake (the
      request replayed by C{WebSocketResource}), the handshake is still taken from it.

    :cvar handshakeFromRequest: Set to C{False} to have Autobahn parse every handshake.
    :cvar leanConnection: Set to C{False} to have Autobahn build, open, drop and lose
        every connection.
    :cvar keptHeaders: The (lower-case) request headers the connection keeps when the
        handshake is taken from the request; C{None}: all of them.
    """

    handshakeFromRequest = True
    leanConnection = True
    keptHeaders: Optional[frozenset[str]] = None
    _leanState = False
    _openedQuietly = False
    _closedQuietly = False
    # The handshake's answer, while the opening protocol may still add to its write.
    _head = b""

    send_queue = _NO_QUEUE
    utf8validator = None
    websocket_protocol_in_use = None
    inside_message = False
    current_frame = None
    http_response_data = None
    is_open = _PerConnection(lambda me: _future(me._openedQuietly, None))
    is_closed = _PerConnection(lambda me: _future(me._closedQuietly, me))
    _valid_events = _PerConnection(lambda me: ["message"])
    _results = _PerConnection(lambda me: {"message": None})
    _transport_details = _PerConnection(_transportDetails)
    peer = _PerConnection(lambda me: peer2str(me.transport))

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[misc]
        me: Any = self
        # Autobahn makes an incremental UTF-8 validator for every connection; it is used
        # only with utf8validateIncoming, which is off (the session decodes instead).
        if not me.utf8validateIncoming:
            me.utf8validator = None
        # And a deque for synchronous or chopped sends, which only sendData fills: it
        # makes one when one is asked for.
        if not me.send_queue:
            me.send_queue = _NO_QUEUE

    def connectionFromRequest(self, transport: Any) -> None:
        """
        What C{makeConnection} and Autobahn's C{connectionMade} do, for a connection
        built by :class:`LeanProtocolFactory` and opened by :func:`upgradeFromRequest`.
        """
        me: Any = self
        me.connected = 1
        me.transport = transport
        me.state = _CONNECTING
        me.trafficStats = TrafficStats()
        # What every read and every write looks at, on the instance: CPython 3.11 looks
        # a class attribute up through an instance several times slower.
        me.data = b""
        me.current_frame = None
        me.inside_message = False
        me._perMessageCompress = None
        me.failedByMe = False
        me.trackedTimings = None
        me.send_queue = _NO_QUEUE
        self._head = b""
        try:
            transport.setTcpNoDelay(me.tcpNoDelay)
        except Exception:
            pass  # not a TCP transport, as in Autobahn's connectionMade
        me.factory.countConnections += 1

    def openFromRequest(self, handshake: _Handshake, early: bytes) -> None:
        """
        Open the connection with C{handshake}; C{early} is what the client sent behind
        its request, handled once the connection is open.
        """
        me: Any = self
        stats = me.trafficStats
        stats.preopenIncomingOctetsWireLevel += handshake.size + len(early)
        request = self._applyHandshake(handshake)
        try:
            accepted = me.onConnect(request)
        except ConnectionDeny as e:
            me.failHandshake(e.reason, e.code)
            return
        answer = handshake.answer
        if accepted is not None or answer is None or me.autoPingInterval:
            me.data = early
            me.succeedHandshake(accepted)
            me.http_response_data = None  # a copy of the answer, for Autobahn's testsuite
            return
        # What succeedHandshake does for this answer, which leaves with the first write.
        me.websocket_extensions_in_use = []
        stats.preopenOutgoingOctetsWireLevel += len(answer)
        me.state = _OPEN
        self._openedQuietly = True
        self._head = answer
        try:
            if ISSLTransport.providedBy(me.transport):
                me._onOpen()  # which completes the transport details
            else:
                me.onOpen()
        finally:
            head = self._head
            if head:
                self._head = b""
                me.transport.write(head)
        if early:
            me.data = early
            me.consumeData()

    def _applyHandshake(self, handshake: _Handshake) -> ConnectionRequest:
        me: Any = self
        uri = handshake.uri
        path, _, query = uri.partition("?")
        params = _abprotocol.parse.parse_qs(query) if query else {}
        extensions = handshake.extensions
        me.http_status_line = f"GET {uri} HTTP/1.1"
        me.http_headers = handshake.headers
        me.http_request_uri = uri
        me.http_request_path = path
        me.http_request_params = params
        me.http_request_host = handshake.host
        me.websocket_version = 13
        me.websocket_protocols = []
        me.websocket_origin = handshake.origin
        me.websocket_extensions = me._parseExtensionsHeader(extensions) if extensions else []
        me._wskey = handshake.key
        return ConnectionRequest(
            me.peer,
            handshake.headers,
            handshake.host,
            path,
            params,
            13,
            handshake.origin,
            [],
            me.websocket_extensions,
        )

    def processHandshake(self) -> None:
        me: Any = self
        request = getattr(me.factory, "pendingRequest", None)
        if request is not None and self.handshakeFromRequest:
            end = me.data.find(b"\r\n\r\n")
            if end >= 0:
                handshake = readHandshake(type(self), me.factory, request)
                if handshake is not None:
                    me.data = me.data[end + 4 :]
                    try:
                        accepted = me.onConnect(self._applyHandshake(handshake))
                    except ConnectionDeny as e:
                        me.failHandshake(e.reason, e.code)
                        return
                    me.succeedHandshake(accepted)
                    me.http_response_data = None
                    return
        super().processHandshake()  # type: ignore[misc]

    def dropConnection(self, abort: bool = False) -> None:
        me: Any = self
        if not (self.leanConnection and me.wasClean and me.state != _CLOSED):
            # Autobahn's logs a warning with the reason, or nothing to do.
            super().dropConnection(abort)  # type: ignore[misc]
            return
        # Autobahn's, less its debug log line.
        me.unregisterProducer()
        me.droppedByMe = True
        me.state = _CLOSED
        self._resolveClosed()
        me._closeConnection(abort)

    def _resolveClosed(self) -> None:
        closed = self.__dict__.get("is_closed")
        if closed is None:
            self._closedQuietly = True
        else:
            closed.callback(self)

    def _closeConnection(self, abort: bool = False) -> None:
        head = self._head
        if head:
            me: Any = self
            self._head = b""
            me.transport.write(head)
        super()._closeConnection(abort)  # type: ignore[misc]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        me: Any = self
        if not (
            self.leanConnection
            and isinstance(reason.value, (ConnectionDone, ConnectionLost))
            and me.autoPingPendingCall is None
            and me.autoPingTimeoutCall is None
            and me.openHandshakeTimeoutCall is None
            and not me.wasServingFlashSocketPolicyFile
        ):
            super().connectionLost(reason)  # type: ignore[misc]
            return
        # What Autobahn's connectionLost and _connectionLost do here, less the debug log
        # lines.
        if me.state != _CLOSED:
            me.state = _CLOSED
            self._resolveClosed()
        if me.wasClean:
            me._onClose(True, me.remoteCloseCode, me.remoteCloseReason)
        else:
            if not me.droppedByMe and me.wasNotCleanReason is None:
                # (Autobahn's wording for a reason that is not a TLS error)
                me.wasNotCleanReason = _PEER_DROPPED
            me._onClose(
                False,
                WebSocketProtocol.CLOSE_STATUS_CODE_ABNORMAL_CLOSE,
                f'connection was closed uncleanly ("{me.wasNotCleanReason}")',
            )
        me.factory.countConnections -= 1


for _name, _value in _SHARED_STATE.items():
    setattr(HandshakeFromRequest, _name, _value)
del _name, _value

_PEER_DROPPED = "peer dropped the TCP connection without previous WebSocket closing handshake"
