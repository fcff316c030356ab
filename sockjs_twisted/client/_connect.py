"""
Connecting: C{/info} first, then each transport in turn until one opens a session.
"""

from __future__ import annotations

import json
import secrets
import uuid
from http.cookiejar import CookieJar
from typing import Any, Optional, Sequence, Union
from urllib.parse import urlsplit
from urllib.request import Request

from twisted.internet.address import HostnameAddress
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web.client import (
    URI,
    Agent,
    BrowserLikePolicyForHTTPS,
    CookieAgent,
    HTTPConnectionPool,
    readBody,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IAgentEndpointFactory, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from ._http import HTTPLink, statusError
from ._transport import NoProtocol, SessionRefused, SockJSClientTransport, isUserCode
from ._websocket import WebSocketLink

__all__ = ["TRANSPORTS", "SockJSClient", "connectSockJS"]

#: The transports the client speaks, in the order it tries them by default.
TRANSPORTS = ("websocket", "xhr-streaming", "xhr-polling")


def _parseBase(url: str) -> tuple[str, str, int, str]:
    """
    Split an endpoint's URL into scheme, host, port and the URL without a trailing slash.

    :raise ValueError: Not an C{http://} or C{https://} URL without query and fragment.
    """
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or not url.isascii()
    ):
        raise ValueError(f"the URL must be an http:// or https:// URL without query, not {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, url.rstrip("/")


@implementer(IAgent)
class _HeadersAgent:
    """
    Adds fixed headers to every request.
    """

    def __init__(self, agent: IAgent, headers: dict[str, str]) -> None:
        self._agent = agent
        self._headers = headers

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Optional[Headers] = None,
        bodyProducer: Any = None,
    ) -> Deferred[IResponse]:
        headers = headers.copy() if headers is not None else Headers()
        for name, value in self._headers.items():
            if not headers.hasHeader(name):
                headers.setRawHeaders(name, [value])
        return self._agent.request(method, uri, headers, bodyProducer)


class _Connector:
    """
    Everything one connection attempt shares: the URL, the agent, the way to websockets.
    """

    def __init__(
        self,
        reactor: Any,
        url: str,
        agent: Optional[IAgent],
        endpointFactory: Optional[IAgentEndpointFactory],
        tlsPolicy: Optional[IPolicyForHTTPS],
        headers: Optional[dict[str, str]],
    ) -> None:
        self.scheme, self.host, self.port, self.base = _parseBase(url)
        self.reactor = reactor
        self._endpointFactory = endpointFactory
        self._tlsPolicy = tlsPolicy if tlsPolicy is not None else BrowserLikePolicyForHTTPS()
        self._headers = dict(headers or {})
        self.pool: Optional[HTTPConnectionPool] = None
        if agent is None:
            # The session's own connections, all closed before its protocol's
            # connectionLost, so that nothing is left behind.
            self.pool = HTTPConnectionPool(reactor, persistent=True)
            if endpointFactory is not None:
                agent = Agent.usingEndpointFactory(reactor, endpointFactory, pool=self.pool)
            else:
                agent = Agent(reactor, contextFactory=self._tlsPolicy, pool=self.pool)
        if self._headers:
            agent = _HeadersAgent(agent, self._headers)
        self.agent: IAgent = agent
        self.cookies: Optional[CookieJar] = None

    def needCookies(self) -> None:
        """
        Keep the cookies the server sets (C{JSESSIONID}, for sticky sessions) and send
        them back with every request, websockets included.
        """
        if self.cookies is None:
            self.cookies = CookieJar()
            self.agent = CookieAgent(self.agent, self.cookies)

    def info(self) -> Deferred[dict[str, Any]]:
        """
        GET the endpoint's C{/info}.
        """
        url = f"{self.base}/info".encode("ascii")

        def gotResponse(response: IResponse) -> Deferred[dict[str, Any]]:
            return readBody(response).addCallback(parse, response.code)

        def parse(body: bytes, code: int) -> dict[str, Any]:
            if code != 200:
                raise statusError("GET", url, code, body)
            try:
                info = json.loads(body)
            except ValueError:
                info = None
            if type(info) is not dict:
                raise ConnectError(string=f"GET {url.decode('ascii')}: not a JSON object")
            return info

        return self.agent.request(b"GET", url).addCallback(gotResponse)

    def attempt(
        self, transportName: str, buildProtocol: Any, info: Optional[dict[str, Any]]
    ) -> tuple[SockJSClientTransport, Deferred[IProtocol]]:
        """
        Open a new session (random server and session ids) over one transport.
        """
        serverId = "%03d" % secrets.randbelow(1000)
        sessionId = uuid.uuid4().hex
        url = f"{self.base}/{serverId}/{sessionId}"
        peer = HostnameAddress(self.host.encode("ascii"), self.port)
        transport = SockJSClientTransport(
            self.reactor, url, sessionId, transportName, peer, buildProtocol
        )
        transport.info = info
        link: Union[WebSocketLink, HTTPLink]
        if transportName == "websocket":
            wsURL = ("wss" if self.scheme == "https" else "ws") + url[len(self.scheme) :]
            headers = dict(self._headers)
            if self.cookies is not None:
                request = Request(url + "/websocket")
                self.cookies.add_cookie_header(request)
                cookie = request.get_header("Cookie")
                if cookie:
                    headers["Cookie"] = cookie
            link = WebSocketLink(
                transport,
                self.reactor,
                wsURL + "/websocket",
                self._websocketEndpoint(url + "/websocket"),
                headers,
            )
        else:
            link = HTTPLink(transport, self.reactor, self.agent, url, transportName, self.pool)
        return transport, transport._start(link)

    def _websocketEndpoint(self, httpURL: str) -> IStreamClientEndpoint:
        if self._endpointFactory is not None:
            return self._endpointFactory.endpointForURI(URI.fromBytes(httpURL.encode("ascii")))
        endpoint: IStreamClientEndpoint = HostnameEndpoint(self.reactor, self.host, self.port)
        if self.scheme == "https":
            creator = self._tlsPolicy.creatorForNetloc(self.host.encode("idna"), self.port)
            endpoint = wrapClientTLS(creator, endpoint)
        return endpoint

    def closeCachedConnections(self) -> Deferred[None]:
        if self.pool is None:
            return succeed(None)
        return self.pool.closeCachedConnections()  # type: ignore[no-any-return]


class _Connection:
    """
    One call of L{connectSockJS}: C{/info}, then the transports in turn.
    """

    def __init__(
        self, connector: _Connector, factory: IProtocolFactory, transports: Sequence[str]
    ) -> None:
        self._connector = connector
        self._factory = factory
        self._transports = list(transports)
        self._step: Optional[Deferred[Any]] = None
        self._cancelled = False
        self._errors: list[str] = []
        self._info: Optional[dict[str, Any]] = None
        self.result: Deferred[IProtocol] = Deferred(self._cancel)

    def start(self) -> None:
        self._factory.doStart()
        d = self._connector.info()
        self._step = d
        d.addCallbacks(self._gotInfo, self._failed)

    def _cancel(self, d: Deferred[IProtocol]) -> None:
        self._cancelled = True
        step, self._step = self._step, None
        if step is not None:
            step.cancel()

    def _gotInfo(self, info: dict[str, Any]) -> None:
        self._step = None
        self._info = info
        if info.get("websocket") is False and "websocket" in self._transports:
            self._transports.remove("websocket")
            self._errors.append("websocket: disabled by /info")
        if info.get("cookie_needed") is True:
            self._connector.needCookies()
        closing = self._connector.closeCachedConnections()
        closing.addCallback(lambda _: self._next())

    def _next(self) -> None:
        if self._cancelled:
            return
        if not self._transports:
            self._failed(
                Failure(
                    ConnectError(
                        string="no transport opened a session: " + "; ".join(self._errors)
                    )
                )
            )
            return
        name = self._transports.pop(0)
        transport, d = self._connector.attempt(name, self._factory.buildProtocol, self._info)
        self._step = d
        d.addCallbacks(self._opened, self._attemptFailed, errbackArgs=(name,))
        d.addErrback(self._failed)

    def _opened(self, protocol: IProtocol) -> None:
        self._step = None
        transport: Any = protocol.transport  # type: ignore[attr-defined]
        transport._onLost = self._factory.doStop
        self.result.callback(protocol)

    def _attemptFailed(self, reason: Failure, name: str) -> None:
        self._step = None
        if self._cancelled:
            return
        if reason.check(CancelledError, NoProtocol):
            reason.raiseException()
        refused = reason.check(SessionRefused)
        if refused is not None and isUserCode(reason.value.code):  # type: ignore[attr-defined]
            # The application said no: another transport would hear the same.
            reason.raiseException()
        self._errors.append(f"{name}: {reason.getErrorMessage()}")
        self._next()

    def _failed(self, reason: Failure) -> None:
        self._step = None
        if self._cancelled:
            return
        self._factory.doStop()
        if not reason.check(ConnectError, CancelledError):
            reason = Failure(ConnectError(string=reason.getErrorMessage()))
        closing = self._connector.closeCachedConnections()
        closing.addBoth(lambda _: self.result.errback(reason))


def connectSockJS(
    reactor: Any,
    url: str,
    factory: IProtocolFactory,
    transports: Optional[Sequence[str]] = None,
    *,
    agent: Optional[IAgent] = None,
    endpointFactory: Optional[IAgentEndpointFactory] = None,
    tlsPolicy: Optional[IPolicyForHTTPS] = None,
    headers: Optional[dict[str, str]] = None,
) -> Deferred[IProtocol]:
    """
    Connect a protocol built by C{factory} to the SockJS endpoint at C{url}, as
    sockjs-client does: C{GET /info} first, then each transport in C{transports} in
    turn until one opens a session.

    The protocol sees an ordinary transport (a L{SockJSClientTransport}): one
    C{dataReceived} per message, C{transport.write(bytes)} sends one message (UTF-8),
    C{loseConnection} closes, and C{connectionLost} comes exactly once, with
    L{ConnectionDone <twisted.internet.error.ConnectionDone>} for a clean close (the
    server's close frame is kept on the transport's C{closeCode} and C{closeReason}) or
    L{ConnectionLost <twisted.internet.error.ConnectionLost>}.

    :param reactor: Provides TCP (and TLS) connections and time.
    :param url: The endpoint's URL: C{http://host:port/prefix} or C{https://...};
        websockets use C{ws://} or C{wss://} to the same place.
    :param factory: Builds the protocol once the session is open
        (C{buildProtocol(addr)}, C{doStart} before, C{doStop} after, as for TCP).
    :param transports: Names from L{TRANSPORTS}, tried in this order; C{None} means all.
        A websocket is not tried if C{/info} says C{"websocket": false}.
    :param agent: Makes the HTTP requests.  By default, an L{Agent} with a connection
        pool of the session's own, all closed before the protocol's C{connectionLost}.
    :param endpointFactory: Where connections go, for an in-memory or a custom network:
        the default agent and the websockets connect through it.
    :param tlsPolicy: Checks the server's certificate for C{https} and C{wss}
        (L{BrowserLikePolicyForHTTPS} by default).
    :param headers: Headers for every request, websockets included (C{Origin}, say).
    :return: A L{Deferred} firing with the protocol once the session is open and its
        C{makeConnection} was called; failing with L{ConnectError} when no transport
        opened a session, or with L{SessionRefused} when the server closed a new session
        with an application's code (1000 or 3000-4999).  Cancel it to give up.
    :raise ValueError: An unknown transport name, or not an http(s) URL.
    """
    names = list(TRANSPORTS if transports is None else transports)
    for name in names:
        if name not in TRANSPORTS:
            raise ValueError(f"transports are {', '.join(TRANSPORTS)}, not {name!r}")
    if not names:
        raise ValueError("no transport to try")
    connector = _Connector(reactor, url, agent, endpointFactory, tlsPolicy, headers)
    connection = _Connection(connector, factory, names)
    connection.start()
    return connection.result


class SockJSClient:
    """
    A SockJS client over one transport, without C{/info}: connects given protocol
    instances.  L{connectSockJS} is the general way; this is the testing kit's.

    :ivar baseURL: The endpoint's URL, e.g. C{"http://127.0.0.1:8081/echo"}.
    :ivar transport: The SockJS transport it uses.
    """

    def __init__(
        self,
        reactor: Any,
        baseURL: str,
        transport: str = "websocket",
        agent: Optional[IAgent] = None,
        *,
        endpointFactory: Optional[IAgentEndpointFactory] = None,
        tlsPolicy: Optional[IPolicyForHTTPS] = None,
    ) -> None:
        """
        :param reactor: Provides TCP connections and time.
        :param baseURL: The endpoint's C{http://} or C{https://} URL.
        :param transport: C{"websocket"}, C{"xhr-streaming"} or C{"xhr-polling"}.
        :param agent: The agent that makes the HTTP transports' requests, as for
            L{connectSockJS}.
        :param endpointFactory: As for L{connectSockJS}.
        :param tlsPolicy: As for L{connectSockJS}.
        :raise ValueError: An unknown transport, or not an http(s) URL.
        """
        if transport not in TRANSPORTS:
            raise ValueError(
                f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}"
            )
        _parseBase(baseURL)
        self._reactor = reactor
        self._agent = agent
        self._endpointFactory = endpointFactory
        self._tlsPolicy = tlsPolicy
        self.baseURL = baseURL.rstrip("/")
        self.transport = transport

    def __repr__(self) -> str:
        return f"<SockJSClient {self.transport} {self.baseURL}>"

    def connect(self, protocol: IProtocol) -> Deferred[IProtocol]:
        """
        Open a new session (with random server and session ids) and connect
        C{protocol} to it.

        :return: A L{Deferred} firing with C{protocol} once the server's open frame
            arrived and C{protocol.makeConnection} was called; or failing with
            L{ConnectError} if the session could not be opened (an HTTP error, a
            refused websocket, a close frame instead of the open frame), or with the
            error of the TCP connection.  Cancel it to give up.
        """
        connector = _Connector(
            self._reactor,
            self.baseURL,
            self._agent,
            self._endpointFactory,
            self._tlsPolicy,
            None,
        )
        _, d = connector.attempt(self.transport, lambda addr: protocol, None)
        return d
