"""
L{sockjs_twisted.client} against the real thing: sockjs-node 0.3.24 (the reference server,
npm C{sockjs}, installed in tests/node by C{.ci/setup}) and our own server, each on a free
loopback port, over every transport the client speaks; and the client's rules in memory.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
from typing import Any, Callable, Optional

from treq.testing import RequestTraversalAgent
from twisted.internet import ssl
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.basic import FileSender
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from twisted.web.client import URI
from twisted.web.iweb import IAgentEndpointFactory, IPolicyForHTTPS
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from sockjs_twisted import SockJSResource
from sockjs_twisted.client import (
    CLOSED,
    TRANSPORTS,
    NoProtocol,
    SessionRefused,
    SockJSClientTransport,
    connectSockJS,
)
from sockjs_twisted.testserver import EchoFactory, testServices

from ._ci import inCI
from ._fakes import RecordingProducer
from ._harness import MemoryNetwork
from .test_protocol import CLIENT_ESCAPED, SERVER_ESCAPED, _characters
from .test_testing import TrackingClock

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
CI = inCI()

# Every character a SockJS server or client escapes, and the rest of the BMP's edges.
ESCAPED = "".join(
    _characters(CLIENT_ESCAPED)
    + _characters(SERVER_ESCAPED)
    + [chr(c) for c in range(0x100)]
    + ["\u2028\u2029\ufeff\U0001f600"]
)


class Recorder(Protocol):
    """
    Records its messages and its connectionLost; waits for a number of messages.
    """

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.reasons: list[Failure] = []
        self.lost: Deferred[None] = Deferred()
        self._waiting: list[tuple[int, Deferred[list[bytes]]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.messages.append(data)
        ready = [(n, d) for n, d in self._waiting if len(self.messages) >= n]
        for n, d in ready:
            self._waiting.remove((n, d))
            d.callback(self.messages[:])

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.reasons.append(reason)
        waiting, self._waiting = self._waiting, []
        for count, d in waiting:
            d.errback(AssertionError(f"lost before {count} messages: {reason.getErrorMessage()}"))
        self.lost.callback(None)

    def messagesArrived(self, count: int) -> Deferred[list[bytes]]:
        if len(self.messages) >= count:
            return Deferred.fromCoroutine(_now(self.messages[:]))
        d: Deferred[list[bytes]] = Deferred()
        self._waiting.append((count, d))
        return d


async def _now(value: Any) -> Any:
    return value


class NodeServer:
    """
    tests/node/server.js (sockjs-node) on 127.0.0.1, port chosen by the kernel.
    """

    def __init__(self) -> None:
        node = shutil.which("node")
        installed = os.path.exists(os.path.join(NODE_DIR, "node_modules", "sockjs"))
        if node is None or not installed:
            why = "node is not installed" if node is None else "tests/node: npm ci not run"
            if CI:
                raise AssertionError(f"sockjs-node is required under CI: {why}")
            raise SkipTest(f"sockjs-node unavailable: {why}")
        self.process = subprocess.Popen(
            [node, "server.js"], cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode("utf-8", "replace")
        if not line.startswith("listening "):
            self.stop()
            raise AssertionError(f"sockjs-node did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class CloseWith(Protocol):
    """
    The first message is C{"<code> <reason>"}: the session is closed with them.
    """

    def dataReceived(self, data: bytes) -> None:
        code, reason = data.decode("utf-8").split(" ", 1)
        self.transport.close(int(code), reason)  # type: ignore[union-attr]


class CookieReporter(Protocol):
    """
    Echoes, but answers C{cookies?} with every Cookie header the site saw.
    """

    def __init__(self, cookies: list[str]) -> None:
        self.cookies = cookies

    def dataReceived(self, data: bytes) -> None:
        answer = json.dumps(self.cookies).encode() if data == b"cookies?" else data
        self.transport.write(answer)  # type: ignore[union-attr]


class CookieRecordingSite(Site):
    """
    A Site that records each request's Cookie header, as tests/node/server.js does.
    """

    def __init__(self, root: Resource, cookies: list[str], **kw: Any) -> None:
        super().__init__(root, **kw)
        self.cookies = cookies

    def getResourceFor(self, request: Request) -> Any:
        cookie = request.getHeader(b"cookie")
        if cookie is not None:
            self.cookies.append(request.path.decode().split("/")[-1] + " " + cookie.decode())
        return super().getResourceFor(request)


class _Servers:
    """
    Starts the server under test; the tests are shared by both servers.
    """

    reactor: Any
    base: str

    def startServer(self) -> None:
        raise NotImplementedError()


class _ClientAgainstServer:
    """
    The client over one transport against one server: echo, escaping, size, order,
    close codes, heartbeats, cookies.
    """

    transportName = ""
    heartbeatFrames = True
    timeout = 30

    if False:  # for the type checker: these come from the server mix-in and TestCase
        base: str
        reactor: Any
        addCleanup: Callable[..., None]
        assertEqual: Callable[..., None]

    def connectOptions(self) -> dict[str, Any]:
        """
        How the client reaches the server: over the network by default.
        """
        return {}

    async def connect(self, service: str = "echo", **kw: Any) -> Recorder:
        protocol = Recorder()
        factory = Factory.forProtocol(lambda: protocol)
        connected = await connectSockJS(
            self.reactor,
            f"{self.base}/{service}",
            factory,
            [self.transportName],
            **self.connectOptions(),
            **kw,
        )
        self.addCleanup(lambda: Deferred.fromCoroutine(self._close(protocol)))
        self.assertEqual(connected, protocol)
        transport = protocol.transport
        assert isinstance(transport, SockJSClientTransport)
        self.assertEqual(transport.transportName, self.transportName)
        return protocol

    async def _close(self, protocol: Recorder) -> None:
        if not protocol.reasons:
            protocol.transport.loseConnection()  # type: ignore[union-attr]
            await protocol.lost

    async def echo(self, messages: list[bytes]) -> None:
        protocol = await self.connect()
        for message in messages:
            protocol.transport.write(message)  # type: ignore[union-attr]
        received = await protocol.messagesArrived(len(messages))
        self.assertEqual(received, messages)

    async def test_ascii(self) -> None:
        """An ASCII message comes back from the echo service as it was sent."""
        await self.echo([b"hello, world"])

    async def test_escapedCharacters(self) -> None:
        """Every character either side escapes round-trips through the echo service."""
        await self.echo([ESCAPED.encode("utf-8"), b"", b'["a"]\n\\"'])

    async def test_loneSurrogates(self) -> None:
        """Lone surrogates, which JSON and JavaScript strings carry, echo exactly (UTF-8 with surrogatepass)."""
        await self.echo(
            [
                text.encode("utf-8", "surrogatepass")
                for text in ["x\ud800y", "x\udc00y", "\udc00\ud800"]
            ]
        )

    async def test_64KiB(self) -> None:
        """A 64 KiB message round-trips through the echo service."""
        await self.echo([bytes(ord("a") + i % 26 for i in range(64 * 1024))])

    async def test_burst(self) -> None:
        """A burst of 1,000 messages comes back complete and in order."""
        await self.echo([b"%d" % i for i in range(1000)])

    async def test_close(self) -> None:
        """The /close service opens the session, then closes it with 3000 "Go away!": ConnectionDone."""
        protocol = await self.connect("close")
        await protocol.lost
        transport = protocol.transport
        assert isinstance(transport, SockJSClientTransport)
        self.assertEqual((transport.closeCode, transport.closeReason), (3000, "Go away!"))
        self.assertEqual(len(protocol.reasons), 1)
        protocol.reasons[0].trap(ConnectionDone)

    async def test_closeCodes(self) -> None:
        """A close frame's code and reason reach the transport; connectionLost gets ConnectionDone."""
        for code, reason in [(3000, "Go away!"), (4001, "custom \u00e9\u2028"), (1000, "")]:
            protocol = await self.connect("closewith")
            protocol.transport.write(f"{code} {reason}".encode())  # type: ignore[union-attr]
            await protocol.lost
            transport = protocol.transport
            assert isinstance(transport, SockJSClientTransport)
            self.assertEqual((transport.closeCode, transport.closeReason), (code, reason))
            self.assertEqual(len(protocol.reasons), 1)
            protocol.reasons[0].trap(ConnectionDone)

    async def test_heartbeats(self) -> None:
        """Heartbeats keep the session up; heartbeat frames are counted, never delivered."""
        protocol = await self.connect("heartbeat")
        transport = protocol.transport
        assert isinstance(transport, SockJSClientTransport)
        if self.heartbeatFrames:
            while transport.heartbeats < 2:
                await deferLater(self.reactor, 0.05, lambda: None)
        else:
            # sockjs-node pings websockets instead (Autobahn answers): 5 heartbeat periods.
            await deferLater(self.reactor, 0.5, lambda: None)
            self.assertEqual(transport.heartbeats, 0)
        self.assertEqual((protocol.messages, protocol.reasons), ([], []))
        transport.write(b"still here")
        self.assertEqual(await protocol.messagesArrived(1), [b"still here"])

    async def test_cookieNeeded(self) -> None:
        """When /info says cookie_needed, the JSESSIONID the server sets is sent back."""
        protocol = await self.connect("cookie_needed_echo")
        transport = protocol.transport
        assert isinstance(transport, SockJSClientTransport)
        self.assertIs(transport.info["cookie_needed"], True)  # type: ignore[index]
        protocol.transport.write(b"cookies?")  # type: ignore[union-attr]
        (answer,) = await protocol.messagesArrived(1)
        seen = json.loads(answer)
        if self.transportName != "websocket":
            # The first receiving request got the cookie; the xhr_send carried it back.
            self.assertIn("xhr_send JSESSIONID=dummy", seen)


class _Fallback:
    """
    connectSockJS with every transport, against one server.
    """

    timeout = 30

    if False:
        base: str
        reactor: Any
        assertEqual: Callable[..., None]

    def connectOptions(self) -> dict[str, Any]:
        return {}

    async def test_disabledWebsocket(self) -> None:
        """/info's websocket: false makes the client skip the websocket and use xhr-streaming."""
        protocol = Recorder()
        await connectSockJS(
            self.reactor,
            f"{self.base}/disabled_websocket_echo",
            Factory.forProtocol(lambda: protocol),
            **self.connectOptions(),
        )
        self.assertEqual(protocol.transport.transportName, "xhr-streaming")  # type: ignore[union-attr]
        protocol.transport.write(b"x")  # type: ignore[union-attr]
        self.assertEqual(await protocol.messagesArrived(1), [b"x"])
        protocol.transport.loseConnection()  # type: ignore[union-attr]
        await protocol.lost

    async def test_notFound(self) -> None:
        """An URL that is no SockJS endpoint fails with ConnectError naming the /info answer."""
        try:
            await connectSockJS(
                self.reactor,
                f"{self.base}/nothing",
                Factory.forProtocol(Recorder),
                **self.connectOptions(),
            )
        except ConnectError as e:
            self.assertIn("/nothing/info answered 404", str(e))
        else:
            self.fail("connected to nothing")


def _extraServices(cookies: list[str]) -> dict[str, tuple[Any, dict[str, Any]]]:
    """
    The services tests/node/server.js has beyond the standard test services.
    """
    return {
        "closewith": (Factory.forProtocol(CloseWith), {}),
        "heartbeat": (EchoFactory(), {"heartbeat_delay": 0.1}),
        "cookie_needed_echo": (
            Factory.forProtocol(lambda: CookieReporter(cookies)),
            {"jsessionid": True},
        ),
    }


class _NodeServer:
    """
    sockjs-node, one process per test.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        server = NodeServer()
        self.addCleanup(server.stop)  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{server.port}"


class _OwnServer:
    """
    Our server: the standard test services and the ones tests/node/server.js adds, on the
    real reactor.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.clock = TrackingClock(reactor)
        root = testServices(self.clock)
        cookies: list[str] = []
        extra = _extraServices(cookies)
        for name, (factory, options) in extra.items():
            root.putChild(
                name.encode("ascii"),
                SockJSResource(factory, reactor=self.clock, prefix="/" + name, **options),
            )
        self.connections = WrappingFactory(CookieRecordingSite(root, cookies, reactor=reactor))
        self.port = reactor.listenTCP(0, self.connections, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.addCleanup(lambda: Deferred.fromCoroutine(self._stopServer()))  # type: ignore[attr-defined]

    async def _stopServer(self) -> None:
        for _ in range(500):
            if not self.connections.protocols:
                break
            await deferLater(self.reactor, 0.01, lambda: None)
        await deferLater(self.reactor, 0, lambda: None)
        self.clock.cancelAll()
        await self.port.stopListening()


def _classes() -> dict[str, type]:
    classes: dict[str, type] = {}
    for serverName, server in [("Node", _NodeServer), ("Own", _OwnServer)]:
        for transportName in TRANSPORTS:
            suffix = "".join(part.title() for part in transportName.split("-"))
            name = f"{serverName}{suffix}Tests"
            classes[name] = type(
                name,
                (server, _ClientAgainstServer, TestCase),
                {
                    "transportName": transportName,
                    "heartbeatFrames": serverName == "Own" or transportName != "websocket",
                    "__module__": __name__,
                },
            )
        name = f"{serverName}FallbackTests"
        classes[name] = type(name, (server, _Fallback, TestCase), {"__module__": __name__})
    return classes


globals().update(_classes())


class _MemoryServer:
    """
    Our server in memory: the same services on a L{MemoryReactorClock}, reached through
    L{tests._harness.MemoryNetwork} (iosim), the client on the same clock.  Each test's
    coroutine is driven by moving the bytes and the clock until it is done.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        root = testServices(self.reactor)
        cookies: list[str] = []
        for name, (factory, options) in _extraServices(cookies).items():
            root.putChild(
                name.encode("ascii"),
                SockJSResource(factory, reactor=self.reactor, prefix="/" + name, **options),
            )
        site = CookieRecordingSite(root, cookies, reactor=self.reactor)
        self.network = MemoryNetwork(site)
        self.base = "http://127.0.0.1:8081"

    def connectOptions(self) -> dict[str, Any]:
        return {"endpointFactory": self.network}

    def drive(self, d: Deferred[Any]) -> Any:
        """
        Move bytes, then time (10 ms at a time), until C{d} has a result; return it.
        """
        results: list[Any] = []
        d.addBoth(results.append)
        for _ in range(100_000):
            if results:
                break
            self.network.flush()
            self.reactor.advance(0)
            self.network.flush()
            if not results:
                self.reactor.advance(0.01)
        self.assertEqual(len(results), 1, "still running after 1,000 s of the clock")  # type: ignore[attr-defined]
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    def addCleanup(self, f: Callable[..., Any], *args: Any) -> None:
        def driven() -> None:
            result = f(*args)
            if isinstance(result, Deferred):
                self.drive(result)

        super().addCleanup(driven)  # type: ignore[misc]


def _driven(method: Callable[[Any], Any]) -> Callable[[Any], None]:
    def test(self: Any) -> None:
        self.drive(Deferred.fromCoroutine(method(self)))

    test.__name__ = method.__name__
    test.__doc__ = method.__doc__
    return test


def _memoryClasses() -> dict[str, type]:
    classes: dict[str, type] = {}
    bases = [(_ClientAgainstServer, TRANSPORTS), (_Fallback, [None])]
    for base, transports in bases:
        for transportName in transports:
            if transportName is None:
                name = "MemoryFallbackTests"
                attrs: dict[str, Any] = {}
            else:
                suffix = "".join(part.title() for part in transportName.split("-"))
                name = f"Memory{suffix}Tests"
                attrs = {"transportName": transportName}
            for attr in dir(base):
                if attr.startswith("test_"):
                    attrs[attr] = _driven(getattr(base, attr))
            attrs["__module__"] = __name__
            classes[name] = type(name, (_MemoryServer, base, SynchronousTestCase), attrs)
    return classes


globals().update(_memoryClasses())


@implementer(IAgentEndpointFactory)
class RecordingEndpoints:
    """
    Passes connections on to a L{MemoryNetwork}, recording their paths; refuses those
    whose path ends with one of C{refuse} (a proxy that blocks websockets, say).
    """

    def __init__(self, network: MemoryNetwork, refuse: tuple[str, ...] = ()) -> None:
        self._network = network
        self._refuse = refuse
        self.paths: list[str] = []

    def endpointForURI(self, uri: URI) -> Any:
        path = uri.path.decode("ascii")
        self.paths.append(path)
        if path.endswith(self._refuse):
            return _Refusing()
        return self._network.endpointForURI(uri)


class _Refusing:
    def connect(self, factory: Any) -> Deferred[Any]:
        return fail(ConnectionRefusedError("no websockets here"))


class Pauser(Recorder):
    """
    Pauses its transport at the first message.
    """

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        if len(self.messages) == 1:
            self.transport.pauseProducing()  # type: ignore[union-attr]


class Refusing(Factory):
    """
    Builds no protocol: the server refuses each session.
    """

    def buildProtocol(self, addr: Any) -> None:  # type: ignore[override]
        return None


class ClientRulesTests(_MemoryServer, SynchronousTestCase):
    """
    The client's own rules, in memory: fallback, refusals, flow control both ways.
    """

    def setUp(self) -> None:
        super().setUp()
        root = self.network.site.resource
        root.putChild(
            b"refuse",
            SockJSResource(Refusing(), reactor=self.reactor),
        )

    def open(
        self, service: str = "echo", protocol: Optional[Recorder] = None, **kw: Any
    ) -> Recorder:
        protocol = protocol or Recorder()
        kw.setdefault("endpointFactory", self.network)
        self.drive(
            connectSockJS(
                self.reactor, f"{self.base}/{service}", Factory.forProtocol(lambda: protocol), **kw
            )
        )
        return protocol

    def close(self, protocol: Recorder) -> None:
        protocol.transport.loseConnection()  # type: ignore[union-attr]
        self.drive(protocol.lost)
        self.assertEqual(len(protocol.reasons), 1)

    def test_fallbackInOrder(self) -> None:
        """A transport that cannot connect is followed by the next one in the order given."""
        endpoints = RecordingEndpoints(self.network, refuse=("/websocket",))
        protocol = self.open(
            endpointFactory=endpoints, transports=["websocket", "xhr-polling", "xhr-streaming"]
        )
        transport = protocol.transport
        assert isinstance(transport, SockJSClientTransport)
        self.assertEqual(transport.transportName, "xhr-polling")
        self.assertEqual(endpoints.paths[0], "/echo/info")
        self.assertTrue(endpoints.paths[1].endswith("/websocket"))
        self.assertTrue(endpoints.paths[2].endswith("/xhr"))
        self.close(protocol)

    def test_noTransportLeft(self) -> None:
        """When every transport fails, ConnectError names each failure."""
        endpoints = RecordingEndpoints(self.network, refuse=("/websocket",))
        d = connectSockJS(
            self.reactor,
            f"{self.base}/disabled_websocket_echo",
            Factory.forProtocol(Recorder),
            ["websocket"],
            endpointFactory=endpoints,
        )
        with self.assertRaises(ConnectError) as e:
            self.drive(d)
        self.assertIn("websocket: disabled by /info", str(e.exception))
        self.assertEqual(endpoints.paths, ["/disabled_websocket_echo/info"])

    def test_refusedNoFallback(self) -> None:
        """A session closed before it opened (c before o) ends the attempt: no other transport is tried."""
        endpoints = RecordingEndpoints(self.network)
        d = connectSockJS(
            self.reactor,
            f"{self.base}/refuse",
            Factory.forProtocol(Recorder),
            endpointFactory=endpoints,
        )
        with self.assertRaises(SessionRefused) as e:
            self.drive(d)
        self.assertEqual(e.exception.code, 3000)
        self.assertEqual(len(endpoints.paths), 2)

    def test_factoryBuildsNothing(self) -> None:
        """A client factory that builds no protocol fails the connect with NoProtocol, tries nothing else, and is stopped."""
        started: list[str] = []

        class Nothing(Factory):
            def doStart(self) -> None:
                started.append("start")

            def doStop(self) -> None:
                started.append("stop")

            def buildProtocol(self, addr: Any) -> None:  # type: ignore[override]
                return None

        endpoints = RecordingEndpoints(self.network)
        d = connectSockJS(self.reactor, f"{self.base}/echo", Nothing(), endpointFactory=endpoints)
        with self.assertRaises(NoProtocol):
            self.drive(d)
        self.assertEqual(len(endpoints.paths), 2)
        self.assertEqual(started, ["start", "stop"])

    def test_factoryStartedAndStopped(self) -> None:
        """The client factory gets doStart before the connect and doStop after connectionLost."""
        events: list[str] = []
        protocol = Recorder()

        class Tracking(Factory):
            def doStart(self) -> None:
                events.append("start")

            def doStop(self) -> None:
                events.append("stop")

            def buildProtocol(self, addr: Any) -> Recorder:
                events.append("build")
                return protocol

        self.drive(
            connectSockJS(
                self.reactor, f"{self.base}/echo", Tracking(), endpointFactory=self.network
            )
        )
        self.assertEqual(events, ["start", "build"])
        self.close(protocol)
        self.assertEqual(events, ["start", "build", "stop"])

    def test_cancel(self) -> None:
        """Cancelling the connect before the session opens fails it with CancelledError; no protocol is built."""
        built: list[Any] = []
        d = connectSockJS(
            self.reactor,
            f"{self.base}/echo",
            Factory.forProtocol(lambda: built.append(1)),  # type: ignore[arg-type,func-returns-value]
            endpointFactory=self.network,
        )
        d.cancel()
        with self.assertRaises(CancelledError):
            self.drive(d)
        self.assertEqual(built, [])

    def test_pauseIncomingEcho(self) -> None:
        """Messages that arrive while paused wait, and come in order on resume."""
        for transportName in TRANSPORTS:
            protocol = self.open(protocol=Pauser(), transports=[transportName])
            transport = protocol.transport
            assert isinstance(transport, SockJSClientTransport)
            for i in range(5):
                transport.write(b"%d" % i)
            for _ in range(10):
                self.reactor.advance(0.01)
                self.network.flush()
            self.assertEqual(protocol.messages, [b"0"], transportName)
            transport.resumeProducing()
            self.assertEqual(
                self.drive(protocol.messagesArrived(5)), [b"%d" % i for i in range(5)]
            )
            self.close(protocol)

    def test_streamingProducer(self) -> None:
        """A streaming producer is paused while an xhr_send is under way with more queued, and resumed once it went."""
        protocol = self.open(transports=["xhr-polling"])
        transport = protocol.transport
        assert isinstance(transport, SockJSClientTransport)
        producer = RecordingProducer()
        transport.registerProducer(producer, True)
        transport.write(b"one")
        self.reactor.advance(0)  # the first xhr_send leaves
        transport.write(b"two")
        self.reactor.advance(0)  # queued behind it
        self.assertEqual(producer.events, ["pause"])
        self.drive(protocol.messagesArrived(2))
        self.assertEqual(producer.events, ["pause", "resume"])
        transport.unregisterProducer()
        self.close(protocol)
        self.assertEqual(producer.events, ["pause", "resume"])

    def test_pullProducer(self) -> None:
        """A pull producer (FileSender) is asked for more once what it wrote was sent: each chunk is one message."""
        for transportName in TRANSPORTS:
            protocol = self.open(transports=[transportName])
            transport = protocol.transport
            data = bytes(ord("a") + i % 26 for i in range(3 * FileSender.CHUNK_SIZE + 5))
            done = FileSender().beginFileTransfer(io.BytesIO(data), transport)
            self.drive(done)
            received = self.drive(protocol.messagesArrived(4))
            self.assertEqual(b"".join(received), data, transportName)
            self.close(protocol)

    def test_exactlyOneConnectionLost(self) -> None:
        """loseConnection, abortConnection and a server close after one another: one connectionLost."""
        for transportName in TRANSPORTS:
            protocol = self.open("closewith", transports=[transportName])
            transport = protocol.transport
            assert isinstance(transport, SockJSClientTransport)
            transport.write(b"4001 bye")
            self.reactor.advance(0)
            transport.loseConnection()
            transport.abortConnection()
            transport.loseConnection()
            self.drive(protocol.lost)
            for _ in range(10):
                self.reactor.advance(1)
                self.network.flush()
            self.assertEqual(len(protocol.reasons), 1, transportName)
            self.assertEqual(transport.readyState, CLOSED)


def _selfSigned(hostname: str) -> tuple[bytes, bytes]:
    """
    A new key and a self-signed certificate for C{hostname} (PEM), with the
    subjectAltName that hostname verification reads.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyPEM = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return keyPEM, cert.public_bytes(serialization.Encoding.PEM)


class TrackingSite(Site):
    """
    A Site that knows its open connections (C{protocols}), without wrapping them (a
    websocket under TLS must see the TLS transport itself).
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.protocols: set[Any] = set()

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        lost = channel.connectionLost
        self.protocols.add(channel)

        def connectionLost(reason: Failure) -> None:
            self.protocols.discard(channel)
            lost(reason)

        channel.connectionLost = connectionLost
        return channel


@implementer(IPolicyForHTTPS)
class TrustOnly:
    """
    Trusts one certificate, for every host, and checks the hostname against it.
    """

    def __init__(self, certificate: ssl.Certificate) -> None:
        self._certificate = certificate

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._certificate)


class TLSTests(_OwnServer, TestCase):
    """
    https and wss: the client checks the server's certificate with the policy given.
    """

    timeout = 30

    def setUp(self) -> None:
        from twisted.internet import reactor

        keyPEM, certPEM = _selfSigned("localhost")
        self.certificate = ssl.Certificate.loadPEM(certPEM)
        serverOptions = ssl.PrivateCertificate.loadPEM(keyPEM + certPEM).options()
        self.reactor = reactor
        self.clock = TrackingClock(reactor)
        root = testServices(self.clock)
        self.connections = TrackingSite(root, reactor=reactor)
        self.port = reactor.listenSSL(0, self.connections, serverOptions, interface="127.0.0.1")
        self.base = f"https://localhost:{self.port.getHost().port}"
        self.addCleanup(lambda: Deferred.fromCoroutine(self._stopServer()))

    async def test_everyTransport(self) -> None:
        """Over https (and wss for the websocket) each transport echoes."""
        for transportName in TRANSPORTS:
            protocol = Recorder()
            await connectSockJS(
                self.reactor,
                f"{self.base}/echo",
                Factory.forProtocol(lambda protocol=protocol: protocol),
                [transportName],
                tlsPolicy=TrustOnly(self.certificate),
            )
            transport = protocol.transport
            assert isinstance(transport, SockJSClientTransport)
            self.assertTrue(transport.url.startswith("https://localhost:"))
            transport.write("h\u00e9llo".encode())
            self.assertEqual(await protocol.messagesArrived(1), ["h\u00e9llo".encode()])
            transport.loseConnection()
            await protocol.lost

    async def test_untrusted(self) -> None:
        """A certificate the policy does not trust fails the connect."""
        with self.assertRaises(ConnectError):
            await connectSockJS(
                self.reactor, f"{self.base}/echo", Factory.forProtocol(Recorder), ["websocket"]
            )


class RequestTraversalAgentTests(SynchronousTestCase):
    """
    The in-memory pattern of docs/testing.rst: the client through treq's
    RequestTraversalAgent, on a clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        root = Resource()
        root.putChild(b"echo", SockJSResource(EchoFactory(), reactor=self.clock))
        self.agent = RequestTraversalAgent(root)

    def turn(self) -> None:
        self.agent.flush()
        self.clock.advance(0)
        self.agent.flush()

    def test_echo(self) -> None:
        """Over RequestTraversalAgent each HTTP transport opens, echoes and closes, leaving no timer."""
        for transportName in ["xhr-streaming", "xhr-polling"]:
            client = Recorder()
            d = connectSockJS(
                self.clock,
                "http://127.0.0.1/echo",
                Factory.forProtocol(lambda client=client: client),
                [transportName],
                agent=self.agent,
            )
            self.turn()
            self.assertIs(self.successResultOf(d), client)
            client.transport.write(b"hello")  # type: ignore[union-attr]
            self.turn()
            self.turn()
            self.assertEqual(client.messages, [b"hello"], transportName)
            client.transport.loseConnection()  # type: ignore[union-attr]
            self.turn()
            self.assertEqual(len(client.reasons), 1)
            self.clock.advance(5)
            self.assertEqual(self.clock.getDelayedCalls(), [])
