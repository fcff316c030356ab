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

import re
import sys
from collections import deque
from types import FunctionType
from typing import Any, Callable, Optional

from autobahn.websocket import protocol as _abprotocol
from autobahn.websocket.protocol import ConnectionDeny, ConnectionRequest, WebSocketProtocol
from twisted.web.iweb import IRequest

__all__ = ["FastFrameReceiver", "HandshakeFromRequest", "LeanProtocolFactory", "unmask"]

_OPEN = WebSocketProtocol.STATE_OPEN
_CONNECTING = WebSocketProtocol.STATE_CONNECTING

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

    :cvar fastFrames: Set to C{False} (on the class or an instance) to hand every read to
        Autobahn.
    """

    fastFrames = True

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
        if sync or chopsize or me.send_queue or me.logOctets:
            if me.send_queue is _NO_QUEUE:
                me.send_queue = deque()
            super().sendData(data, sync, chopsize)  # type: ignore[misc]
            return
        me.transport.write(data)
        state = me.state
        if state == _OPEN:
            me.trafficStats.outgoingOctetsWireLevel += len(data)
        elif state == _CONNECTING:
            me.trafficStats.preopenOutgoingOctetsWireLevel += len(data)

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
    logs no per-connection dump of them.
    """

    _leanProtocol: Any = None

    def setProtocolOptions(self, **options: Any) -> None:
        super().setProtocolOptions(**options)  # type: ignore[misc]
        self._leanProtocol = None

    def buildProtocol(self, addr: Any) -> Any:
        cls = self._leanProtocol
        me: Any = self
        if cls is None or cls.__bases__[0] is not me.protocol:
            base = me.protocol
            attrs = {name: _classValue(getattr(me, name)) for name in base.CONFIG_ATTRS}
            attrs["CONFIG_ATTRS"] = ()
            attrs["__module__"] = base.__module__
            cls = self._leanProtocol = type(base.__name__, (base,), attrs)
        protocol = cls()
        protocol.factory = self
        return protocol


_NO_QUEUE: Any = ()

_KEY = re.compile(rb"[A-Za-z0-9+/]{22}==")


def _single(request: Any, name: bytes) -> Optional[bytes]:
    """
    The value of header C{name} if it came exactly once, C{b""} if not at all, C{None} if
    more than once.
    """
    values = request.requestHeaders.getRawHeaders(name)
    if values is None:
        return b""
    if len(values) != 1:
        return None
    value: bytes = values[0]
    return value


class HandshakeFromRequest:
    """
    A mixin for C{WebSocketServerProtocol} (before Autobahn's class in the bases): when
    the factory's C{pendingRequest} holds the twisted.web request being upgraded, the
    opening handshake is taken from it (see the module docstring); Autobahn's
    C{succeedHandshake} still writes the response and opens the connection.

    :cvar handshakeFromRequest: Set to C{False} to have Autobahn parse every handshake.
    :cvar keptHeaders: The (lower-case) request headers the connection keeps when the
        handshake is taken from the request; C{None}: all of them.
    """

    handshakeFromRequest = True
    keptHeaders: Optional[frozenset[str]] = None

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

    def processHandshake(self) -> None:
        me: Any = self
        request = getattr(me.factory, "pendingRequest", None)
        if (
            request is None
            or not self.handshakeFromRequest
            or not self._handshakeFromRequest(request)
        ):
            super().processHandshake()  # type: ignore[misc]

    def _handshakeFromRequest(self, request: IRequest) -> bool:
        me: Any = self
        end = me.data.find(b"\r\n\r\n")
        if end < 0:
            return False
        req: Any = request
        uri: bytes = req.uri
        if (
            req.clientproto != b"HTTP/1.1"
            or req.method != b"GET"
            or b"#" in uri
            or me.maxConnections > 0
            or me.trustXForwardedFor
            or me.factory.externalPort
        ):
            return False
        host = _single(req, b"host")
        key = _single(req, b"sec-websocket-key")
        origin = _single(req, b"origin")
        extensions = _single(req, b"sec-websocket-extensions")
        if (
            not host
            or key is None
            or _KEY.fullmatch(key.strip()) is None
            or _single(req, b"sec-websocket-version") != b"13"
            or origin is None
            or extensions is None
            or req.requestHeaders.hasHeader(b"sec-websocket-protocol")
        ):
            return False
        hostText = host.decode("latin-1").strip()
        if ":" in hostText and not hostText.endswith("]"):
            hostText, port = hostText.rsplit(":", 1)
            if not port.strip().isdigit():
                return False
        originText = origin.decode("latin-1").strip()
        if originText:
            try:
                originTuple = _abprotocol._url_to_origin(originText)
            except ValueError:
                return False
            if not (originTuple == "null" and me.factory.allowNullOrigin):
                if not _abprotocol._is_same_origin(
                    originTuple,
                    "https" if me.factory.isSecure else "http",
                    me.factory.externalPort or me.factory.port,
                    me.allowedOriginsPatterns,
                ):
                    return False
        # Autobahn's view of the request, from twisted.web's parse: lower-case names,
        # repeated headers joined with "," (as WebSocketResource's replay joins them);
        # only those in keptHeaders, when it is set.
        kept = self.keptHeaders
        headers = {}
        for rawName, values in req.requestHeaders.getAllRawHeaders():
            name = rawName.decode("latin-1").lower()
            if kept is None or name in kept:
                headers[name] = b",".join(values).decode("latin-1")
        uriText = uri.decode("latin-1")
        path, _, query = uriText.partition("?")
        me.http_status_line = f"GET {uriText} HTTP/1.1"
        me.http_headers = headers
        me.http_request_uri = uriText
        me.http_request_path = path
        me.http_request_params = _abprotocol.parse.parse_qs(query) if query else {}
        me.http_request_host = hostText
        me.websocket_version = 13
        me.websocket_protocols = []
        me.websocket_origin = originText
        me.websocket_extensions = (
            me._parseExtensionsHeader(extensions.decode("latin-1")) if extensions else []
        )
        me._wskey = key.decode("ascii").strip()
        me.data = me.data[end + 4 :]
        connectionRequest = ConnectionRequest(
            me.peer,
            headers,
            hostText,
            path,
            me.http_request_params,
            13,
            originText,
            [],
            me.websocket_extensions,
        )
        try:
            accepted = me.onConnect(connectionRequest)
        except ConnectionDeny as e:
            me.failHandshake(e.reason, e.code)
            return True
        me.succeedHandshake(accepted)
        me.http_response_data = None  # a copy of the answer, kept for Autobahn's testsuite
        return True
