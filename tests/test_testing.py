"""
Tests for L{sockjs_twisted.testing}: the in-memory harness, on a clock, and the network
client, against a real server on the real reactor.
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING, Any, Callable, Optional

from twisted.internet.address import HostnameAddress, IPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectError, ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.protocols import portforward
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.trial.reporter import TestResult
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent, IRequest
from twisted.web.resource import Resource
from zope.interface import implementer
from zope.interface.verify import verifyObject

import sockjs_twisted.testing
from sockjs_twisted import SockJSResource
from sockjs_twisted._factory import SockJSSite
from sockjs_twisted.testing import (
    TRANSPORTS,
    FakeClient,
    ProtocolHarness,
    SockJSClient,
    SockJSClientTransport,
)
from sockjs_twisted.testserver import BroadcastFactory, EchoFactory, testServices

# -- protocols under test ------------------------------------------------------------------


class Recorder(Protocol):
    """
    Records what happens to it; C{lost} fires (with C{None}) on C{connectionLost}.
    """

    def __init__(self) -> None:
        self.made = 0
        self.messages: list[bytes] = []
        self.reasons: list[Failure] = []
        self.lost: Deferred[None] = Deferred()
        self._waiting: list[tuple[int, Deferred[list[bytes]]]] = []

    def connectionMade(self) -> None:
        self.made += 1

    def dataReceived(self, data: bytes) -> None:
        self.messages.append(data)
        ready = [(n, d) for n, d in self._waiting if len(self.messages) >= n]
        self._waiting = [(n, d) for n, d in self._waiting if len(self.messages) < n]
        for n, d in ready:
            d.callback(self.messages[:n])

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.reasons.append(reason)
        if not self.lost.called:
            self.lost.callback(None)

    def messagesArrived(self, count: int) -> Deferred[list[bytes]]:
        """
        Fires with the first C{count} messages once they arrived.
        """
        d: Deferred[list[bytes]] = Deferred()
        if len(self.messages) >= count:
            d.callback(self.messages[:count])
        else:
            self._waiting.append((count, d))
        return d


class RecordingFactory(Factory):
    """
    Builds L{Recorder}s and keeps them.
    """

    def __init__(self) -> None:
        self.protocols: list[Recorder] = []
        self.starts = 0
        self.stops = 0

    def startFactory(self) -> None:
        self.starts += 1

    def stopFactory(self) -> None:
        self.stops += 1

    def buildProtocol(self, addr: Optional[IAddress]) -> Recorder:
        protocol = Recorder()
        protocol.factory = self
        self.protocols.append(protocol)
        return protocol


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class Greeter(Protocol):
    """
    Writes two messages as soon as it is connected.
    """

    def connectionMade(self) -> None:
        self.transport.write(b"welcome")
        self.transport.write(b"to SockJS")


class Closer(Protocol):
    """
    C{go}: loseConnection; anything else: close with 4000 and the message as reason.
    """

    def dataReceived(self, data: bytes) -> None:
        if data == b"go":
            self.transport.loseConnection()
        else:
            self.transport.close(4000, data.decode("utf-8"))


class BadWriter(Protocol):
    """
    Answers every message with bytes that are not UTF-8.
    """

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"\xff")


class RefusingFactory(Factory):
    """
    Refuses every connection.
    """

    def buildProtocol(self, addr: Optional[IAddress]) -> None:
        return None


class Garbage(Resource):
    """
    Answers every request with a line that is no SockJS frame.
    """

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return b"nonsense\n"


# -- the harness ----------------------------------------------------------------------------


class ProtocolHarnessTests(SynchronousTestCase):
    """
    L{ProtocolHarness} runs a factory's protocols in real sessions, in memory, on a clock.
    """

    def harness(self, factory: Optional[Factory] = None, **options: Any) -> ProtocolHarness:
        return ProtocolHarness(factory or Factory.forProtocol(Echo), **options)

    def assertNoDelayedCalls(self, harness: ProtocolHarness) -> None:
        """
        Once the reactor turn is over, no timer is left.
        """
        harness.flush()
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_echo(self) -> None:
        """Messages sent reach dataReceived one by one; what the protocol writes is received."""
        harness = self.harness()
        client = harness.connect()
        client.send(b"hello", "w\u00f6rld \u2028".encode(), b"", b'"quoted" \\ <script>')
        client.flush()
        self.assertEqual(
            client.received, [b"hello", "w\u00f6rld \u2028".encode(), b"", b'"quoted" \\ <script>']
        )
        client.disconnect()
        self.assertNoDelayedCalls(harness)

    def test_sentAtEndOfTurn(self) -> None:
        """Writes go out when the reactor turn ends, all of that turn's in one frame."""
        harness = self.harness()
        client = harness.connect()
        client.send(b"a", b"b")
        self.assertEqual(client.received, [])
        self.assertEqual(client.frames, ["o"])
        client.flush()
        self.assertEqual(client.frames, ["o", 'a["a","b"]'])
        client.disconnect()

    def test_connectionMade(self) -> None:
        """The protocol is connected when connect() returns, and what it writes then arrives."""
        harness = self.harness(Factory.forProtocol(Greeter))
        client = harness.connect()
        self.assertIsInstance(client.protocol, Greeter)
        harness.flush()
        self.assertEqual(client.received, [b"welcome", b"to SockJS"])
        client.disconnect()

    def test_theTransport(self) -> None:
        """The protocol's transport is the client's, and reports the connection's details."""
        harness = self.harness(prefix="/app")
        peer = IPv4Address("TCP", "10.1.2.3", 5555)
        client = harness.connect(headers={"User-Agent": "tests", "origin": "http://a"}, peer=peer)
        protocol = client.protocol
        assert protocol is not None
        transport = protocol.transport
        self.assertIs(transport, client.transport)
        self.assertIs(transport.protocol, protocol)
        self.assertEqual(transport.sessionId, client.sessionId)
        self.assertEqual(transport.transportName, "websocket")
        self.assertEqual(transport.prefix, "/app")
        self.assertEqual(transport.pathname, f"/app/000/{client.sessionId}/websocket")
        self.assertEqual(transport.headers, {"user-agent": "tests", "origin": "http://a"})
        self.assertEqual((transport.remoteAddress, transport.remotePort), ("10.1.2.3", 5555))
        self.assertEqual(transport.getPeer(), peer)
        client.disconnect()

    def test_loseConnection(self) -> None:
        """loseConnection sends 3000 "Go away!" and gives the protocol ConnectionDone."""
        factory = RecordingFactory()
        harness = self.harness(factory)
        client = harness.connect()
        protocol = factory.protocols[0]
        protocol.transport.write(b"last")
        protocol.transport.loseConnection()
        self.assertEqual(client.closed, (3000, "Go away!"))
        self.assertEqual(client.received, [b"last"])
        self.assertEqual(client.frames, ["o", 'a["last"]', 'c[3000,"Go away!"]'])
        self.assertEqual(len(protocol.reasons), 1)
        protocol.reasons[0].trap(ConnectionDone)
        self.assertNoDelayedCalls(harness)

    def test_closeWithCode(self) -> None:
        """transport.close(code, reason) reaches the client as that close frame."""
        harness = self.harness(Factory.forProtocol(Closer))
        client = harness.connect()
        client.send("enough \u00e9".encode())
        self.assertEqual(client.closed, (4000, "enough \u00e9"))
        self.assertEqual(client.frames[-1], 'c[4000,"enough \u00e9"]')
        self.assertNoDelayedCalls(harness)

    def test_heartbeat(self) -> None:
        """An idle session sends a heartbeat frame every heartbeat_delay seconds."""
        harness = self.harness(heartbeat_delay=10)
        client = harness.connect()
        harness.clock.advance(9.9)
        self.assertEqual(client.heartbeats, 0)
        harness.clock.advance(0.1)
        self.assertEqual((client.heartbeats, client.frames[-1]), (1, "h"))
        harness.clock.advance(10)
        self.assertEqual(client.heartbeats, 2)
        client.disconnect()
        self.assertNoDelayedCalls(harness)

    def test_disconnect(self) -> None:
        """A client that leaves gives the protocol one ConnectionDone; later sends are dropped."""
        factory = RecordingFactory()
        harness = self.harness(factory)
        client = harness.connect()
        client.disconnect()
        client.disconnect()
        client.send(b"too late")
        protocol = factory.protocols[0]
        self.assertEqual((protocol.messages, len(protocol.reasons)), ([], 1))
        protocol.reasons[0].trap(ConnectionDone)
        self.assertIsNone(client.closed)
        self.assertNoDelayedCalls(harness)

    def test_disconnectAborted(self) -> None:
        """A client whose connection drops gives the protocol ConnectionLost."""
        factory = RecordingFactory()
        harness = self.harness(factory)
        harness.connect().disconnect(aborted=True)
        self.assertEqual(len(factory.protocols[0].reasons), 1)
        factory.protocols[0].reasons[0].trap(ConnectionLost)
        self.assertNoDelayedCalls(harness)

    def test_multipleClients(self) -> None:
        """Each client is its own session; a broadcast reaches all of them."""
        harness = self.harness(BroadcastFactory())
        clients = [harness.connect() for _ in range(3)]
        self.assertEqual(len({c.sessionId for c in clients}), 3)
        self.assertEqual(harness.clients, clients)
        clients[1].send(b"to all")
        harness.flush()
        self.assertEqual([c.received for c in clients], [[b"to all"]] * 3)
        clients[0].disconnect()
        clients[2].send(b"fewer")
        harness.flush()
        self.assertEqual(
            [c.received for c in clients],
            [[b"to all"], [b"to all", b"fewer"], [b"to all", b"fewer"]],
        )
        for client in clients:
            client.disconnect()
        self.assertNoDelayedCalls(harness)

    def test_writeChecksUTF8(self) -> None:
        """The session's write takes UTF-8 bytes only, and says so at the call."""
        harness = self.harness()
        client = harness.connect()
        transport = client.transport
        assert transport is not None
        self.assertRaises(ValueError, transport.write, b"\xff")
        self.assertRaises(TypeError, transport.write, "text")  # type: ignore[arg-type]
        client.flush()
        self.assertEqual(client.frames, ["o"])
        client.disconnect()

    def test_badWriteInDataReceived(self) -> None:
        """A protocol whose dataReceived raises has its session closed with 1011."""
        harness = self.harness(Factory.forProtocol(BadWriter))
        client = harness.connect()
        client.send(b"x")
        self.assertEqual(client.closed, (1011, "Internal error"))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertNoDelayedCalls(harness)

    def test_sendTakesBytes(self) -> None:
        """send() takes UTF-8 bytes, as dataReceived gets them; lone surrogates pass."""
        client = self.harness().connect()
        self.assertRaises(TypeError, client.send, "text")
        self.assertRaises(ValueError, client.send, b"\xff")
        client.send("x\ud800y".encode("utf-8", "surrogatepass"))
        client.flush()
        self.assertEqual(client.received, ["x\ud800y".encode("utf-8", "surrogatepass")])
        self.assertEqual(client.frames[-1], 'a["x\\ud800y"]')
        client.disconnect()

    def test_refused(self) -> None:
        """A factory that builds no protocol refuses the session with 3000 "Go away!"."""
        harness = self.harness(RefusingFactory())
        client = harness.connect()
        self.assertEqual(client.closed, (3000, "Go away!"))
        self.assertEqual(client.frames, ['c[3000,"Go away!"]'])
        self.assertIsNone(client.session)
        self.assertIsNone(client.protocol)
        self.assertNoDelayedCalls(harness)

    def test_maxSessions(self) -> None:
        """Past max_sessions a session is refused with 1013; a slot frees when one leaves."""
        harness = self.harness(max_sessions=1)
        first = harness.connect()
        self.assertEqual(harness.connect().closed, (1013, "Too many sessions"))
        first.disconnect()
        self.assertIsNone(harness.connect().closed)

    def test_pause(self) -> None:
        """A paused client gets nothing; on resume it gets what was queued."""
        harness = self.harness()
        client = harness.connect()
        client.pause()
        client.send(b"a")
        harness.clock.advance(60)
        self.assertEqual(client.frames, ["o"])
        client.resume()
        self.assertEqual(client.received, [b"a"])
        client.disconnect()
        self.assertNoDelayedCalls(harness)

    def test_stop(self) -> None:
        """stop() closes every session with 1001 and stops the factory started by connect()."""
        factory = RecordingFactory()
        harness = self.harness(factory)
        self.assertEqual(factory.starts, 0)
        clients = [harness.connect(), harness.connect()]
        self.assertEqual(factory.starts, 1)
        harness.stop()
        self.assertEqual([c.closed for c in clients], [(1001, "Server shutting down")] * 2)
        self.assertEqual([len(p.reasons) for p in factory.protocols], [1, 1])
        self.assertEqual(factory.stops, 1)
        self.assertNoDelayedCalls(harness)

    def test_clockAndOptions(self) -> None:
        """The harness uses the clock given; options are validated as SockJSOptions."""
        clock = Clock()
        harness = ProtocolHarness(EchoFactory(), clock, heartbeat_delay=3)
        self.assertIs(harness.clock, clock)
        self.assertEqual(harness.options.heartbeat_delay, 3)
        self.assertRaises(ValueError, ProtocolHarness, EchoFactory(), heartbeat_delay=0)
        self.assertRaises(TypeError, ProtocolHarness, EchoFactory(), no_such_option=1)

    def test_fakeClientIsASink(self) -> None:
        """A FakeClient provides ISessionSink."""
        from sockjs_twisted.interfaces import ISessionSink

        self.assertTrue(verifyObject(ISessionSink, FakeClient(Clock(), "s")))

    def test_moduleExample(self) -> None:
        """The example test in the module's docstring passes."""
        doc = sockjs_twisted.testing.__doc__
        assert doc is not None
        match = re.search(r"that you can copy::\n\n(.*?)\n\S", doc, re.S)
        assert match is not None
        namespace: dict[str, Any] = {"__name__": "sockjs_twisted_example"}
        exec(textwrap.dedent(match.group(1)), namespace)
        result = TestResult()
        namespace["EchoTests"]("test_echo").run(result)
        self.assertEqual((result.errors, result.failures, result.successes), ([], [], 1))


# -- the network client, against a real server -----------------------------------------------


@implementer(IReactorTime)
class TrackingClock:
    """
    The real reactor's time, remembering the calls scheduled through it, so that a test
    can cancel the timers a server leaves behind: an HTTP session outlives its last
    connection by C{disconnect_delay}.
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor
        self._calls: list[IDelayedCall] = []

    def seconds(self) -> float:
        return self._reactor.seconds()

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: object, **kwargs: object
    ) -> IDelayedCall:
        call = self._reactor.callLater(delay, callable, *args, **kwargs)
        self._calls = [c for c in self._calls if c.active()]
        self._calls.append(call)
        return call

    def getDelayedCalls(self) -> list[IDelayedCall]:
        return [c for c in self._calls if c.active()]

    def cancelAll(self) -> None:
        for call in self.getDelayedCalls():
            call.cancel()


@implementer(IAgent)
class RecordingAgent:
    """
    An agent that records the URLs it is asked for and passes the requests on.
    """

    def __init__(self, agent: IAgent) -> None:
        self._agent = agent
        self.urls: list[bytes] = []

    def request(
        self, method: bytes, uri: bytes, headers: Any = None, bodyProducer: Any = None
    ) -> Any:
        self.urls.append(uri)
        return self._agent.request(method, uri, headers, bodyProducer)


if TYPE_CHECKING:
    _ClientTestsBase = TestCase
else:
    _ClientTestsBase = object


class _ClientTests(_ClientTestsBase):
    """
    L{SockJSClient} over one transport, against the standard test services (and a few
    more) served by a real Site on 127.0.0.1.
    """

    transportName = ""
    timeout = 15

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.clock = TrackingClock(reactor)
        self.recorder = RecordingFactory()
        root = testServices(self.clock)
        extra: dict[str, tuple[Factory, dict[str, Any]]] = {
            # A polling client that goes away between two polls is missed until then.
            "record": (self.recorder, {"disconnect_delay": 1}),
            "refuse": (RefusingFactory(), {}),
            "heartbeat": (EchoFactory(), {"heartbeat_delay": 0.05}),
        }
        for name, (factory, options) in extra.items():
            resource = SockJSResource(
                factory,
                reactor=self.clock,
                prefix="/" + name,
                **options,
            )
            root.putChild(name.encode("ascii"), resource)
        root.putChild(b"garbage", Garbage())
        self.connections = WrappingFactory(SockJSSite(root, reactor=reactor))
        self.port = reactor.listenTCP(0, self.connections, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.addCleanup(lambda: Deferred.fromCoroutine(self._stopServer()))

    async def _stopServer(self) -> None:
        # The clients are gone (they were closed first); once the server saw every
        # connection close, only the timers of HTTP sessions waiting for their clients
        # to come back are left.
        await self.eventually(lambda: not self.connections.protocols)
        # Let the server finish what it was doing when the last connection went.
        await deferLater(self.reactor, 0, lambda: None)
        self.clock.cancelAll()
        await self.port.stopListening()

    async def eventually(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = self.reactor.seconds() + timeout
        while not predicate():
            if self.reactor.seconds() > deadline:
                self.fail(f"still not {predicate} after {timeout} s")
            await deferLater(self.reactor, 0.01, lambda: None)

    def client(self, service: str = "echo", agent: Optional[IAgent] = None) -> SockJSClient:
        return SockJSClient(self.reactor, f"{self.base}/{service}", self.transportName, agent)

    async def connect(self, service: str = "echo", agent: Optional[IAgent] = None) -> Recorder:
        protocol = Recorder()
        self.addCleanup(lambda: Deferred.fromCoroutine(self._close(protocol)))
        connected = await self.client(service, agent).connect(protocol)
        self.assertEqual(connected, protocol)
        return protocol

    async def _close(self, protocol: Recorder) -> None:
        if protocol.transport is not None:
            protocol.transport.loseConnection()
            await protocol.lost

    def transportOf(self, protocol: Recorder) -> SockJSClientTransport:
        transport = protocol.transport
        assert isinstance(transport, SockJSClientTransport)
        return transport

    async def test_echo(self) -> None:
        """Messages round-trip through the echo service, in order, Unicode intact."""
        protocol = await self.connect()
        transport = self.transportOf(protocol)
        self.assertTrue(verifyObject(ITransport, transport))
        self.assertEqual((protocol.made, transport.transportName), (1, self.transportName))
        self.assertEqual(
            transport.getPeer(), HostnameAddress(b"127.0.0.1", self.port.getHost().port)
        )
        messages = [
            b"hello",
            "w\u00f6rld \u2028\u2029 \U0001f600".encode(),
            b"",
            b'["not", "framing"]',
        ]
        for message in messages:
            transport.write(message)
        self.assertEqual(await protocol.messagesArrived(4), messages)
        transport.write(b"again")
        self.assertEqual(await protocol.messagesArrived(5), [*messages, b"again"])

    async def test_responseLimit(self) -> None:
        """More than a streaming response may carry arrives, over renewed responses."""
        protocol = await self.connect()
        messages = [bytes([ord("a") + i]) * 3000 for i in range(4)]
        for message in messages:
            protocol.transport.write(message)
            await deferLater(self.reactor, 0, lambda: None)
        self.assertEqual(await protocol.messagesArrived(4), messages)

    async def test_serverClose(self) -> None:
        """The close service's 3000 "Go away!" is recorded and ends the connection cleanly."""
        protocol = await self.connect("close")
        await protocol.lost
        transport = self.transportOf(protocol)
        self.assertEqual((transport.closeCode, transport.closeReason), (3000, "Go away!"))
        self.assertEqual((protocol.made, len(protocol.reasons)), (1, 1))
        protocol.reasons[0].trap(ConnectionDone)
        self.assertEqual(transport.connected, False)

    async def test_clientClose(self) -> None:
        """loseConnection sends what was written, then ends the session on the server."""
        protocol = await self.connect("record")
        protocol.transport.write(b"last words")
        protocol.transport.loseConnection()
        (server,) = self.recorder.protocols
        await server.lost
        self.assertEqual(server.messages, [b"last words"])
        await protocol.lost
        self.assertEqual(len(protocol.reasons), 1)
        protocol.reasons[0].trap(ConnectionDone)
        self.assertEqual(self.transportOf(protocol).closeCode, None)

    async def test_serverProtocolClose(self) -> None:
        """A close from the server's protocol reaches the client's protocol."""
        protocol = await self.connect("record")
        (server,) = self.recorder.protocols
        server.transport.close(4001, "done \u00e9")
        await protocol.lost
        transport = self.transportOf(protocol)
        self.assertEqual((transport.closeCode, transport.closeReason), (4001, "done \u00e9"))

    async def test_abort(self) -> None:
        """abortConnection drops the session at once, with ConnectionAborted."""
        protocol = await self.connect("record")
        (server,) = self.recorder.protocols
        protocol.transport.write(b"first")
        await server.messagesArrived(1)
        protocol.transport.abortConnection()
        protocol.transport.write(b"dropped")
        await protocol.lost
        protocol.reasons[0].trap(ConnectionAborted)
        await server.lost
        self.assertEqual(server.messages, [b"first"])

    async def test_dataReceivedRaises(self) -> None:
        """A protocol whose dataReceived raises is logged and disconnected."""
        protocol = await self.connect()
        protocol.dataReceived = lambda data: 1 / 0  # type: ignore[assignment,method-assign]
        protocol.transport.write(b"boom")
        await protocol.lost
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    async def test_heartbeats(self) -> None:
        """Heartbeat frames are counted, not delivered."""
        protocol = await self.connect("heartbeat")
        transport = self.transportOf(protocol)
        await self.eventually(lambda: transport.heartbeats >= 2)
        self.assertEqual(protocol.messages, [])
        transport.write(b"still here")
        self.assertEqual(await protocol.messagesArrived(1), [b"still here"])

    async def test_writeTakesUTF8(self) -> None:
        """The client's write takes UTF-8 bytes only, and says so at the call."""
        protocol = await self.connect()
        self.assertRaises(TypeError, protocol.transport.write, "text")
        self.assertRaises(ValueError, protocol.transport.write, b"\xff")

    async def test_notFound(self) -> None:
        """A URL that is not a SockJS endpoint fails the connect with ConnectError."""
        protocol = Recorder()
        d = self.client("nothing").connect(protocol)
        try:
            await d
        except ConnectError as e:
            self.assertIn("404", str(e))
        else:
            self.fail("connected to nothing")
        self.assertEqual(protocol.made, 0)

    async def test_refused(self) -> None:
        """A close frame instead of the open frame fails the connect with ConnectError."""
        protocol = Recorder()
        try:
            await self.client("refuse").connect(protocol)
        except ConnectError as e:
            self.assertIn("3000 Go away!", str(e))
        else:
            self.fail("connected to a refusing endpoint")
        self.assertEqual((protocol.made, protocol.reasons), (0, []))

    async def test_cancel(self) -> None:
        """Cancelling the connect gives up: the protocol is never connected."""
        protocol = Recorder()
        d = self.client().connect(protocol)
        d.cancel()
        try:
            await d
        except CancelledError:
            pass
        else:
            self.fail("not cancelled")
        self.assertEqual(protocol.made, 0)


class WebSocketClientTests(_ClientTests, TestCase):
    transportName = "websocket"


class _HTTPClientTests(_ClientTests):
    async def test_sendsBatched(self) -> None:
        """Messages written in one reactor turn travel in one xhr_send, as a JSON array."""
        pool = HTTPConnectionPool(self.reactor, persistent=True)
        self.addCleanup(pool.closeCachedConnections)
        agent = RecordingAgent(Agent(self.reactor, pool=pool))
        protocol = await self.connect("echo", agent)
        for message in [b"one", b"two", b"three"]:
            protocol.transport.write(message)
        self.assertEqual(await protocol.messagesArrived(3), [b"one", b"two", b"three"])
        sends = [url for url in agent.urls if url.endswith(b"/xhr_send")]
        self.assertEqual(len(sends), 1)

    async def test_receivingRenewed(self) -> None:
        """A receiving request that ends is followed by a new one while the session lasts."""
        pool = HTTPConnectionPool(self.reactor, persistent=True)
        self.addCleanup(pool.closeCachedConnections)
        agent = RecordingAgent(Agent(self.reactor, pool=pool))
        protocol = await self.connect("echo", agent)
        messages = [b"x" * 3000, b"y" * 3000, b"z" * 3000]
        for count, message in enumerate(messages, 1):
            protocol.transport.write(message)
            self.assertEqual(await protocol.messagesArrived(count), messages[:count])
        receivers = [url for url in agent.urls if not url.endswith(b"/xhr_send")]
        # The open frame ends the first poll; 4096 bytes end a streaming response.
        self.assertGreaterEqual(len(receivers), 3 if self.transportName == "xhr-polling" else 2)

    async def test_protocolError(self) -> None:
        """A server that does not speak SockJS fails the connect with ConnectError."""
        protocol = Recorder()
        try:
            await self.client("garbage").connect(protocol)
        except ConnectError as e:
            self.assertIn("SockJS protocol error: unknown frame 'nonsense'", str(e))
        else:
            self.fail("connected to garbage")
        self.assertEqual(protocol.made, 0)


class XHRStreamingClientTests(_HTTPClientTests, TestCase):
    transportName = "xhr-streaming"


class XHRPollingClientTests(_HTTPClientTests, TestCase):
    transportName = "xhr-polling"


class SockJSClientTests(SynchronousTestCase):
    """
    What L{SockJSClient} accepts.
    """

    def test_transports(self) -> None:
        """The three transports are offered; anything else is refused."""
        self.assertEqual(TRANSPORTS, ("websocket", "xhr-streaming", "xhr-polling"))
        self.assertRaises(ValueError, SockJSClient, Clock(), "http://h/echo", "jsonp-polling")

    def test_baseURL(self) -> None:
        """The base URL is an http:// URL without query; a trailing slash is dropped."""
        self.assertEqual(SockJSClient(Clock(), "http://h:1/echo/").baseURL, "http://h:1/echo")
        for bad in [
            "ftp://h/echo",
            "http:///echo",
            "http://h/echo?x=1",
            "/echo",
            "http://h/\u00e9",
        ]:
            self.assertRaises(ValueError, SockJSClient, Clock(), bad)


class _MemoryProxyFactory(portforward.ProxyFactory):
    """
    twisted.protocols.portforward, connecting out through a memory reactor.
    """

    def __init__(self, reactor: MemoryReactor) -> None:
        super().__init__("127.0.0.1", 6379)
        self.reactor = reactor

    def buildProtocol(self, addr: Any) -> portforward.ProxyServer:
        protocol = super().buildProtocol(addr)
        assert protocol is not None
        protocol.reactor = self.reactor  # type: ignore[assignment]
        return protocol


class HarnessTransportTests(SynchronousTestCase):
    """
    The harness's sessions behave as Twisted transports and as HTTP sessions.
    """

    def test_portforward(self) -> None:
        """portforward.ProxyFactory runs unchanged: reading waits for the outgoing connection, data flows both ways with flow control, and a close on either side closes the other."""
        reactor = MemoryReactor()
        harness = ProtocolHarness(_MemoryProxyFactory(reactor))
        client = harness.connect()
        client.send(b"early")
        self.assertEqual(client.sendsWaiting, 1)
        [(host, port, clientFactory, _, _)] = reactor.tcpClients
        self.assertEqual((host, port), ("127.0.0.1", 6379))
        upstream = clientFactory.buildProtocol(None)
        wire = StringTransport()
        upstream.makeConnection(wire)
        harness.flush()
        self.assertEqual((wire.value(), client.sendsWaiting), (b"early", 0))
        upstream.dataReceived(b"reply \xc3")
        upstream.dataReceived(b"\xa9")
        client.flush()
        self.assertEqual(client.received, [b"reply ", b"\xc3\xa9"])
        # The browser stops reading: the upstream socket is paused until it reads again.
        client.pause()
        upstream.dataReceived(b"x" * (harness.sessions.highWater + 1))
        client.flush()
        self.assertEqual(wire.producerState, "paused")
        client.resume()
        self.assertEqual(wire.producerState, "producing")
        # The upstream socket is full: the browser's messages wait.
        wire.producer.pauseProducing()
        client.send(b"held")
        self.assertEqual((wire.value(), client.sendsWaiting), (b"early", 1))
        wire.producer.resumeProducing()
        harness.flush()
        self.assertEqual((wire.value(), client.sendsWaiting), (b"earlyheld", 0))
        upstream.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(client.closed, (3000, "Go away!"))
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_httpSessionOutlivesItsReceiver(self) -> None:
        """An xhr-streaming client's session waits disconnect_delay for reconnect(), which gets what was queued meanwhile."""
        factory = RecordingFactory()
        harness = ProtocolHarness(factory, disconnect_delay=5)
        client = harness.connect(transport="xhr-streaming")
        protocol = factory.protocols[0]
        self.assertEqual(protocol.transport.transportName, "xhr-streaming")
        client.disconnect()
        protocol.transport.write(b"while away")
        harness.clock.advance(4.9)
        self.assertEqual((protocol.reasons, client.received), ([], []))
        client.reconnect()
        self.assertEqual(client.received, [b"while away"])
        client.send(b"back")
        self.assertEqual(protocol.messages, [b"back"])
        client.disconnect()
        harness.clock.advance(5)
        self.assertEqual(len(protocol.reasons), 1)
        protocol.reasons[0].trap(ConnectionLost)
        self.assertTrue(client.expired)
        self.assertRaises(RuntimeError, client.reconnect)
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_polling(self) -> None:
        """An xhr-polling client's receiving request ends after each frame; reconnect() is its next poll."""
        harness = ProtocolHarness(Factory.forProtocol(Echo))
        client = harness.connect(transport="xhr-polling")
        self.assertEqual((client.frames, client.receiving), (["o"], False))
        client.send(b"a")
        client.send(b"b")
        client.flush()
        self.assertEqual(client.received, [])
        client.reconnect()
        self.assertEqual((client.frames[-1], client.receiving), ('a["a","b"]', False))
        client.reconnect()
        self.assertTrue(client.receiving)
        harness.clock.advance(25)
        self.assertEqual((client.frames[-1], client.receiving), ("h", False))
        harness.clock.advance(5)
        self.assertTrue(client.expired)
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_httpInterrupted(self) -> None:
        """An HTTP client whose receiving request is aborted closes the session with 1002 and ConnectionLost."""
        factory = RecordingFactory()
        harness = ProtocolHarness(factory)
        client = harness.connect(transport="xhr-streaming")
        client.disconnect(aborted=True)
        factory.protocols[0].reasons[0].trap(ConnectionLost)
        client.reconnect()
        self.assertEqual(client.closed, (1002, "Connection interrupted"))
        harness.clock.advance(5)
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_unknownTransport(self) -> None:
        """connect() takes websocket, xhr-streaming or xhr-polling only."""
        self.assertRaises(
            ValueError, ProtocolHarness(Factory.forProtocol(Echo)).connect, transport="jsonp"
        )
