"""
The hub: the in-process hub on real sessions (in memory, on a clock), and the Redis hub
against a real redis-server of the test's own, restarted under it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from sockjs_twisted import _registry
from sockjs_twisted import hub as hubModule
from sockjs_twisted._redis import RedisError, RedisProtocol, encodeCommand
from sockjs_twisted.hub import IHub, LocalHub, RedisHub, _Backoff, hubFromURL, parseRedisURL
from sockjs_twisted.testing import ProtocolHarness
from sockjs_twisted.testserver import BroadcastFactory

from ._scaleout import RedisServer, sleep, until

_log = Logger()


class RecordingTransport:
    """
    Anything with write(bytes): what the hub needs of a subscriber.
    """

    def __init__(self, fail: bool = False) -> None:
        self.written: list[bytes] = []
        self.fail = fail

    def write(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("this subscriber is broken")
        self.written.append(data)

    def loseConnection(self) -> None:
        pass


class Idle(Protocol):
    pass


class LocalHubTests(SynchronousTestCase):
    def test_interface(self) -> None:
        """Both hubs provide IHub."""
        self.assertTrue(verifyObject(IHub, LocalHub()))
        self.assertTrue(verifyObject(IHub, RedisHub(reactor=reactor)))

    def test_publishReachesSubscribersInOrder(self) -> None:
        """A publish reaches every subscriber of its channel, in publish order, once each."""
        hub = LocalHub()
        a, b, other = RecordingTransport(), RecordingTransport(), RecordingTransport()
        hub.subscribe("room", a)
        hub.subscribe("room", b)
        hub.subscribe("room", b)
        hub.subscribe("elsewhere", other)
        for n in range(5):
            hub.publish("room", b"m%d" % n)
        expected = [b"m%d" % n for n in range(5)]
        self.assertEqual((a.written, b.written, other.written), (expected, expected, []))
        self.assertEqual((hub.published, hub.delivered), (5, 10))

    def test_unsubscribe(self) -> None:
        """An unsubscribed transport gets nothing more; an empty channel is forgotten."""
        hub = LocalHub()
        a, b = RecordingTransport(), RecordingTransport()
        hub.subscribe("room", a)
        hub.subscribe("room", b)
        hub.subscribe("hall", a)
        hub.unsubscribe("room", a)
        hub.unsubscribe("room", a)
        hub.publish("room", b"x")
        hub.unsubscribeAll(b)
        hub.publish("room", b"y")
        hub.publish("hall", b"z")
        self.assertEqual((a.written, b.written), ([b"z"], [b"x"]))
        hub.unsubscribeAll(a)
        self.assertEqual(hub.channels(), [])

    def test_closedTransportsForgotten(self) -> None:
        """A subscriber found closed (disconnecting) is unsubscribed from every channel."""
        hub = LocalHub()
        harness = ProtocolHarness(Factory.forProtocol(Idle))
        gone, staying = harness.connect(), harness.connect()
        for client in (gone, staying):
            hub.subscribe("room", client.transport)
            hub.subscribe("hall", client.transport)
        gone.disconnect()
        hub.publish("room", b"x")
        harness.flush()
        self.assertEqual(hub.subscribers("room"), [staying.transport])
        self.assertEqual(hub.subscribers("hall"), [staying.transport])
        self.assertEqual((hub.delivered, staying.received), (1, [b"x"]))
        staying.disconnect()

    def test_badMessages(self) -> None:
        """publish() takes UTF-8 bytes and says so at the call."""
        hub = LocalHub()
        hub.subscribe("room", RecordingTransport())
        self.assertRaises(TypeError, hub.publish, "room", "text")
        self.assertRaises(ValueError, hub.publish, "room", b"\xff")

    def test_brokenSubscriber(self) -> None:
        """A subscriber whose write raises is logged; the others still get the message."""
        hub = LocalHub()
        a, broken, b = RecordingTransport(), RecordingTransport(fail=True), RecordingTransport()
        for t in (a, broken, b):
            hub.subscribe("room", t)
        hub.publish("room", b"m")
        self.assertEqual((a.written, b.written, hub.failed), ([b"m"], [b"m"], 1))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_sessionsQuotedOnce(self) -> None:
        """Publishing to sessions of several endpoints checks and quotes the message once."""
        quoted: list[str] = []
        real = hubModule.quoteMessage

        def counting(text: str) -> str:
            quoted.append(text)
            return real(text)

        self.patch(hubModule, "quoteMessage", counting)
        self.patch(_registry, "quoteMessage", counting)
        hub = LocalHub()
        one = ProtocolHarness(Factory.forProtocol(Idle))
        two = ProtocolHarness(Factory.forProtocol(Idle), clock=one.clock)
        clients = [h.connect() for h in (one, two, one, two, one)]
        for client in clients:
            hub.subscribe("room", client.transport)
        message = '"quoted" \u2028 once'.encode()
        hub.publish("room", message)
        one.flush()
        self.assertEqual(len(quoted), 1)
        self.assertEqual([c.received for c in clients], [[message]] * 5)
        for client in clients:
            client.disconnect()

    def test_slowSubscriberDoesNotStall(self) -> None:
        """A session that does not read is closed at its queue limit; the others get all."""
        hub = LocalHub()
        harness = ProtocolHarness(
            Factory.forProtocol(Idle), max_queue_size=100_000, max_body_size=1000
        )
        slow, fast = harness.connect(), harness.connect()
        for client in (slow, fast):
            hub.subscribe("room", client.transport)
        slow.pause()
        message = b"x" * 1000
        for _ in range(200):
            hub.publish("room", message)
            harness.flush()
        self.assertEqual(slow.closed, (1013, "Outgoing queue over limit"))
        self.assertEqual(len(fast.received), 200)
        self.assertIsNone(fast.closed)
        fast.disconnect()

    def test_broadcastServiceUsesHub(self) -> None:
        """The /broadcast test service publishes through its factory's hub."""
        hub = LocalHub()
        outside = RecordingTransport()
        hub.subscribe("broadcast", outside)
        harness = ProtocolHarness(BroadcastFactory(hub))
        a, b = harness.connect(), harness.connect()
        a.send(b"hello")
        harness.flush()
        self.assertEqual(
            (a.received, b.received, outside.written), ([b"hello"], [b"hello"], [b"hello"])
        )
        a.disconnect()
        b.disconnect()
        self.assertEqual(hub.subscribers("broadcast"), [outside])


class RedisURLTests(SynchronousTestCase):
    def test_parse(self) -> None:
        """redis:// URLs give host, port (6379 by default) and password."""
        self.assertEqual(parseRedisURL("redis://h"), ("h", 6379, None))
        self.assertEqual(parseRedisURL("redis://:s%40cret@h:7000/2"), ("h", 7000, "s@cret"))
        for bad in ["http://h", "redis://", "redis://h:x"]:
            self.assertRaises(ValueError, parseRedisURL, bad)

    def test_hubFromURL(self) -> None:
        """hubFromURL builds an unstarted RedisHub."""
        hub = hubFromURL("redis://127.0.0.1:7001", reactor=reactor)
        self.assertEqual((hub.host, hub.port, hub.running), ("127.0.0.1", 7001, 0))

    def test_backoff(self) -> None:
        """Reconnection delays double from the first up to the maximum, jittered down to half."""
        backoff = _Backoff(0.1, 2.0, lambda: 0.999999)
        delays = [round(backoff.next(), 3) for _ in range(7)]
        self.assertEqual(delays, [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
        backoff.reset()
        low = _Backoff(0.1, 2.0, lambda: 0.0)
        self.assertEqual(round(low.next(), 3), 0.05)
        self.assertEqual(round(backoff.next(), 3), 0.1)


class RedisHubTests(TestCase):
    """
    Two hubs (two processes' worth) on one real redis-server.
    """

    timeout = 60

    def setUp(self) -> None:
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)

    def hub(self, **kw: Any) -> RedisHub:
        hub = RedisHub("127.0.0.1", self.redis.port, reactor=reactor, **kw)
        hub.startService()
        self.addCleanup(hub.stopService)
        return hub

    async def test_acrossHubs(self) -> None:
        """A publish reaches subscribers on another hub, in order; its own, once."""
        a, b = self.hub(), self.hub()
        onA, onB = RecordingTransport(), RecordingTransport()
        a.subscribe("room", onA)
        b.subscribe("room", onB)
        await until(reactor, lambda: a.connected and b.connected, 10, "both hubs connected")
        # SUBSCRIBE is sent; PING on the same connection would prove it took effect, but
        # a round trip through PUBLISH proves it as well:
        b.publish("room", b"ready")
        await until(reactor, lambda: onA.written == [b"ready"], 10, "the first message")
        for n in range(200):
            a.publish("room", b"%d" % n)
        expected = [b"%d" % n for n in range(200)]
        await until(reactor, lambda: len(onB.written) >= 201, 10, "200 messages")
        self.assertEqual(onB.written, [b"ready", *expected])
        self.assertEqual(onA.written, [b"ready", *expected])
        self.assertEqual((b.received, b.missed, b.duplicates), (200, 0, 0))

    async def test_channelSubscribedLater(self) -> None:
        """A channel's first subscriber subscribes the hub on Redis; its last, unsubscribes."""
        a, b = self.hub(), self.hub()
        await until(reactor, lambda: a.connected and b.connected, 10, "both hubs connected")
        late = RecordingTransport()
        b.subscribe("late", late)
        while not late.written:
            a.publish("late", b"hello")
            await sleep(reactor, 0.05)
        b.unsubscribe("late", late)
        count = len(late.written)
        before = b.received
        await sleep(reactor, 0.2)
        a.publish("late", b"gone")
        await sleep(reactor, 0.3)
        self.assertEqual((len(late.written), b.received), (count, before))

    async def test_redisRestart(self) -> None:
        """
        Redis restarted under a stream of publishes: the hubs reconnect and resubscribe,
        delivery resumes within seconds, in order, and every loss is counted.
        """
        a, b = self.hub(), self.hub()
        onB = RecordingTransport()
        b.subscribe("room", onB)
        await until(reactor, lambda: a.connected and b.connected, 10, "both hubs connected")
        sent = 0

        async def publish(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                a.publish("room", b"%d" % sent)
                sent += 1
                await sleep(reactor, 0.005)

        await publish(100)
        await until(reactor, lambda: len(onB.written) >= 100, 10, "the first 100")
        self.redis.stop()
        await publish(100)
        self.assertTrue(a.buffered > 0)
        self.redis.start()
        restarted = reactor.seconds()
        await publish(100)
        resumed = await until(
            reactor,
            lambda: onB.written[-1:] == [b"%d" % (sent - 1)],
            20,
            "the last message after the restart",
        )
        numbers = [int(m) for m in onB.written]
        self.assertEqual(numbers, sorted(numbers))
        lost = sent - len(numbers)
        self.assertEqual(lost, b.missed + a.dropped)
        _log.info(
            "Redis restart: {sent} published, {lost} lost ({missed} missed, {dropped} "
            "dropped), {duplicates} duplicates skipped; delivery resumed {resumed:.2f} s "
            "after the restart",
            sent=sent,
            lost=lost,
            missed=b.missed,
            dropped=a.dropped,
            duplicates=b.duplicates,
            resumed=reactor.seconds() - restarted,
        )
        self.assertLess(resumed, 15)

    async def test_bufferBound(self) -> None:
        """While Redis is down, at most bufferSize publishes wait; the oldest are dropped."""
        a = self.hub(bufferSize=10)
        await until(reactor, lambda: a.connected, 10, "the hub connected")
        self.redis.stop()
        await until(reactor, lambda: not a.connected, 10, "the hub to notice")
        for n in range(25):
            a.publish("room", b"%d" % n)
        self.assertEqual((a.buffered, a.dropped), (10, 15))


class RedisProtocolTests(SynchronousTestCase):
    """
    The hub's Redis protocol, over a StringTransport, fed in chunks down to one byte.
    """

    def connect(self, **kw: Any) -> tuple[RedisProtocol, StringTransport]:
        protocol = RedisProtocol(**kw)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def feed(self, protocol: RedisProtocol, data: bytes, size: int) -> None:
        for i in range(0, len(data), size):
            protocol.dataReceived(data[i : i + size])

    def test_encode(self) -> None:
        """Commands go out as RESP arrays of bulk strings."""
        self.assertEqual(
            encodeCommand(b"PUBLISH", b"c", b"a\r\nb"),
            b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$4\r\na\r\nb\r\n",
        )

    def test_repliesInOrder(self) -> None:
        """Replies of every kind fire the commands' Deferreds in order, however they are cut."""
        replies = b":3\r\n+OK\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n:1\r\n$0\r\n\r\n-ERR no\r\n"
        for size in (1, 2, 3, 7, len(replies)):
            protocol, transport = self.connect()
            ds = [protocol.command(b"X") for _ in range(6)]
            self.feed(protocol, replies, size)
            self.assertEqual(
                [self.successResultOf(d) for d in ds[:5]], [3, b"OK", b"he\r\no", None, [1, b""]]
            )
            self.failureResultOf(ds[5], RedisError)

    def test_pubsub(self) -> None:
        """Pushed messages go to onMessage; SUBSCRIBE fires once every channel is confirmed."""
        messages: list[tuple[bytes, bytes]] = []
        protocol, transport = self.connect(onMessage=lambda c, m: messages.append((c, m)))
        d = protocol.subscribe([b"a", b"b"])
        self.assertEqual(transport.value(), b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n")
        data = (
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
            b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nm1\r\n"
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
            b"*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$2\r\nm2\r\n"
        )
        self.feed(protocol, data, 1)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(messages, [(b"a", b"m1"), (b"b", b"m2")])

    def test_connectionLost(self) -> None:
        """Commands waiting when the connection is lost fail; waiters hear of it."""
        protocol, transport = self.connect()
        d = protocol.command(b"PING")
        s = protocol.subscribe([b"a"])
        lost = protocol.whenDisconnected()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(d, ConnectionLost)
        self.failureResultOf(s, ConnectionLost)
        self.successResultOf(lost)

    def test_auth(self) -> None:
        """With a password, ready fires after AUTH succeeds, and fails if it fails."""
        protocol, transport = self.connect(password="pw")
        self.assertEqual(transport.value(), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n")
        self.assertNoResult(protocol.ready)
        protocol.dataReceived(b"+OK\r\n")
        self.assertIs(self.successResultOf(protocol.ready), protocol)
        bad, transport = self.connect(password="nope")
        bad.dataReceived(b"-WRONGPASS invalid\r\n")
        self.failureResultOf(bad.ready, RedisError)
        self.assertTrue(transport.disconnecting)

    def test_garbage(self) -> None:
        """A reply that is not RESP closes the connection."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"?what\r\n")
        self.assertTrue(transport.disconnecting)
