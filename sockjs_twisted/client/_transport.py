"""
The transport of a protocol that the client connected: one SockJS session, seen from the
client, over whichever link (a websocket, or HTTP requests) carries it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectError, ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IProducer,
    IProtocol,
    IPushProducer,
    ITransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from ._frames import (
    Close,
    FrameError,
    Heartbeat,
    Messages,
    Open,
    decodeFrame,
    decodeMessage,
    encodeMessage,
    encodeMessages,
)

__all__ = ["CONNECTING", "OPEN", "CLOSING", "CLOSED", "SockJSClientTransport"]

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3


def isUserCode(code: int) -> bool:
    """
    Is C{code} a close code that an application chose (1000, or 3000-4999), as
    sockjs-client tells them apart from the codes of a transport that failed?
    """
    return code == 1000 or 3000 <= code <= 4999


class SessionRefused(ConnectError):
    """
    The server answered the new session with a close frame instead of the open frame.

    :ivar code: The close frame's code.
    :ivar reason: The close frame's reason.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(string=f"SockJS session refused: {code} {reason}")
        self.code = code
        self.reason = reason


class NoProtocol(ConnectError):
    """
    The factory built no protocol for the session (its C{buildProtocol} returned
    C{None}, or raised).
    """


class ILink(Interface):
    """
    What carries one session's frames: a websocket, or HTTP requests.  Private.
    """

    def start() -> None:
        """
        Open the connection(s); frames go to the transport's C{_frameReceived}.
        """

    def sendMessages(messages: list[str]) -> None:
        """
        Send messages, in order.
        """

    def loseConnection() -> None:
        """
        The client closes: send what was given, then close.
        """

    def serverClosed() -> None:
        """
        A close frame arrived: finish.
        """

    def abortConnection() -> None:
        """
        Close at once; C{_linkLost} follows.
        """

    def pauseReading() -> None:
        """
        Stop taking frames from the network.
        """

    def resumeReading() -> None:
        """
        Take frames from the network again.
        """


@implementer(ITransport, IConsumer, IPushProducer)
class SockJSClientTransport:
    """
    The transport of a protocol connected by L{sockjs_twisted.client.connectSockJS}: one
    SockJS session seen from the client.

    C{write(bytes)} sends one message; C{dataReceived(bytes)} receives one.  It is an
    L{IConsumer} (a producer registered on it is paused while the link cannot take more)
    and an L{IPushProducer} of incoming messages (while paused, no C{dataReceived}).

    :ivar url: The session's URL (C{<base>/<server>/<session>}).
    :ivar sessionId: The session's id.
    :ivar transportName: C{"websocket"}, C{"xhr-streaming"} or C{"xhr-polling"}.
    :ivar info: The endpoint's C{/info} answer, or C{None} if it was not asked.
    :ivar readyState: 0 connecting, 1 open, 2 closing, 3 closed.
    :ivar closeCode: The code of the server's close frame, once it arrived.
    :ivar closeReason: The reason of the server's close frame, once it arrived.
    :ivar heartbeats: How many heartbeat frames arrived.
    :ivar connected: Is the session open?
    :ivar disconnecting: Is the session closing or closed?
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        url: str,
        sessionId: str,
        transportName: str,
        peer: IAddress,
        buildProtocol: Callable[[IAddress], Optional[IProtocol]],
    ) -> None:
        """
        :param reactor: Provides C{callLater}, for the one flush of writes per turn.
        :param url: The session's URL.
        :param sessionId: The session's id.
        :param transportName: The SockJS transport used.
        :param peer: The server's address.
        :param buildProtocol: Called with C{peer} once the session is open; returns the
            protocol to connect, or C{None} to close the session.
        """
        self._reactor = reactor
        self._buildProtocol = buildProtocol
        self.protocol: Optional[IProtocol] = None
        self.url = url
        self.sessionId = sessionId
        self.transportName = transportName
        self.info: Optional[dict[str, Any]] = None
        self._peer = peer
        self.readyState = CONNECTING
        self.closeCode: Optional[int] = None
        self.closeReason: Optional[str] = None
        self.heartbeats = 0
        self.connected = False
        self.disconnecting = False
        self._link: Any = None
        self._connecting: Optional[Deferred[IProtocol]] = None
        self._error: Optional[BaseException] = None
        self._outgoing: list[str] = []
        self._flushCall: Optional[IDelayedCall] = None
        # Incoming flow control.
        self._readPaused = False
        self._pending: deque[str] = deque()
        self._lostWhilePaused: Optional[Failure] = None
        # Outgoing flow control.
        self._producer: Optional[IProducer] = None
        self._streaming = False
        self._sendBlocked = False
        self._pullCall: Optional[IDelayedCall] = None
        self._onLost: Optional[Callable[[], None]] = None

    def __repr__(self) -> str:
        return f"<SockJSClientTransport {self.transportName} {self.url}>"

    # -- ITransport --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send one message.  Messages written in one reactor turn travel together.

        :param data: UTF-8 text (lone surrogates, as C{surrogatepass} encodes them, too).
        :raise TypeError: C{data} is not bytes.
        :raise ValueError: C{data} is not UTF-8.
        """
        text = decodeMessage(data)
        if self.readyState != OPEN or self.disconnecting:
            return
        self._outgoing.append(text)
        if self._flushCall is None:
            self._flushCall = self._reactor.callLater(0, self._flush)

    def writeSequence(self, data: list[bytes]) -> None:  # type: ignore[override]
        """
        Send the concatenation of C{data} as one message.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close the session from the client side, after the messages already written: the
        websocket is closed, or the receiving request is dropped.  The protocol's
        C{connectionLost} follows with L{ConnectionDone}.

        SockJS has no close message over HTTP: the server's protocol learns of the close
        when the receiving request is dropped, or, if none was under way, once the
        session's C{disconnect_delay} has passed.
        """
        if self.readyState != OPEN or self.disconnecting:
            return
        self.disconnecting = True
        self.readyState = CLOSING
        self._flush()
        self._link.loseConnection()

    def abortConnection(self) -> None:
        """
        Close the session now, dropping the messages not sent yet; the protocol's
        C{connectionLost} gets L{ConnectionAborted}.
        """
        if self.readyState > CLOSING or self._error is not None:
            return
        self.disconnecting = True
        self._error = ConnectionAborted()
        self._stop()
        self._link.abortConnection()

    def getPeer(self) -> IAddress:
        """
        The server's address, from the URL.
        """
        return self._peer

    def getHost(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        C{None}: a SockJS session over HTTP uses many connections, none of which is its
        own.
        """
        return None

    # -- IConsumer: the outgoing side ----------------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Register a producer of messages: a streaming one is paused while the link cannot
        take more, a pull one is asked for more once what it wrote was sent.

        :raise RuntimeError: A producer is registered already.
        """
        if self._producer is not None:
            raise RuntimeError(f"a producer is registered already: {self._producer!r}")
        if self.readyState > OPEN:
            producer.stopProducing()
            return
        self._producer = producer
        self._streaming = bool(streaming)
        if streaming:
            if self._sendBlocked:
                producer.pauseProducing()  # type: ignore[attr-defined]
        else:
            self._schedulePull()

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        self._producer = None
        call, self._pullCall = self._pullCall, None
        if call is not None and call.active():
            call.cancel()

    # -- IPushProducer: the incoming side ----------------------------------------------

    def pauseProducing(self) -> None:
        """
        Stop delivering messages to the protocol, and stop reading from the network.
        """
        if self._readPaused or self.readyState == CLOSED:
            return
        self._readPaused = True
        self._link.pauseReading()

    def resumeProducing(self) -> None:
        """
        Deliver the messages that waited, in order, and read from the network again.
        """
        if not self._readPaused:
            return
        self._readPaused = False
        while self._pending and not self._readPaused and self.readyState <= CLOSING:
            self._handleFrame(self._pending.popleft())
        if self._readPaused:
            return
        lost, self._lostWhilePaused = self._lostWhilePaused, None
        if lost is not None:
            self._linkLost(lost)
        elif self.readyState <= CLOSING:
            self._link.resumeReading()

    def stopProducing(self) -> None:
        """
        Drop the session, as L{abortConnection}.
        """
        self.abortConnection()

    # -- from the connector ------------------------------------------------------------

    def _start(self, link: Any) -> Deferred[IProtocol]:
        self._link = link
        self._connecting = Deferred(self._cancelConnect)
        connecting = self._connecting
        link.start()
        return connecting

    def _cancelConnect(self, d: Deferred[IProtocol]) -> None:
        self._connecting = None
        self._error = CancelledError()
        self._stop()
        self._link.abortConnection()

    # -- from the links ------------------------------------------------------------------

    def _frameReceived(self, frame: str) -> None:
        """
        One SockJS frame from the server.
        """
        if self.readyState == CLOSED or self._error is not None:
            return
        if self._readPaused or self._pending:
            self._pending.append(frame)
            return
        self._handleFrame(frame)

    def _handleFrame(self, text: str) -> None:
        try:
            frame = decodeFrame(text)
        except FrameError as e:
            self._protocolError(str(e))
            return
        if isinstance(frame, Heartbeat):
            self.heartbeats += 1
        elif self.closeCode is not None or self._error is not None:
            return
        elif isinstance(frame, Open):
            if self.readyState != CONNECTING:
                self._protocolError("a second open frame")
                return
            self._opened()
        elif isinstance(frame, Messages):
            if self.readyState == CONNECTING:
                self._protocolError("a message frame before the open frame")
                return
            self._deliver(frame.messages)
        elif isinstance(frame, Close):
            self.closeCode, self.closeReason = frame.code, frame.reason
            self._stop()
            self._link.serverClosed()

    def _protocolError(self, why: str) -> None:
        """
        The server broke the SockJS protocol: drop the session.
        """
        if self.readyState == CLOSED or self._error is not None:
            return
        self._error = ConnectionLost(f"SockJS protocol error: {why}")
        self._stop()
        self._link.abortConnection()

    def _sendBlockedChanged(self, blocked: bool) -> None:
        """
        The link can (not) take more messages now.
        """
        if blocked == self._sendBlocked:
            return
        self._sendBlocked = blocked
        producer = self._producer
        if producer is None:
            return
        if self._streaming:
            if blocked:
                producer.pauseProducing()  # type: ignore[attr-defined]
            else:
                producer.resumeProducing()  # type: ignore[attr-defined]
        elif not blocked:
            self._schedulePull()

    def _linkLost(self, reason: Failure) -> None:
        """
        The connections below are all gone; C{reason} says why.
        """
        if self.readyState == CLOSED:
            return
        if self._pending and self._error is None:
            # The protocol paused us: it learns of the end after what came before it.
            self._lostWhilePaused = reason
            return
        wasConnected = self.connected
        self._stop()
        self.readyState = CLOSED
        self.connected = False
        self.disconnecting = True
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()
        if not wasConnected:
            connecting, self._connecting = self._connecting, None
            if connecting is not None and not connecting.called:
                connecting.errback(self._connectFailure(reason))
            return
        if self._error is not None:
            reason = Failure(self._error)
        elif self.closeCode is not None:
            reason = Failure(ConnectionDone())
        elif not reason.check(ConnectionDone, ConnectionLost):
            reason = Failure(ConnectionLost(reason.getErrorMessage()))
        protocol, self.protocol = self.protocol, None
        try:
            protocol.connectionLost(reason)  # type: ignore[union-attr]
        except BaseException:
            self.log.failure("The protocol's connectionLost raised")
        onLost, self._onLost = self._onLost, None
        if onLost is not None:
            onLost()

    # -- internals ---------------------------------------------------------------------

    def _stop(self) -> None:
        """
        No more writes, no more deliveries.
        """
        if self.readyState < CLOSING:
            self.readyState = CLOSING
        self.disconnecting = True
        self._outgoing = []
        self._pending.clear()
        self._cancelFlush()
        call, self._pullCall = self._pullCall, None
        if call is not None and call.active():
            call.cancel()

    def _connectFailure(self, reason: Failure) -> Failure:
        if self.closeCode is not None:
            return Failure(SessionRefused(self.closeCode, self.closeReason or ""))
        if isinstance(self._error, (CancelledError, NoProtocol)):
            return Failure(self._error)
        if self._error is not None:
            return Failure(ConnectError(string=str(self._error)))
        if reason.check(ConnectError, CancelledError):
            return reason
        return Failure(ConnectError(string=reason.getErrorMessage()))

    def _opened(self) -> None:
        self.readyState = OPEN
        self.connected = True
        try:
            protocol = self._buildProtocol(self._peer)
        except BaseException:
            self.log.failure("The factory's buildProtocol raised")
            protocol = None
        if protocol is None:
            self._error = NoProtocol(string="the factory built no protocol")
            self.connected = False
            self._stop()
            self._link.abortConnection()
            return
        self.protocol = protocol
        try:
            protocol.makeConnection(self)
        except BaseException:
            self.log.failure("The protocol's makeConnection raised")
            self.loseConnection()
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.callback(protocol)

    def _deliver(self, messages: tuple[str, ...]) -> None:
        protocol = self.protocol
        for index, message in enumerate(messages):
            if self.readyState != OPEN or protocol is None:
                return
            if self._readPaused:
                # Keep the rest, in order, as a frame of its own.
                rest = list(messages[index:])
                self._pending.appendleft("a" + encodeMessages(rest).decode("ascii"))
                return
            try:
                protocol.dataReceived(encodeMessage(message))
            except BaseException:
                self.log.failure("The protocol's dataReceived raised")
                self.loseConnection()

    def _flush(self) -> None:
        self._cancelFlush()
        if self._outgoing:
            messages, self._outgoing = self._outgoing, []
            self._link.sendMessages(messages)
        if self._producer is not None and not self._streaming and not self._sendBlocked:
            self._schedulePull()

    def _cancelFlush(self) -> None:
        call, self._flushCall = self._flushCall, None
        if call is not None and call.active():
            call.cancel()

    def _schedulePull(self) -> None:
        if self._pullCall is None or not self._pullCall.active():
            self._pullCall = self._reactor.callLater(0, self._pull)

    def _pull(self) -> None:
        self._pullCall = None
        producer = self._producer
        if producer is not None and not self._streaming and self.readyState == OPEN:
            producer.resumeProducing()  # type: ignore[attr-defined]
