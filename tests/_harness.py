"""
In-memory clients for testing SockJS resources without sockets: a real twisted.web Site on
a L{MemoryReactorClock}, and real clients talking to it over L{twisted.test.iosim}
connections.  Time moves only when a test advances the clock.

No HTTP or websocket is parsed here: requests go through L{twisted.web.client.Agent}
(answers are L{IResponse}s), websockets through Autobahn's client, SockJS frames through
L{sockjs_twisted.client.decodeFrame}.  Requests that no well-behaved client sends (HTTP/1.0,
a byte at a time, raw bytes) go over a raw connection whose answers the standard library's
L{http.client.HTTPResponse} parses.
"""

from __future__ import annotations

import http.client
import io
from typing import Any, Optional

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IConsumer, IProtocol, IProtocolFactory, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.web.client import URI, Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IBodyProducer, IResponse
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from sockjs_twisted import SockJSResource
from sockjs_twisted._factory import SockJSSite
from sockjs_twisted.client import Close, Heartbeat, Messages, Open, decodeFrame

SERVER = IPv4Address("TCP", "127.0.0.1", 8081)
ORIGIN = "http://127.0.0.1:8081"


# -- the network ---------------------------------------------------------------------------


@implementer(IPushProducer)
class ServerTransport(iosim.FakeTransport):  # type: ignore[misc]
    """
    The server's side of a L{Link}: a TCP transport as twisted.web sees one (a push
    producer, so that the channel registers itself on it), whose unsent bytes a test may
    read and drop (L{value}, L{clear}) as on a L{StringTransport}.
    """

    producerState = "producing"

    def pauseProducing(self) -> None:
        """
        The server stops reading (recorded in C{producerState}, as on a
        L{StringTransport}; the network does not hold bytes back).
        """
        self.producerState = "paused"

    def resumeProducing(self) -> None:
        self.producerState = "producing"

    def stopProducing(self) -> None:
        self.producerState = "stopped"
        super().stopProducing()

    def value(self) -> bytes:
        """
        What the server wrote and the network has not delivered yet.
        """
        return b"".join(self.stream)

    def clear(self) -> None:
        """
        Drop what the server wrote and the network has not delivered yet.
        """
        self.stream = []


class Link:
    """
    One in-memory TCP connection between a client protocol and the site.
    """

    def __init__(self, site: Site, client: IProtocol, port: int) -> None:
        peer = IPv4Address("TCP", "127.0.0.1", port)
        self.client = client
        self.server = site.buildProtocol(peer)
        self.clientTransport = iosim.FakeTransport(
            client, isServer=False, hostAddress=peer, peerAddress=SERVER
        )
        self.serverTransport = ServerTransport(
            self.server, isServer=True, hostAddress=SERVER, peerAddress=peer
        )
        self.pump = iosim.connect(
            self.server, self.serverTransport, client, self.clientTransport, greet=False
        )

    @property
    def closed(self) -> bool:
        """
        Has each side been told the connection is gone?
        """
        return bool(self.clientTransport.disconnected and self.serverTransport.disconnected)

    def abort(self, reason: str = "client went away") -> None:
        """
        The client's side drops the connection: the server sees L{ConnectionLost}.
        """
        self.serverTransport.disconnectReason = ConnectionLost(reason)
        self.clientTransport.disconnectReason = ConnectionLost(reason)
        self.clientTransport.loseConnection()


@implementer(IAgentEndpointFactory)
class MemoryNetwork:
    """
    Connections to C{site}, in memory: an L{IAgentEndpointFactory} for
    L{Agent.usingEndpointFactory}, and for L{sockjs_twisted.client.connectSockJS}'s
    websockets.  L{flush} moves the bytes.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self.links: list[Link] = []
        self._port = 40000

    def connect(self, client: IProtocol) -> Link:
        """
        Connect C{client} to the site.
        """
        self._port += 1
        link = Link(self.site, client, self._port)
        self.links.append(link)
        return link

    def endpointForURI(self, uri: URI) -> _MemoryEndpoint:
        return _MemoryEndpoint(self, None)

    def flush(self) -> None:
        """
        Deliver every byte written, and every disconnection, until nothing moves.
        """
        moved = True
        while moved:
            moved = False
            for link in list(self.links):
                while link.pump.pump():
                    moved = True
            self.links = [link for link in self.links if not link.closed]


class LoopbackLink:
    """
    One real TCP connection over 127.0.0.1 between a client protocol and the site.
    """

    def __init__(self, client: IProtocol) -> None:
        self.client = client
        self.clientTransport: Any = None
        self.clientLost = False
        self.serverTransport: Any = None

    @property
    def closed(self) -> bool:
        return self.clientLost

    def abort(self, reason: str = "client went away") -> None:
        if self.clientTransport is not None:
            self.clientTransport.abortConnection()


def _counting(protocol: Any, network: LoopbackNetwork, link: Optional[LoopbackLink]) -> None:
    """
    Make C{protocol} tell C{network} of each read and of its end (C{link}'s, if given).
    """
    dataReceived, connectionLost, makeConnection = (
        protocol.dataReceived,
        protocol.connectionLost,
        protocol.makeConnection,
    )

    def countedData(data: bytes) -> None:
        network.events += 1
        dataReceived(data)

    def countedLost(reason: Failure) -> None:
        network.events += 1
        if link is not None:
            link.clientLost = True
        connectionLost(reason)

    def countedMade(transport: Any) -> None:
        network.events += 1
        if link is not None:
            link.clientTransport = transport
        makeConnection(transport)

    protocol.dataReceived = countedData
    protocol.connectionLost = countedLost
    protocol.makeConnection = countedMade


class _CountingServer(Factory):
    def __init__(self, site: Site, network: LoopbackNetwork) -> None:
        self._site = site
        self._network = network

    def buildProtocol(self, addr: Any) -> Any:
        protocol = self._site.buildProtocol(addr)
        _counting(protocol, self._network, None)
        return protocol


@implementer(IAgentEndpointFactory)
class LoopbackNetwork:
    """
    The same as L{MemoryNetwork}, over real sockets on 127.0.0.1: the site listens on the
    global reactor (its timers stay on its own clock); L{flush} runs the reactor until
    nothing has moved for a few iterations.
    """

    def __init__(self, site: Site) -> None:
        from twisted.internet import reactor

        self.site = site
        self.reactor: Any = reactor
        self.events = 0
        self.links: list[LoopbackLink] = []
        self.port = reactor.listenTCP(0, _CountingServer(site, self), interface="127.0.0.1")

    def connect(self, client: IProtocol, owner: Optional[Connection] = None) -> LoopbackLink:
        """
        Connect C{client} to the site, and wait until it is connected.
        """
        link = LoopbackLink(client)
        _counting(client, self, link)
        self.links.append(link)
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.port.getHost().port)
        connectProtocol(endpoint, client)
        for _ in range(1000):
            if link.clientTransport is not None:
                break
            self.reactor.iterate(0.005)
        assert link.clientTransport is not None, "no connection"
        return link

    def endpointForURI(self, uri: URI) -> _MemoryEndpoint:
        return _MemoryEndpoint(self, None)

    def flush(self) -> None:
        quiet = 0
        while quiet < 4:
            before = self.events
            self.reactor.iterate(0.005)
            quiet = quiet + 1 if self.events == before else 0

    def close(self) -> None:
        """
        Drop every connection, stop listening.
        """
        for link in self.links:
            if not link.closed:
                link.abort()
        self.flush()
        d = self.port.stopListening()
        for _ in range(1000):
            if d.called:
                break
            self.reactor.iterate(0.005)


class _MemoryEndpoint:
    """
    Connects a client factory's protocol to the site; remembers the link for its owner.
    """

    def __init__(self, network: Any, owner: Optional[Connection]) -> None:
        self._network = network
        self._owner = owner

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        protocol = factory.buildProtocol(SERVER)
        assert protocol is not None
        link = self._network.connect(protocol)
        if self._owner is not None:
            self._owner.links.append(link)
        return succeed(protocol)


@implementer(IAgentEndpointFactory)
class _OwnedEndpoints:
    def __init__(self, network: Any, owner: Connection) -> None:
        self._network = network
        self._owner = owner

    def endpointForURI(self, uri: URI) -> _MemoryEndpoint:
        return _MemoryEndpoint(self._network, self._owner)


# -- HTTP ----------------------------------------------------------------------------------


class Response:
    """
    One HTTP response, as its body arrives.

    :ivar status: The status code.
    :ivar version: C{"1.0"} or C{"1.1"}.
    :ivar headers: Lower-case header names to their last value (str).
    :ivar rawHeaders: Lower-case names to every value.
    :ivar body: The body received so far.
    :ivar chunks: The body, in the pieces it arrived in.
    :ivar complete: Has the body ended?
    """

    def __init__(self, status: int, version: str, rawHeaders: dict[str, list[str]]) -> None:
        self.status = status
        self.version = version
        self.rawHeaders = rawHeaders
        self.headers = {k: v[-1] for k, v in rawHeaders.items()}
        self.body = b""
        self.complete = False
        self.chunks: list[bytes] = []
        self._read = 0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    def read(self) -> bytes:
        """
        The body bytes that arrived since the last read.
        """
        data = self.body[self._read :]
        self._read = len(self.body)
        return data


class _BodyReader(Protocol):
    """
    Feeds an L{IResponse}'s body into a L{Response}.
    """

    def __init__(self, response: Response) -> None:
        self._response = response

    def dataReceived(self, data: bytes) -> None:
        self._response.body += data
        self._response.chunks.append(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if reason.check(ResponseDone, PotentialDataLoss):
            self._response.complete = True


def _fromIResponse(response: IResponse) -> Response:
    raw: dict[str, list[str]] = {}
    for name, values in response.headers.getAllRawHeaders():
        raw.setdefault(name.decode("latin-1").lower(), []).extend(
            v.decode("latin-1") for v in values
        )
    version = "%d.%d" % response.version[1:]
    result = Response(response.code, version, raw)
    response.deliverBody(_BodyReader(result))
    return result


@implementer(IBodyProducer)
class _Body:
    """
    A request body written at once.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class Pending:
    """
    A request whose answer may not have started (a waiting poll).

    :ivar response: The answer, once its head arrived, else C{None}.
    :ivar failure: Why no answer will come, if none will.
    """

    def __init__(self, d: Deferred[IResponse], connection: Connection) -> None:
        self.response: Optional[Response] = None
        self.failure: Optional[Failure] = None
        self.connection = connection
        d.addCallbacks(self._arrived, self._failed)

    def _arrived(self, response: IResponse) -> None:
        self.response = _fromIResponse(response)

    def _failed(self, reason: Failure) -> None:
        self.failure = reason

    def close(self) -> None:
        """
        The client gives up: its connection is dropped.
        """
        self.connection.close()


class _RawClient(Protocol):
    """
    Records the bytes a raw connection receives.
    """

    def __init__(self) -> None:
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data


class _File(io.BytesIO):
    def close(self) -> None:
        pass


class _Socket:
    def __init__(self, f: _File) -> None:
        self._f = f

    def makefile(self, mode: str) -> _File:
        return self._f


def _parseResponses(data: bytes, methods: list[str], closed: bool) -> list[Response]:
    """
    The responses in C{data}, in order, parsed by L{http.client.HTTPResponse}: complete
    ones, then one whose head arrived but whose body did not end (yet).
    """
    f = _File(data)
    out: list[Response] = []
    while f.tell() < len(data):
        start = f.tell()
        method = methods[len(out)] if len(out) < len(methods) else "GET"
        response = http.client.HTTPResponse(_Socket(f), method=method)  # type: ignore[arg-type]
        try:
            response.begin()
        except (http.client.HTTPException, ValueError):
            break
        raw: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            raw.setdefault(name.lower(), []).append(value)
        result = Response(response.status, "1.1" if response.version == 11 else "1.0", raw)
        out.append(result)
        if response.will_close and not response.chunked and response.length is None:
            result.body = response.read()
            result.chunks = [result.body] if result.body else []
            result.complete = closed
            break
        try:
            result.body = response.read()
        except http.client.IncompleteRead as e:
            result.body = e.partial
            break
        result.chunks = [result.body] if result.body else []
        result.complete = True
        if f.tell() == start:
            break
    return out


class Connection:
    """
    One client of the site: an L{Agent} with a connection of its own (kept alive between
    requests), or a raw connection for what an agent never sends.

    :ivar links: The TCP connections it made.
    """

    def __init__(self, client: HTTPClient) -> None:
        self.client = client
        self.links: list[Link] = []
        self._pool = HTTPConnectionPool(client.clock, persistent=True)
        self._pool.maxPersistentPerHost = 1
        self._pool.retryAutomatically = False
        self._agent = Agent.usingEndpointFactory(
            client.clock, _OwnedEndpoints(client.network, self), pool=self._pool
        )
        self._answers: list[Response] = []
        self._raw: Optional[_RawClient] = None
        self._rawMethods: list[str] = []
        self.websocket: Optional[WebSocket] = None

    @property
    def closed(self) -> bool:
        """
        Is every connection it made closed?
        """
        return bool(self.links) and all(link.closed for link in self.links)

    @property
    def transport(self) -> ServerTransport:
        """
        The server's side of its last connection (whose C{protocol} is the server's); a
        raw connection is made if there is none yet.
        """
        if not self.links:
            self._rawLink()
        return self.links[-1].serverTransport

    def _rawLink(self) -> Link:
        if self._raw is None:
            self._raw = _RawClient()
            self.links.append(self.client.network.connect(self._raw))
        return self.links[-1]

    @property
    def received(self) -> bytes:
        """
        Every byte the raw connection received.
        """
        return self._raw.data if self._raw is not None else b""

    @property
    def _responses(self) -> list[Response]:
        if self._raw is not None:
            return _parseResponses(self._raw.data, self._rawMethods, self.closed)
        return self._answers

    def begin(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Optional[dict[str, str]] = None,
    ) -> Pending:
        """
        Send one request; its answer may come later (L{Pending.response}).
        """
        allHeaders = Headers()
        for name, value in (headers or {}).items():
            allHeaders.addRawHeader(name, value)
        producer = _Body(body) if body or method in ("POST", "PUT") else None
        d = self._agent.request(
            method.encode("ascii"), (ORIGIN + path).encode("ascii"), allHeaders, producer
        )
        pending = Pending(d, self)
        self.client.network.flush()
        return pending

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Optional[dict[str, str]] = None,
        version: str = "1.1",
        chunkSize: Optional[int] = None,
        raw: bool = False,
    ) -> Response:
        """
        Send one request; return its response (maybe still incomplete).  HTTP/1.0, a
        request sent C{chunkSize} bytes at a time, one with a Content-Length of its own,
        or one whose wire format matters (C{raw}) goes over a raw connection, as every
        later request of this client does.
        """
        headers = dict(headers or {})
        raw = raw or version != "1.1" or chunkSize is not None or "Content-Length" in headers
        if raw or self._raw is not None:
            lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1:8081"]
            if body or method in ("POST", "PUT"):
                headers.setdefault("Content-Length", str(len(body)))
            lines += [f"{k}: {v}" for k, v in headers.items()]
            before = len(self._responses)
            self._rawMethods.append(method)
            self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, chunkSize)
            responses = self._responses
            assert len(responses) > before, f"no response to {method} {path}"
            return responses[before]
        pending = self.begin(method, path, body, headers)
        assert pending.response is not None, f"no response to {method} {path}"
        self._answers.append(pending.response)
        return pending.response

    def send(self, data: bytes, chunkSize: Optional[int] = None) -> None:
        """
        Send raw bytes on a raw connection, in chunks of C{chunkSize} if given (down to
        one byte), each delivered on its own.
        """
        link = self._rawLink()
        step = chunkSize or len(data) or 1
        for i in range(0, len(data), step):
            link.clientTransport.write(data[i : i + step])
            self.client.network.flush()
        self.client.network.flush()

    def close(self, reason: Optional[Failure] = None) -> None:
        """
        The client goes away: each of its connections is dropped.
        """
        for link in self.links:
            if not link.closed:
                link.abort(reason.getErrorMessage() if reason else "client went away")
        self._pool.closeCachedConnections()
        self.client.network.flush()

    def pump(self) -> None:
        """
        Deliver what was written.
        """
        self.client.network.flush()


class HTTPClient:
    """
    A site around C{root} on a fake reactor, and clients of it.
    """

    def __init__(
        self,
        root: Optional[Resource] = None,
        clock: Optional[MemoryReactorClock] = None,
        site: Optional[Site] = None,
        loopback: bool = False,
    ) -> None:
        """
        :param loopback: Real sockets on 127.0.0.1 instead of memory (L{close} them).
        """
        self.clock = clock or MemoryReactorClock()
        if site is None:
            assert root is not None
            site = SockJSSite(root, reactor=self.clock)
        self.site = site
        self.site.startFactory()
        self.network: Any = LoopbackNetwork(site) if loopback else MemoryNetwork(site)
        self.connections: list[Connection] = []

    def close(self) -> None:
        """
        Drop every connection (and stop listening, over real sockets).
        """
        close = getattr(self.network, "close", None)
        if close is not None:
            close()

    def connect(self) -> Connection:
        """
        A new client, with connections of its own.
        """
        connection = Connection(self)
        self.connections.append(connection)
        return connection

    def request(self, method: str, path: str, body: bytes = b"", **kw: Any) -> Response:
        """
        One request from a new client.
        """
        return self.connect().request(method, path, body, **kw)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: bytes = b"", **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def advance(self, seconds: float = 0) -> None:
        """
        Move time on (C{0}: run what is due this turn), then deliver what was written.
        """
        self.clock.advance(seconds)
        self.pumpAll()

    def pumpAll(self) -> None:
        self.network.flush()

    def websocket(
        self,
        path: str,
        headers: Optional[dict[str, str]] = None,
        early: bytes = b"",
        chunkSize: Optional[int] = None,
    ) -> WebSocket:
        """
        Open a websocket to C{path} (Autobahn's client).

        :param early: Raw bytes (websocket frames) sent right behind the handshake, in
            the same write.
        :param chunkSize: Deliver the handshake (and C{early}) this many bytes at a time.
        """
        return WebSocket(self.connect(), path, headers, early, chunkSize)


def sockjsClient(
    factory: Any, prefix: str = "/echo", **options: Any
) -> tuple[HTTPClient, SockJSResource]:
    """
    An L{HTTPClient} for one L{SockJSResource} serving C{factory} at C{prefix}.
    """
    clock = MemoryReactorClock()
    root = Resource()
    resource = SockJSResource(factory, reactor=clock, prefix=prefix, **options)
    root.putChild(prefix.strip("/").encode("ascii"), resource)
    return HTTPClient(root, clock), resource


# -- websockets ----------------------------------------------------------------------------


class _WebSocketProtocol(WebSocketClientProtocol):  # type: ignore[misc]
    """
    Autobahn's client, recording for a L{WebSocket}.  A close frame from the server is
    recorded, not answered: the test answers it (L{WebSocket.sendClose}), or does not.
    """

    factory: _WebSocketFactory

    def sendData(self, data: bytes, sync: bool = False, chopsize: Optional[int] = None) -> None:
        owner = self.factory.owner
        if owner.handshake is None:
            # The opening handshake: the WebSocket sends it, with what goes behind it.
            owner.handshake = data
        else:
            super().sendData(data, sync, chopsize)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.owner.messages.append(payload.decode("utf-8"))

    def onCloseFrame(self, code: Optional[int], reasonRaw: Optional[bytes]) -> Any:
        owner = self.factory.owner
        owner.closeCode = code if code is not None else 1005
        owner.closeReason = reasonRaw.decode("utf-8") if reasonRaw else ""
        if self.state == self.STATE_OPEN:
            return None
        return super().onCloseFrame(code, reasonRaw)


class _WebSocketFactory(WebSocketClientFactory):  # type: ignore[misc]
    protocol = _WebSocketProtocol  # type: ignore[assignment]

    def __init__(self, owner: WebSocket, url: str, clock: Any, headers: dict[str, str]) -> None:
        headers = dict(headers)
        # Autobahn sends a User-Agent of its own: the test's takes its place.
        useragent = headers.pop("User-Agent", None)
        super().__init__(url, reactor=clock, headers=headers or None, useragent=useragent)
        self.owner = owner
        self.setProtocolOptions(
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,
            serverConnectionDropTimeout=0,
            autoPingInterval=0,
        )


class WebSocket:
    """
    A websocket client (Autobahn's) over one in-memory connection.

    :ivar response: The answer to the upgrade: C{status} and C{headers} (C{None} status
        if none came).
    :ivar messages: Text messages received and not yet taken by L{receive}.
    :ivar closeCode: The code of the server's close frame (1005 if it had none).
    :ivar closeReason: Its reason.
    """

    def __init__(
        self,
        connection: Connection,
        path: str,
        headers: Optional[dict[str, str]] = None,
        early: bytes = b"",
        chunkSize: Optional[int] = None,
    ) -> None:
        self.connection = connection
        connection.websocket = self
        self.messages: list[str] = []
        self.closeCode: Optional[int] = None
        self.closeReason: Optional[str] = None
        self.handshake: Optional[bytes] = None
        factory = _WebSocketFactory(
            self, "ws://127.0.0.1:8081" + path, connection.client.clock, dict(headers or {})
        )
        protocol = factory.buildProtocol(SERVER)
        link = connection.client.network.connect(protocol)
        connection.links.append(link)
        self.protocol: _WebSocketProtocol = protocol
        assert self.handshake is not None
        data = self.handshake + early
        step = chunkSize or len(data)
        for i in range(0, len(data), step):
            link.clientTransport.write(data[i : i + step])
            connection.client.network.flush()
        statusLine = getattr(protocol, "http_status_line", None)
        status = int(statusLine.split()[1]) if statusLine else None
        rawHeaders = {k: [v] for k, v in (getattr(protocol, "http_headers", None) or {}).items()}
        self.response = Response(status, "1.1", rawHeaders)  # type: ignore[arg-type]
        self.response.complete = True

    @property
    def open(self) -> bool:
        return self.response.status == 101

    @property
    def key(self) -> str:
        """
        The Sec-WebSocket-Key the client sent.
        """
        return self.protocol.websocket_key.decode("ascii")  # type: ignore[no-any-return]

    def sendText(self, text: str) -> None:
        self.protocol.sendMessage(text.encode("utf-8"), isBinary=False)
        self.pump()

    def sendRaw(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        """
        Send one frame as given, even one that breaks the rules.
        """
        self.protocol.sendFrame(opcode, payload=payload, fin=fin)
        self.pump()

    def sendClose(self, code: int = 1000, reason: str = "") -> None:
        """
        Send a close frame with C{code} and C{reason}, any code (Autobahn's own
        C{sendClose} takes only 1000 and 3000-4999).
        """
        self.protocol.sendCloseFrame(code, reason.encode("utf-8") or None)
        self.pump()

    def pump(self) -> None:
        self.connection.client.network.flush()

    def receive(self) -> list[str]:
        """
        The text messages received since the last call.
        """
        self.pump()
        messages, self.messages = self.messages, []
        return messages

    def frames(self) -> list[Any]:
        """
        The SockJS frames received since the last call, decoded: C{"o"}, C{"h"}, a list
        of messages for C{a[...]}, a C{(code, reason)} tuple for C{c[...]}.
        """
        out: list[Any] = []
        for message in self.receive():
            frame = decodeFrame(message)
            if isinstance(frame, Open):
                out.append("o")
            elif isinstance(frame, Heartbeat):
                out.append("h")
            elif isinstance(frame, Messages):
                out.append(list(frame.messages))
            elif isinstance(frame, Close):
                out.append((frame.code, frame.reason))
        return out


__all__ = [
    "Connection",
    "HTTPClient",
    "Link",
    "MemoryNetwork",
    "Pending",
    "Response",
    "WebSocket",
    "sockjsClient",
]
