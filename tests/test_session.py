"""
The session state machine and the session factory, driven by a Clock with recording fakes.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPullProducer, IPushProducer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sockjs_twisted._options import SockJSOptions
from sockjs_twisted._registry import SessionFactory
from sockjs_twisted._session import CLOSED, CLOSING, OPEN
from sockjs_twisted.interfaces import ISockJSTransport

from ._fakes import RecordingFactory, RecordingSink, info


def decode(frame: str) -> Any:
    """
    A frame as data: 'o', 'h', a list of messages, or a (code, reason) tuple.
    """
    if frame in ("o", "h"):
        return frame
    if frame[0] == "a":
        return json.loads(frame[1:])
    if frame[0] == "c":
        return tuple(json.loads(frame[1:]))
    raise AssertionError(frame)


class SessionTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.userFactory = RecordingFactory()
        self.logged: list[tuple[str, str]] = []
        self.factory = self.makeFactory()

    def makeFactory(self, **options: Any) -> SessionFactory:
        options.setdefault(
            "log", lambda severity, message: self.logged.append((severity, message))
        )
        return SessionFactory(self.userFactory, SockJSOptions(**options), self.clock)

    def open(self, sessionId: str = "s", sink: Any = None, **kw: Any) -> tuple[Any, RecordingSink]:
        sink = sink if sink is not None else RecordingSink()
        session = self.factory.openSession(sessionId, sink, info(), **kw)
        return session, sink

    def assertNoTimers(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])


class OpenTests(SessionTestCase):
    def test_openFrameThenProtocol(self) -> None:
        """A new session sends 'o' and then connects one protocol, to the session."""
        session, sink = self.open()
        self.assertEqual(sink.frames, ["o"])
        [protocol] = self.userFactory.built
        self.assertEqual(protocol.events, ["makeConnection"])
        self.assertIs(protocol.transport, session)
        self.assertEqual(session.readyState, OPEN)
        self.assertTrue(verifyObject(ISockJSTransport, session))

    def test_buildProtocolGetsPeer(self) -> None:
        """buildProtocol is called once per session with the client's address."""
        self.open()
        [addr] = self.userFactory.addresses
        self.assertEqual((addr.host, addr.port), ("10.0.0.1", 5000))

    def test_refusedByFactory(self) -> None:
        """buildProtocol returning None refuses the session with c[3000,"Go away!"]."""
        self.userFactory.refuse = True
        session, sink = self.open()
        self.assertIsNone(session)
        self.assertEqual([decode(f) for f in sink.frames], [(3000, "Go away!")])
        self.assertIsNotNone(sink.finished)
        self.assertIsNone(self.factory.getSession("s"))
        self.assertNoTimers()

    def test_buildProtocolRaises(self) -> None:
        """buildProtocol raising refuses the session and logs the error."""

        def boom(addr: Any) -> None:
            raise RuntimeError("boom")

        self.userFactory.buildProtocol = boom  # type: ignore[method-assign]
        session, sink = self.open()
        self.assertIsNone(session)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual([decode(f) for f in sink.frames], [(3000, "Go away!")])

    def test_maxSessions(self) -> None:
        """Past max_sessions a new session is refused with c[1013,"Too many sessions"]."""
        self.factory = self.makeFactory(max_sessions=1)
        self.open("a")
        session, sink = self.open("b")
        self.assertIsNone(session)
        self.assertEqual([decode(f) for f in sink.frames], [(1013, "Too many sessions")])
        self.assertEqual(len(self.userFactory.built), 1)

    def test_doStartOnce(self) -> None:
        """The wrapped factory is started once, however many starts, and stopped once."""
        self.factory.start()
        self.open("a")
        self.factory.start()
        self.open("b")
        self.assertEqual(self.userFactory.starts, 1)
        self.factory.stop()
        self.factory.stop()
        self.assertEqual(self.userFactory.stops, 1)

    def test_connectionProperties(self) -> None:
        """The session exposes sockjs-node's connection properties."""
        session, sink = self.open()
        session.attach  # noqa: B018
        self.assertEqual(session.remoteAddress, "10.0.0.1")
        self.assertEqual(session.remotePort, 5000)
        self.assertEqual(session.url, "/echo/0/s/xhr")
        self.assertEqual(session.pathname, "/echo/0/s/xhr")
        self.assertEqual(session.protocol, "xhr-polling")
        self.assertEqual(session.sessionId, "s")
        self.assertEqual(session.prefix, "/echo")  # no prefix option: where it is mounted
        self.assertEqual(session.getHost().port, 8081)

    def test_connectedAndDisconnecting(self) -> None:
        """connected and disconnecting follow readyState, as LineReceiver expects."""
        session, sink = self.open()
        self.assertEqual((session.connected, session.disconnecting), (True, False))
        session.loseConnection()
        self.assertEqual((session.connected, session.disconnecting), (False, True))

    def test_propertiesFollowLatestReceiver(self) -> None:
        """Headers and url come from the latest receiving request."""
        session, sink = self.open(sink=RecordingSink(polling=True))
        session.attach(RecordingSink(polling=True), info(url="/echo/0/s/xhr?x=1", origin="o"))
        self.assertEqual(session.url, "/echo/0/s/xhr?x=1")
        self.assertEqual(session.pathname, "/echo/0/s/xhr")
        self.assertEqual(session.headers, {"origin": "o"})


class WriteTests(SessionTestCase):
    def test_coalescedPerTurn(self) -> None:
        """Writes in one reactor turn go out as one a[...] frame, in order."""
        session, sink = self.open()
        for m in (b"a", b"b", b"c"):
            session.write(m)
        self.assertEqual(sink.frames, ["o"])
        self.clock.advance(0)
        self.assertEqual([decode(f) for f in sink.frames], ["o", ["a", "b", "c"]])

    def test_noTimerPerMessage(self) -> None:
        """A thousand writes schedule one flush, beside the heartbeat timer."""
        session, sink = self.open()
        for i in range(1000):
            session.write(b"%d" % i)
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)

    def test_oneFlushForManySessions(self) -> None:
        """Writes to many sessions in one turn share one scheduled flush."""
        sessions = [self.open(str(i))[0] for i in range(10)]
        for s in sessions:
            s.write(b"x")
        flushes = [c for c in self.clock.getDelayedCalls() if c.getTime() == 0]
        self.assertEqual(len(flushes), 1)

    def test_writeSequenceIsOneMessage(self) -> None:
        """writeSequence sends the concatenation as one message."""
        session, sink = self.open()
        session.writeSequence([b"a", b"b"])
        self.clock.advance(0)
        self.assertEqual(decode(sink.frames[-1]), ["ab"])

    def test_invalidUTF8(self) -> None:
        """write() of invalid UTF-8 raises ValueError at the call and sends nothing."""
        session, sink = self.open()
        e = self.assertRaises(ValueError, session.write, b"\xff")
        self.assertIn("UTF-8", str(e))
        self.clock.advance(0)
        self.assertEqual(sink.frames, ["o"])

    def test_notBytes(self) -> None:
        """write() of str raises TypeError."""
        session, sink = self.open()
        self.assertRaises(TypeError, session.write, "text")

    def test_escaping(self) -> None:
        """Messages are JSON-quoted with the characters browsers mangle escaped."""
        session, sink = self.open()
        session.write('"\\\n\u2028\ufeff\uffff é'.encode())
        self.clock.advance(0)
        self.assertEqual(sink.frames[-1], 'a["\\"\\\\\\n\\u2028\\ufeff\\uffff é"]')

    def test_broadcastQuotesOnce(self) -> None:
        """The same bytes written to many sessions in a turn is quoted once, delivered to all."""
        sessions = [self.open(str(i)) for i in range(3)]
        data = "caf\u00e9".encode()
        for s, _ in sessions:
            s.write(data)
        self.clock.advance(0)
        for _, sink in sessions:
            self.assertEqual(decode(sink.frames[-1]), ["caf\u00e9"])

    def test_writeAfterCloseIgnored(self) -> None:
        """Writes after close are dropped, as on a TCP transport."""
        session, sink = self.open()
        session.loseConnection()
        session.write(b"late")
        self.clock.advance(0)
        self.assertNotIn(["late"], [decode(f) for f in sink.frames])

    def test_queuedWhileNoReceiver(self) -> None:
        """Messages written between polls wait for the next poll, which gets them at once."""
        session, first = self.open(sink=RecordingSink(polling=True))
        self.assertEqual(first.frames, ["o"])
        session.write(b"1")
        session.write(b"2")
        self.clock.advance(0)
        second = RecordingSink(polling=True)
        session.attach(second, info())
        self.assertEqual([decode(f) for f in second.frames], [["1", "2"]])
        self.assertIsNotNone(second.finished)

    def test_pausedSinkHoldsQueue(self) -> None:
        """A paused sink gets nothing until it resumes; then all of it, in order."""
        session, sink = self.open()
        sink.pause()
        session.write(b"1")
        self.clock.advance(0)
        session.write(b"2")
        self.clock.advance(0)
        self.assertEqual(sink.frames, ["o"])
        sink.resume()
        self.assertEqual([decode(f) for f in sink.frames], ["o", ["1", "2"]])


class ReceiveTests(SessionTestCase):
    def test_oneDataReceivedPerMessage(self) -> None:
        """Each message is one dataReceived, in order, as UTF-8 bytes."""
        session, sink = self.open()
        session.messagesReceived([b"a", "\u00e9".encode(), b""])
        self.assertEqual(self.userFactory.built[0].received, [b"a", "\u00e9".encode(), b""])

    def test_notAfterClose(self) -> None:
        """Messages for a closing session are not delivered."""
        session, sink = self.open()
        session.loseConnection()
        session.messagesReceived([b"a"])
        self.assertEqual(self.userFactory.built[0].received, [])

    def test_dataReceivedRaises(self) -> None:
        """An exception in dataReceived is logged once and closes only that session with 1011."""
        self.userFactory.onData = lambda p, d: 1 / 0
        session, sink = self.open("a")
        other, otherSink = self.open("b")
        session.messagesReceived([b"x", b"y"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(decode(sink.frames[-1]), (1011, "Internal error"))
        self.assertEqual(other.readyState, OPEN)

    def test_connectionMadeRaises(self) -> None:
        """An exception in connectionMade is logged and closes the session with 1011."""
        self.userFactory.onConnect = lambda p: 1 / 0
        session, sink = self.open()
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual([decode(f) for f in sink.frames], ["o", (1011, "Internal error")])
        self.assertEqual(self.userFactory.built[0].events, ["makeConnection", "connectionLost"])


class TimerTests(SessionTestCase):
    def test_heartbeat(self) -> None:
        """An attached receiver gets 'h' every heartbeat_delay seconds."""
        session, sink = self.open()
        self.clock.advance(24.9)
        self.assertEqual(sink.frames, ["o"])
        self.clock.advance(0.1)
        self.assertEqual(sink.frames, ["o", "h"])
        self.clock.advance(25)
        self.assertEqual(sink.frames, ["o", "h", "h"])

    def test_heartbeatEndsPoll(self) -> None:
        """A waiting poll is answered with 'h' after heartbeat_delay."""
        session, first = self.open(sink=RecordingSink(polling=True))
        poll = RecordingSink(polling=True)
        session.attach(poll, info())
        self.clock.advance(25)
        self.assertEqual(poll.frames, ["h"])
        self.assertIsNotNone(poll.finished)

    def test_disconnectTimeout(self) -> None:
        """Without a receiver for disconnect_delay, the session dies with ConnectionLost."""
        session, sink = self.open(sink=RecordingSink(polling=True))
        self.clock.advance(4.9)
        self.assertIs(self.factory.getSession("s"), session)
        self.clock.advance(0.1)
        self.assertIsNone(self.factory.getSession("s"))
        protocol = self.userFactory.built[0]
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        protocol.lost.trap(ConnectionLost)
        self.assertEqual(session.readyState, CLOSED)
        self.assertNoTimers()

    def test_receiverKeepsAlive(self) -> None:
        """A session with a receiver attached does not time out."""
        session, sink = self.open()
        self.clock.advance(100)
        self.assertIs(self.factory.getSession("s"), session)
        self.assertEqual(session.readyState, OPEN)

    def test_customDelays(self) -> None:
        """heartbeat_delay and disconnect_delay are honoured."""
        self.factory = self.makeFactory(heartbeat_delay=2, disconnect_delay=1)
        session, sink = self.open()
        self.clock.advance(2)
        self.assertEqual(sink.frames, ["o", "h"])
        sink.end()
        self.clock.advance(1)
        self.assertIsNone(self.factory.getSession("s"))
        self.assertNoTimers()


class CloseTests(SessionTestCase):
    def test_closeWithReceiver(self) -> None:
        """close() delivers queued messages, then the close frame, and ends the receiver."""
        session, sink = self.open()
        session.write(b"last")
        session.close(3001, "bye")
        self.assertEqual([decode(f) for f in sink.frames], ["o", ["last"], (3001, "bye")])
        self.assertEqual(sink.finished, (3001, "bye"))
        protocol = self.userFactory.built[0]
        protocol.lost.trap(ConnectionDone)
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        self.assertEqual(session.readyState, CLOSED)

    def test_closeFrameServedUntilReaped(self) -> None:
        """After close, every receiver gets the close frame until disconnect_delay passes."""
        session, sink = self.open()
        session.loseConnection()
        for _ in range(2):
            again = RecordingSink()
            session.attach(again, info())
            self.assertEqual([decode(f) for f in again.frames], [(3000, "Go away!")])
            self.clock.advance(2)
        self.clock.advance(5)
        self.assertIsNone(self.factory.getSession("s"))
        self.assertNoTimers()

    def test_closeWithoutReceiver(self) -> None:
        """Closed between polls: the next poll gets the messages, the one after the close frame."""
        session, first = self.open(sink=RecordingSink(polling=True))
        session.write(b"m")
        session.loseConnection()
        protocol = self.userFactory.built[0]
        self.assertEqual(session.readyState, CLOSING)
        self.assertIsNone(protocol.lost)
        poll = RecordingSink(polling=True)
        session.attach(poll, info())
        self.assertEqual([decode(f) for f in poll.frames], [["m"]])
        poll = RecordingSink(polling=True)
        session.attach(poll, info())
        self.assertEqual([decode(f) for f in poll.frames], [(3000, "Go away!")])
        protocol.lost.trap(ConnectionDone)

    def test_closedNeverDeliveredIsLost(self) -> None:
        """A close frame no client came for ends in ConnectionLost when the session is reaped."""
        session, first = self.open(sink=RecordingSink(polling=True))
        session.loseConnection()
        self.clock.advance(5)
        self.userFactory.built[0].lost.trap(ConnectionLost)
        self.assertNoTimers()

    def test_exactlyOneConnectionLost(self) -> None:
        """However a session ends, its protocol gets connectionLost exactly once."""
        session, sink = self.open()
        session.loseConnection()
        session.close(3001, "again")
        sink.end(aborted=True)
        self.clock.advance(10)
        self.assertEqual(self.userFactory.built[0].events.count("connectionLost"), 1)

    def test_anotherConnection(self) -> None:
        """A second receiver gets c[2010,...] and the first keeps the session."""
        session, sink = self.open()
        second = RecordingSink()
        session.attach(second, info())
        self.assertEqual(
            [decode(f) for f in second.frames], [(2010, "Another connection still open")]
        )
        self.assertIsNotNone(second.finished)
        session.write(b"x")
        self.clock.advance(0)
        self.assertEqual(decode(sink.frames[-1]), ["x"])

    def test_interrupted(self) -> None:
        """A receiver aborted by the client closes the session with 1002 and ConnectionLost."""
        session, sink = self.open()
        sink.end(aborted=True)
        self.userFactory.built[0].lost.trap(ConnectionLost)
        again = RecordingSink()
        session.attach(again, info())
        self.assertEqual([decode(f) for f in again.frames], [(1002, "Connection interrupted")])
        self.clock.advance(5)
        self.assertIsNone(self.factory.getSession("s"))
        self.assertNoTimers()

    def test_closeAll(self) -> None:
        """closeAll closes every session and gives every protocol connectionLost now."""
        a, sinkA = self.open("a")
        b, sinkB = self.open("b", sink=RecordingSink(polling=True))
        self.factory.closeAll(1001, "Server shutting down")
        for protocol in self.userFactory.built:
            self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        self.assertEqual(decode(sinkA.frames[-1]), (1001, "Server shutting down"))
        self.assertEqual(len(self.factory), 0)
        self.assertNoTimers()


class WebSocketSessionTests(SessionTestCase):
    def test_cleanClose(self) -> None:
        """A websocket session ends with its connection: ConnectionDone when clean."""
        session, sink = self.open(None, registered=False)
        self.assertEqual(len(self.factory), 1)
        sink.end(aborted=False)
        self.userFactory.built[0].lost.trap(ConnectionDone)
        self.assertEqual(len(self.factory), 0)
        self.assertNoTimers()

    def test_uncleanClose(self) -> None:
        """A websocket that drops gives ConnectionLost."""
        session, sink = self.open(None, registered=False)
        sink.end(aborted=True)
        self.userFactory.built[0].lost.trap(ConnectionLost)
        self.assertNoTimers()

    def test_rawHasNoFramingNoHeartbeat(self) -> None:
        """A raw websocket session gets plain text messages and no heartbeat timer."""
        session, sink = self.open(None, registered=False, framed=False)
        session.write(b'"quoted"')
        self.clock.advance(0)
        self.assertEqual(sink.messages, [['"quoted"']])
        self.assertEqual(self.clock.getDelayedCalls(), [])


@implementer(IPushProducer)
class PushProducer:
    def __init__(self) -> None:
        self.events: list[str] = []

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


@implementer(IPullProducer)
class PullProducer(PushProducer):
    pass


class BackpressureTests(SessionTestCase):
    def test_pausedPastHighWater(self) -> None:
        """A push producer is paused past the high-water mark and resumed when drained."""
        session, sink = self.open()
        sink.pause()
        producer = PushProducer()
        session.registerProducer(producer, True)
        session.write(b"x" * (self.factory.highWater + 1))
        self.assertEqual(producer.events, ["pause"])
        session.write(b"y")
        self.assertEqual(producer.events, ["pause"])
        sink.resume()
        self.assertEqual(producer.events, ["pause", "resume"])

    def test_pullProducer(self) -> None:
        """A pull producer is asked for more at registration and after each drain."""
        session, sink = self.open()
        producer = PullProducer()
        session.registerProducer(producer, False)
        self.assertEqual(producer.events, ["resume"])
        session.write(b"x")
        self.clock.advance(0)
        self.assertEqual(producer.events, ["resume", "resume"])

    def test_stoppedOnClose(self) -> None:
        """The producer is stopped when the session ends."""
        session, sink = self.open()
        producer = PushProducer()
        session.registerProducer(producer, True)
        session.loseConnection()
        self.assertEqual(producer.events, ["stop"])

    def test_secondProducer(self) -> None:
        """Registering a second producer without unregistering raises RuntimeError."""
        session, sink = self.open()
        session.registerProducer(PushProducer(), True)
        self.assertRaises(RuntimeError, session.registerProducer, PushProducer(), True)
        session.unregisterProducer()
        session.registerProducer(PushProducer(), True)

    def test_hardCap(self) -> None:
        """A protocol that ignores backpressure is closed with 1013 past the queue cap."""
        self.factory.highWater = 100
        self.factory.maxQueue = 1000
        session, sink = self.open()
        sink.pause()
        other, otherSink = self.open("other")
        session.write(b"x" * 1001)
        # Never from inside write(): the protocol hears of it in the next turn.
        self.assertEqual(session.readyState, CLOSING)
        self.assertIsNone(self.userFactory.built[0].lost)
        session.write(b"dropped")
        self.clock.advance(0)
        self.assertEqual(session.readyState, CLOSED)
        self.userFactory.built[0].lost.trap(ConnectionLost)
        self.assertEqual(other.readyState, OPEN)
        sink.resume()
        self.assertEqual([decode(f) for f in sink.frames], ["o", (1013, "Outgoing queue over limit")])


class InterleavingTests(SessionTestCase):
    @settings(
        derandomize=True,
        max_examples=200,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        deadline=None,
    )
    @given(
        st.lists(
            st.sampled_from(
                ["write", "write", "write", "turn", "poll", "stream", "end", "pause", "resume"]
            ),
            max_size=60,
        )
    )
    def test_exactlyOnceInOrder(self, steps: list[str]) -> None:
        """Any interleaving of writes, turns, polls, streams and pauses delivers each message once, in order."""
        clock = Clock()
        factory = SessionFactory(RecordingFactory(), SockJSOptions(disconnect_delay=1000), clock)
        sinks = [RecordingSink(polling=True)]
        session = factory.openSession("s", sinks[0], info())
        assert session is not None
        written = []
        for step in steps:
            current = sinks[-1]
            if step == "write":
                data = b"%d" % len(written)
                written.append(data.decode())
                session.write(data)
            elif step == "turn":
                clock.advance(0)
            elif step in ("poll", "stream") and (current.finished is not None):
                sink = RecordingSink(polling=step == "poll")
                sinks.append(sink)
                session.attach(sink, info())
            elif step == "end" and current.finished is None:
                current.end()
            elif step == "pause" and current.finished is None:
                current.pause()
            elif step == "resume" and current.sinkPaused and current.finished is None:
                current.resume()
            clock.advance(1)  # heartbeats happen; the disconnect timeout never does
        if sinks[-1].finished is None:
            sinks[-1].sinkPaused = False
            sinks[-1].end()
        final = RecordingSink(polling=False)
        session.attach(final, info())
        clock.advance(0)
        sinks.append(final)
        received = []
        for sink in sinks:
            for frame in sink.frames:
                data = decode(frame)
                if isinstance(data, list):
                    received.extend(data)
        self.assertEqual(received, written)
