"""
A session carried by one websocket (Autobahn's client): SockJS frames in, JSON arrays of
messages out.
"""

from __future__ import annotations

from typing import Any, Optional

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer, IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer

from ._frames import encodeMessages
from ._transport import ILink, SockJSClientTransport

__all__ = ["WebSocketLink"]


class _WebSocketClientProtocol(WebSocketClientProtocol):  # type: ignore[misc]
    """
    The websocket under one session: hands text messages (SockJS frames) to the link.
    """

    factory: _WebSocketClientFactory

    def onOpen(self) -> None:
        self.factory.link.opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        transport = self.factory.link.transport
        if isBinary:
            transport._protocolError("a binary websocket message")
        else:
            transport._frameReceived(payload.decode("utf-8", "surrogatepass"))

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.link.closed(wasClean, code, reason)


class _WebSocketClientFactory(WebSocketClientFactory):  # type: ignore[misc]
    """
    Builds the websocket of one session.
    """

    protocol = _WebSocketClientProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self, link: WebSocketLink, url: str, reactor: Any, headers: dict[str, str]
    ) -> None:
        super().__init__(url, reactor=reactor, headers=headers or None)
        self.link = link
        # No timers of Autobahn's own, and no auto-ping: SockJS has heartbeats.
        self.setProtocolOptions(
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,
            serverConnectionDropTimeout=0,
            autoPingInterval=0,
        )


@implementer(IPushProducer)
class _SendFlow:
    """
    Registered on the websocket's TCP transport: tells the session when the connection
    cannot take more.
    """

    def __init__(self, transport: SockJSClientTransport) -> None:
        self._transport = transport

    def pauseProducing(self) -> None:
        self._transport._sendBlockedChanged(True)

    def resumeProducing(self) -> None:
        self._transport._sendBlockedChanged(False)

    def stopProducing(self) -> None:
        pass


@implementer(ILink)
class WebSocketLink:
    """
    A session carried by one websocket.
    """

    def __init__(
        self,
        transport: SockJSClientTransport,
        reactor: Any,
        url: str,
        endpoint: IStreamClientEndpoint,
        headers: dict[str, str],
    ) -> None:
        """
        :param transport: The session.
        :param reactor: Autobahn's reactor.
        :param url: The C{ws://} or C{wss://} URL.
        :param endpoint: Connects to the server (TLS included, for C{wss://}).
        :param headers: Extra request headers (a cookie).
        """
        self.transport = transport
        self._reactor = reactor
        self._url = url
        self._endpoint = endpoint
        self._headers = headers
        self._connecting: Optional[Deferred[Any]] = None
        self._websocket: Optional[_WebSocketClientProtocol] = None
        self._closing = False
        self._readPaused = False

    def start(self) -> None:
        factory = _WebSocketClientFactory(self, self._url, self._reactor, self._headers)
        d = self._endpoint.connect(factory)
        self._connecting = d
        d.addCallbacks(self._connected, self._connectFailed)

    def _connected(self, websocket: _WebSocketClientProtocol) -> None:
        self._connecting = None
        self._websocket = websocket
        if self._readPaused:
            self._tcp().pauseProducing()

    def _connectFailed(self, reason: Failure) -> None:
        self._connecting = None
        self.transport._linkLost(reason)

    def opened(self, websocket: _WebSocketClientProtocol) -> None:
        self._websocket = websocket
        self._tcp().registerProducer(_SendFlow(self.transport), True)
        if self._closing:
            websocket.sendClose(1000)

    def closed(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        if wasClean:
            self.transport._linkLost(Failure(ConnectionDone()))
        else:
            self.transport._linkLost(
                Failure(ConnectionLost(reason or "websocket closed uncleanly"))
            )

    def sendMessages(self, messages: list[str]) -> None:
        websocket = self._websocket
        if websocket is not None and websocket.state == websocket.STATE_OPEN:
            websocket.sendMessage(encodeMessages(messages))

    def loseConnection(self) -> None:
        self._closing = True
        websocket = self._websocket
        if websocket is not None and websocket.state == websocket.STATE_OPEN:
            websocket.sendClose(1000)

    serverClosed = loseConnection

    def abortConnection(self) -> None:
        self._closing = True
        if self._connecting is not None:
            self._connecting.cancel()
        elif self._websocket is not None:
            self._websocket.dropConnection(abort=True)

    def _tcp(self) -> Any:
        """
        The connection under the websocket (a TCP or TLS transport: a consumer and a
        producer).
        """
        return self._websocket.transport if self._websocket is not None else None

    def pauseReading(self) -> None:
        self._readPaused = True
        tcp = self._tcp()
        if tcp is not None:
            tcp.pauseProducing()

    def resumeReading(self) -> None:
        self._readPaused = False
        tcp = self._tcp()
        if tcp is not None:
            tcp.resumeProducing()
