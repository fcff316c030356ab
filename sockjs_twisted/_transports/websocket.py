"""
The websocket transports, served by Autobahn inside the resource tree: the SockJS websocket
(C{.../<server>/<session>/websocket}, framed) and the raw one (C{/websocket}: one
websocket message per SockJS message, no framing, no heartbeats).

A small gate resource answers what the protocol suite wants of requests that are not
websocket upgrades (400 / 405 with SockJS's bodies, 404 when websockets are off) before
Autobahn's L{WebSocketResource} takes the connection over.
"""

from __future__ import annotations

from typing import Any, Optional

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from .._framing import BrokenFraming, decodeWebSocketPayload, messageFrame
from .._registry import SessionRegistry
from .._session import EXPOSED_HEADERS, ConnectionInfo, Session
from ..interfaces import ISessionSink
from ._http import notAllowed, notFound, originAllowed, text
from ._wsfast import (
    FastFrameReceiver,
    HandshakeFromRequest,
    LeanProtocolFactory,
    upgradeFromRequest,
)

BROKEN_FRAMING = (3000, "Broken framing.")
INVALID_UTF8 = (1007, "Invalid UTF-8")
CLOSE_HANDSHAKE_TIMEOUT = 5.0

# Close codes a server may put on the wire: 1000-1014 as registered, and 3000-4999.
_WIRE_CODES = frozenset(range(1000, 1015)) - {1004, 1005, 1006}


def _wireCode(code: int) -> int:
    """
    The close code to put in a websocket close frame for a session closed with C{code}:
    C{code} itself if a server may send it (1000-1003, 1007-1014, 3000-4999), else 1000.
    """
    return code if code in _WIRE_CODES or 3000 <= code <= 4999 else 1000


def _wireReason(reason: str) -> bytes:
    """
    C{reason} in UTF-8, cut to the 123 bytes a close frame has room for on a character
    boundary, so that what is sent is still valid UTF-8.
    """
    data = reason.encode("utf-8", "replace")
    if len(data) <= 123:
        return data
    end = 123
    while data[end] & 0xC0 == 0x80:
        # data[end] continues the character that data[end - 1] belongs to: cut before it.
        end -= 1
    return data[:end]


@implementer(ISessionSink, IPushProducer)
class SockJSWebSocketProtocol(FastFrameReceiver, HandshakeFromRequest, WebSocketServerProtocol):  # type: ignore[misc]
    """
    One websocket connection, and the sink of the one session it carries.
    """

    factory: SockJSWebSocketFactory
    keptHeaders = EXPOSED_HEADERS
    sinkPaused = False
    _session: Optional[Session] = None
    _info: Optional[ConnectionInfo] = None
    _closeTimer: Optional[IDelayedCall] = None
    _readingPaused = False

    @property
    def protocolName(self) -> str:  # type: ignore[override]
        return "websocket" if self.factory.framed else "websocket-raw"

    def onConnect(self, request: Any) -> None:
        transport: Any = self.transport
        # Autobahn keeps the handshake's headers (lower-case names) for the life of the
        # connection; the session filters them when asked instead of holding a copy.
        self._info = ConnectionInfo(
            peer=transport.getPeer(),
            host=transport.getHost(),
            headers=request.headers,
            url=self.http_request_uri,
        )

    def onOpen(self) -> None:
        assert self._info is not None
        # Follow the socket: the session queues while the kernel buffer is full.  The
        # HTTP channel that handed the connection over is still registered; replace it.
        transport: Any = self.transport
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        transport.registerProducer(self, True)
        sessionId: Optional[str] = None
        if self.factory.framed:
            sessionId = self._info.url.split("?", 1)[0].split("/")[-2]
        self.factory.registry.openSession(
            sessionId, self, self._info, registered=False, framed=self.factory.framed
        )

    def dataReceived(self, data: bytes) -> None:
        # Everything the messages in this read make protocols write leaves in one frame
        # per session when the read is handled: no timer, no extra reactor turn.
        registry = self.factory.registry
        registry.beginBatch()
        try:
            super().dataReceived(data)
        finally:
            registry.endBatch()

    def openFromRequest(self, handshake: Any, early: bytes) -> None:
        # The open is the handling of the read that carried the upgrade request, as
        # above.
        registry = self.factory.registry
        registry.beginBatch()
        try:
            super().openFromRequest(handshake, early)
        finally:
            registry.endBatch()

    def onMessageEnd(self) -> None:
        # Autobahn's own version also fires a "message" event through a Deferred per
        # message for listeners we never register; deliver the message and nothing else.
        if not self.failedByMe:
            self.onMessage(b"".join(self.message_data), self.message_is_binary)
        self.message_data = None  # type: ignore[assignment]

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self._session
        if session is None:
            return
        # Autobahn's incoming UTF-8 validation is off: this decode is the check.
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            session.flush()
            session.fail(INVALID_UTF8, "invalid UTF-8 in a text message")
            return
        if not self.factory.framed:
            self._deliver(session, [payload])
            return
        try:
            messages = decodeWebSocketPayload(text)
        except BrokenFraming as e:
            # The protocol suite wants the connection terminated abruptly: no close
            # frame of either kind, the TCP connection closed (after what the earlier
            # messages of this read made the protocol write).
            session.flush()
            self._session = None
            self.dropConnection(abort=False)
            session.fail(BROKEN_FRAMING, f"broken framing: {e}")
            return
        self._deliver(session, messages)

    def _deliver(self, session: Session, messages: list[bytes]) -> None:
        waiting = session.messagesReceived(messages)
        if waiting is not None and not self._readingPaused:
            # The protocol paused its transport: stop reading the socket until it
            # resumes.  Messages already read wait in the session, in order.
            self._readingPaused = True
            transport: Any = self.transport
            transport.pauseProducing()
            waiting.addCallback(self._resumeReading)

    def _resumeReading(self, ignored: object) -> None:
        self._readingPaused = False
        transport: Any = self.transport
        if transport is not None and not transport.disconnecting:
            transport.resumeProducing()

    def sendCloseFrame(
        self, code: Optional[int] = None, reasonUtf8: Optional[bytes] = None, isReply: bool = False
    ) -> None:
        # Every close frame, ours or Autobahn's (a reply to the client's close, a protocol
        # error), leaves after what the messages read before it made the protocol write:
        # the batch of this read is flushed only once the read is handled.
        session = self._session
        if session is not None and self.state == self.STATE_OPEN:
            session.flush()
        super().sendCloseFrame(code, reasonUtf8, isReply)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.registry.observer.websocketClosed(self.localCloseCode)
        session = self._session
        if session is not None:
            self._session = None
            session.detach(self, aborted=not wasClean)

    # IPushProducer, driven by the TCP connection

    def pauseProducing(self) -> None:
        self.sinkPaused = True

    def resumeProducing(self) -> None:
        self.sinkPaused = False
        session = self._session
        if session is not None:
            session.resumeProducing()

    def stopProducing(self) -> None:
        self.sinkPaused = True

    # ISessionSink

    def bindSession(self, session: Session) -> None:
        self._session = session

    def writeFrame(self, frame: str) -> None:
        if self.factory.framed and self.state == self.STATE_OPEN:
            self._sendText(frame.encode("utf-8"))

    def writeMessages(self, quoted: list[str]) -> None:
        if self.state != self.STATE_OPEN:
            return
        if self.factory.framed:
            self._sendText(messageFrame(quoted).encode("utf-8"))
        else:
            for message in quoted:
                self._sendText(message.encode("utf-8"))

    def _sendText(self, payload: bytes) -> None:
        # Not held to the limit meant for what clients send.
        self.sendWholeMessage(payload)

    def finishSink(self, code: int, reason: str) -> None:
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(_wireCode(code), _wireReason(reason))
            # Autobahn's own handshake timers run on the global reactor; ours runs on the
            # endpoint's, so that a client that never answers the close is dropped.
            self._closeTimer = self.factory.clock.callLater(
                CLOSE_HANDSHAKE_TIMEOUT, self._closeTimedOut
            )

    def _closeTimedOut(self) -> None:
        self._closeTimer = None
        if self.state != self.STATE_CLOSED:
            self.dropConnection(abort=True)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        timer = self._closeTimer
        if timer is not None:
            self._closeTimer = None
            if timer.active():
                timer.cancel()
        super().connectionLost(reason)


class SockJSWebSocketFactory(LeanProtocolFactory, WebSocketServerFactory):  # type: ignore[misc]
    """
    Builds the websocket protocols of one endpoint, framed or raw.
    """

    protocol = SockJSWebSocketProtocol  # type: ignore[assignment]
    pendingRequest: Optional[IRequest] = None

    def __init__(self, registry: SessionRegistry, framed: bool, reactor: IReactorTime) -> None:
        super().__init__(reactor=reactor)
        self.registry = registry
        self.clock = reactor
        self.framed = framed
        self.server = "SockJS-Twisted"
        options = registry.options
        self.setProtocolOptions(
            autoPingInterval=0,
            maxMessagePayloadSize=options.max_message_size,
            maxFramePayloadSize=options.max_message_size,
            # The upgrade request is complete when Autobahn sees it: no open handshake
            # to time out.  The close handshake is timed by finishSink, on our clock.
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,
            tcpNoDelay=True,
            utf8validateIncoming=False,
            # Protocol errors (1002, 1007, 1009) are told to the client in a close frame.
            failByDrop=False,
            # The origin policy is the gate's (allowed_origins), not Autobahn's.
            allowNullOrigin=True,
        )


class WebSocketGate(Resource):
    """
    Answers non-upgrade requests to a websocket URL the way SockJS wants, then hands
    real upgrades to Autobahn.
    """

    isLeaf = True

    def __init__(self, registry: SessionRegistry, framed: bool, reactor: IReactorTime) -> None:
        super().__init__()
        self.options = registry.options
        self.registry = registry
        self._factory = SockJSWebSocketFactory(registry, framed, reactor)
        self._upgrade = WebSocketResource(self._factory)

    def renderSession(self, request: IRequest, sessionId: str) -> Any:
        return self.render(request)

    def render(self, request: IRequest) -> Any:
        if not self.options.websocket:
            return notFound(request)
        if request.method != b"GET":
            return notAllowed(request, b"GET")
        if (request.getHeader(b"upgrade") or b"").lower() != b"websocket":
            return text(request, 400, 'Can "Upgrade" only to "WebSocket".')
        connection = request.getHeader(b"connection") or b""
        if b"upgrade" not in [t.strip().lower() for t in connection.split(b",")]:
            return text(request, 400, '"Connection" must be "Upgrade".')
        if not originAllowed(request.getHeader(b"origin"), self.options):
            self.registry.observer.refused("origin")
            return text(request, 403, "Origin not allowed.")
        channel = request.channel  # type: ignore[attr-defined]
        # What the client sent right behind its handshake, in the same read (its first
        # frames), is still in twisted.web's buffer.  Autobahn reads the request body
        # behind the handshake it rebuilds: put the frames there, and Autobahn reads them
        # once the connection (and the session) is open.
        early = channel.clearLineBuffer()
        if early:
            content = request.content
            content.seek(0, 2)
            content.write(early)
            content.seek(0)
        # The handshake is answered from this request as twisted.web parsed it.
        self._factory.pendingRequest = request
        try:
            if upgradeFromRequest(self._factory, request):
                result: Any = NOT_DONE_YET
            else:
                result = self._upgrade.render(request)
        finally:
            self._factory.pendingRequest = None
        # The connection is Autobahn's now: twisted.web must not time it out.
        channel.setTimeout(None)
        return result
