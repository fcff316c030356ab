"""
Faster paths through Autobahn for the websocket traffic that dominates a SockJS server.

- :class:`FastFrameReceiver`: complete, masked, unfragmented text or binary frames that a
  network read carries whole are parsed and unmasked here and handed to ``onMessage``;
  anything else (a frame split across reads, fragments, control frames, unmasked or
  invalid frames, frames over the size limits) and everything after it in the read goes
  to Autobahn's own parser, unchanged.  ``tests/test_wsfast.py`` checks, on generated
  byte streams split at every point, that both deliver the same messages and write the
  same bytes.
- :class:`LeanProtocolFactory`: the protocol options live once per factory (as class
  attributes of a protocol class made for it), not copied into every connection, and
  Autobahn does not pretty-print them for a debug log line on every connection.

Unmasking: on CPython, XOR of two big integers (``int.from_bytes``) is fastest for small
payloads and Autobahn's native masker for large ones; on PyPy a plain loop over a
``bytearray``, which its JIT compiles, beats both (``bench/inmemory.py`` and the numbers
in ``docs/performance.rst``).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from autobahn.websocket.protocol import WebSocketProtocol

__all__ = ["FastFrameReceiver", "LeanProtocolFactory", "unmask"]

_OPEN = WebSocketProtocol.STATE_OPEN

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
            super().dataReceived(data)  # type: ignore[misc]
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
            attrs = {name: getattr(me, name) for name in base.CONFIG_ATTRS}
            attrs["CONFIG_ATTRS"] = ()
            attrs["__module__"] = base.__module__
            cls = self._leanProtocol = type(base.__name__, (base,), attrs)
        protocol = cls()
        protocol.factory = self
        return protocol
