"""
The session state machine and the session factory, driven by a Clock with recording fakes.
"""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPullProducer, IPushProducer
from twisted.internet.task import Clock
from twisted.protocols.basic import FileSender
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

import sockjs_twisted
from sockjs_twisted import _session
from sockjs_twisted._framing import decodeHTTPPayload, decodeWebSocketPayload
from sockjs_twisted._options import SockJSOptions
from sockjs_twisted._registry import SessionRegistry
from sockjs_twisted._session import CLOSED, CLOSING, OPEN, SockJSTransport
from sockjs_twisted.interfaces import ISockJSTransport

from ._fakes import RecordingFactory, RecordingProducer, RecordingProtocol, RecordingSink, info

try:
    import tracemalloc
except ImportError:  # PyPy
    tracemalloc = None  # type: ignore[assignment]


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

    def makeFactory(self, **options: Any) -> SessionRegistry:
        options.setdefault(
            "log", lambda severity, message: self.logged.append((severity, message))
        )
        return SessionRegistry(self.userFactory, SockJSOptions(**options), self.clock)

    def open(self, sessionId: str = "s", sink: Any = None, **kw: Any) -> tuple[Any, RecordingSink]:
        sink = sink if sink is not None else RecordingSink()
        session = self.factory.openSession(sessionId, sink, info(), **kw)
        return session, sink

    def assertNoTimers(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def assertLoggedError(self, *parts: str) -> None:
        """
        Exactly one error went to the log option, and it holds every one of C{parts}
        (a traceback included); nothing went to twisted.logger.
        """
        errors = [message for severity, message in self.logged if severity == "error"]
        self.assertEqual(len(errors), 1, errors)
        for part in parts:
            self.assertIn(part, errors[0])
        self.assertIn("Traceback", errors[0])
        self.assertEqual(self.flushLoggedErrors(), [])


class OpenTests(SessionTestCase):
    def test_openFrameThenProtocol(self) -> None:
        """A new session sends 'o' and then connects one protocol, to the session."""
        session, sink = self.open()
        self.assertEqual(sink.frames, ["o"])
        [protocol] = self.userFactory.built
        self.assertEqual(protocol.events, ["makeConnection"])
        self.assertIs(protocol.transport, session.transport)
        self.assertEqual(session.readyState, OPEN)
        self.assertTrue(verifyObject(ISockJSTransport, session.transport))

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
        self.assertLoggedError("buildProtocol raised", "RuntimeError: boom")
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
        self.assertEqual(session.transport.remoteAddress, "10.0.0.1")
        self.assertEqual(session.transport.remotePort, 5000)
        self.assertEqual(session.transport.url, "/echo/0/s/xhr")
        self.assertEqual(session.transport.pathname, "/echo/0/s/xhr")
        self.assertEqual(session.transport.transportName, "xhr-polling")
        self.assertEqual(session.sessionId, "s")
        self.assertEqual(
            session.transport.prefix, "/echo"
        )  # no prefix option: where it is mounted
        self.assertEqual(session.transport.getHost().port, 8081)

    def test_connectedAndDisconnecting(self) -> None:
        """connected and disconnecting follow readyState, as LineReceiver expects."""
        session, sink = self.open()
        self.assertEqual(
            (session.transport.connected, session.transport.disconnecting), (True, False)
        )
        session.transport.loseConnection()
        self.assertEqual(
            (session.transport.connected, session.transport.disconnecting), (False, True)
        )

    def test_propertiesFollowLatestReceiver(self) -> None:
        """Headers and url come from the latest receiving request."""
        session, sink = self.open(sink=RecordingSink(polling=True))
        session.attach(RecordingSink(polling=True), info(url="/echo/0/s/xhr?x=1", origin="o"))
        self.assertEqual(session.transport.url, "/echo/0/s/xhr?x=1")
        self.assertEqual(session.transport.pathname, "/echo/0/s/xhr")
        self.assertEqual(session.transport.headers, {"origin": "o"})


class WriteTests(SessionTestCase):
    def test_coalescedPerTurn(self) -> None:
        """Writes in one reactor turn go out as one a[...] frame, in order."""
        session, sink = self.open()
        for m in (b"a", b"b", b"c"):
            session.transport.write(m)
        self.assertEqual(sink.frames, ["o"])
        self.clock.advance(0)
        self.assertEqual([decode(f) for f in sink.frames], ["o", ["a", "b", "c"]])

    def test_noTimerPerMessage(self) -> None:
        """A thousand writes schedule one flush, beside the heartbeat timer."""
        session, sink = self.open()
        for i in range(1000):
            session.transport.write(b"%d" % i)
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)

    def test_oneFlushForManySessions(self) -> None:
        """Writes to many sessions in one turn share one scheduled flush."""
        sessions = [self.open(str(i))[0] for i in range(10)]
        for s in sessions:
            s.transport.write(b"x")
        flushes = [c for c in self.clock.getDelayedCalls() if c.getTime() == 0]
        self.assertEqual(len(flushes), 1)

    def test_writeSequenceIsOneMessage(self) -> None:
        """writeSequence sends the concatenation as one message."""
        session, sink = self.open()
        session.transport.writeSequence([b"a", b"b"])
        self.clock.advance(0)
        self.assertEqual(decode(sink.frames[-1]), ["ab"])

    def test_invalidUTF8(self) -> None:
        """write() of invalid UTF-8 raises ValueError at the call and sends nothing."""
        session, sink = self.open()
        e = self.assertRaises(ValueError, session.transport.write, b"\xff")
        self.assertIn("UTF-8", str(e))
        self.clock.advance(0)
        self.assertEqual(sink.frames, ["o"])

    def test_notBytes(self) -> None:
        """write() of str raises TypeError."""
        session, sink = self.open()
        self.assertRaises(TypeError, session.transport.write, "text")

    def test_escaping(self) -> None:
        """Messages are JSON-quoted with the characters browsers mangle escaped."""
        session, sink = self.open()
        session.transport.write('"\\\n\u2028\ufeff\uffff é'.encode())
        self.clock.advance(0)
        self.assertEqual(sink.frames[-1], 'a["\\"\\\\\\n\\u2028\\ufeff\\uffff é"]')

    def test_broadcastQuotesOnce(self) -> None:
        """The same bytes written to many sessions in a turn is quoted once, delivered to all."""
        sessions = [self.open(str(i)) for i in range(3)]
        data = "caf\u00e9".encode()
        for s, _ in sessions:
            s.transport.write(data)
        self.clock.advance(0)
        for _, sink in sessions:
            self.assertEqual(decode(sink.frames[-1]), ["caf\u00e9"])

    def test_writeAfterCloseIgnored(self) -> None:
        """Writes after close are dropped, as on a TCP transport."""
        session, sink = self.open()
        session.transport.loseConnection()
        session.transport.write(b"late")
        self.clock.advance(0)
        self.assertNotIn(["late"], [decode(f) for f in sink.frames])

    def test_queuedWhileNoReceiver(self) -> None:
        """Messages written between polls wait for the next poll, which gets them at once."""
        session, first = self.open(sink=RecordingSink(polling=True))
        self.assertEqual(first.frames, ["o"])
        session.transport.write(b"1")
        session.transport.write(b"2")
        self.clock.advance(0)
        second = RecordingSink(polling=True)
        session.attach(second, info())
        self.assertEqual([decode(f) for f in second.frames], [["1", "2"]])
        self.assertIsNotNone(second.finished)

    def test_pausedSinkHoldsQueue(self) -> None:
        """A paused sink gets nothing until it resumes; then all of it, in order."""
        session, sink = self.open()
        sink.pause()
        session.transport.write(b"1")
        self.clock.advance(0)
        session.transport.write(b"2")
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
        session.transport.loseConnection()
        session.messagesReceived([b"a"])
        self.assertEqual(self.userFactory.built[0].received, [])

    def test_dataReceivedRaises(self) -> None:
        """An exception in dataReceived is logged once and closes only that session with 1011."""
        self.userFactory.onData = lambda p, d: 1 / 0
        session, sink = self.open("a")
        other, otherSink = self.open("b")
        session.messagesReceived([b"x", b"y"])
        self.assertLoggedError("dataReceived raised", "ZeroDivisionError")
        self.assertEqual(decode(sink.frames[-1]), (1011, "Internal error"))
        self.assertEqual(other.readyState, OPEN)

    def test_connectionMadeRaises(self) -> None:
        """An exception in connectionMade is logged and closes the session with 1011."""
        self.userFactory.onConnect = lambda p: 1 / 0
        session, sink = self.open()
        self.assertLoggedError("makeConnection raised", "ZeroDivisionError")
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

    def test_pollsAnsweredAtOnceMoveTheDeadline(self) -> None:
        """A poll answered at once restarts disconnect_delay from its end, one timer in all."""
        session, first = self.open(sink=RecordingSink(polling=True))
        for _ in range(3):
            self.clock.advance(3)
            session.transport.write(b"x")
            self.clock.advance(0)
            poll = RecordingSink(polling=True)
            session.attach(poll, info())
            self.assertEqual(poll.frames, ['a["x"]'])
            self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        # The last poll ended at 9: the session lives until 14.
        self.clock.advance(4.9)
        self.assertIs(self.factory.getSession("s"), session)
        self.clock.advance(0.1)
        self.assertIsNone(self.factory.getSession("s"))
        self.assertNoTimers()

    def test_abortedPollAfterAnsweredOne(self) -> None:
        """A poll cut off after one answered at once gets its own disconnect_delay."""
        session, first = self.open(sink=RecordingSink(polling=True))
        self.clock.advance(3)
        session.transport.write(b"x")
        self.clock.advance(0)
        session.attach(RecordingSink(polling=True), info())
        self.clock.advance(3)
        waiting = RecordingSink(polling=True)
        session.attach(waiting, info())
        waiting.end(aborted=True)
        self.assertEqual(session.readyState, CLOSED)
        # The close frame is served for disconnect_delay after the cut, until 11.
        self.clock.advance(4.9)
        self.assertIs(self.factory.getSession("s"), session)
        self.clock.advance(0.1)
        self.assertIsNone(self.factory.getSession("s"))
        self.assertNoTimers()

    def test_receiverKeepsAlive(self) -> None:
        """A session with a receiver attached does not time out."""
        session, sink = self.open()
        self.clock.advance(100)
        self.assertIs(self.factory.getSession("s"), session)
        self.assertEqual(session.readyState, OPEN)

    def test_oneReactorTimerForAllSessions(self) -> None:
        """The heartbeats of many sessions wait behind one reactor timer, and all beat."""
        sinks = [self.open(f"s{i}")[1] for i in range(100)]
        self.clock.advance(0)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(25)
        self.assertEqual({tuple(sink.frames) for sink in sinks}, {("o", "h")})
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        for sink in sinks:
            sink.end()
        self.clock.advance(5)
        self.assertEqual(self.factory.timers.pending(), 0)
        self.assertNoTimers()

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
        session.transport.write(b"last")
        session.transport.close(3001, "bye")
        self.assertEqual([decode(f) for f in sink.frames], ["o", ["last"], (3001, "bye")])
        self.assertEqual(sink.finished, (3001, "bye"))
        protocol = self.userFactory.built[0]
        protocol.lost.trap(ConnectionDone)
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        self.assertEqual(session.readyState, CLOSED)

    def test_closeFrameServedUntilReaped(self) -> None:
        """After close, every receiver gets the close frame until disconnect_delay passes."""
        session, sink = self.open()
        session.transport.loseConnection()
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
        session.transport.write(b"m")
        session.transport.loseConnection()
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
        session.transport.loseConnection()
        self.clock.advance(5)
        self.userFactory.built[0].lost.trap(ConnectionLost)
        self.assertNoTimers()

    def test_exactlyOneConnectionLost(self) -> None:
        """However a session ends, its protocol gets connectionLost exactly once."""
        session, sink = self.open()
        session.transport.loseConnection()
        session.transport.close(3001, "again")
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
        session.transport.write(b"x")
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
        session.transport.write(b'"quoted"')
        self.clock.advance(0)
        self.assertEqual(sink.messages, [['"quoted"']])
        self.assertEqual(self.clock.getDelayedCalls(), [])


@implementer(IPullProducer)
class PullProducer(RecordingProducer):
    pass


class BackpressureTests(SessionTestCase):
    def test_pausedPastHighWater(self) -> None:
        """A push producer is paused past the high-water mark and resumed when drained."""
        session, sink = self.open()
        sink.pause()
        producer = RecordingProducer()
        session.transport.registerProducer(producer, True)
        session.transport.write(b"x" * (self.factory.highWater + 1))
        self.assertEqual(producer.events, ["pause"])
        session.transport.write(b"y")
        self.assertEqual(producer.events, ["pause"])
        sink.resume()
        self.assertEqual(producer.events, ["pause", "resume"])

    def test_pullProducer(self) -> None:
        """A pull producer is asked for more at registration and after each drain."""
        session, sink = self.open()
        producer = PullProducer()
        session.transport.registerProducer(producer, False)
        self.assertEqual(producer.events, ["resume"])
        session.transport.write(b"x")
        self.clock.advance(0)
        self.assertEqual(producer.events, ["resume", "resume"])

    def test_stoppedOnClose(self) -> None:
        """The producer is stopped when the session ends."""
        session, sink = self.open()
        producer = RecordingProducer()
        session.transport.registerProducer(producer, True)
        session.transport.loseConnection()
        self.assertEqual(producer.events, ["stop"])

    def test_secondProducer(self) -> None:
        """Registering a second producer without unregistering raises RuntimeError."""
        session, sink = self.open()
        session.transport.registerProducer(RecordingProducer(), True)
        self.assertRaises(
            RuntimeError, session.transport.registerProducer, RecordingProducer(), True
        )
        session.transport.unregisterProducer()
        session.transport.registerProducer(RecordingProducer(), True)

    def test_hardCap(self) -> None:
        """A protocol that ignores backpressure is closed with 1013 past the queue cap."""
        self.factory.highWater = 100
        self.factory.maxQueue = 1000
        session, sink = self.open()
        sink.pause()
        other, otherSink = self.open("other")
        session.transport.write(b"x" * 1001)
        # Never from inside write(): the protocol hears of it in the next turn.
        self.assertEqual(session.readyState, CLOSING)
        self.assertIsNone(self.userFactory.built[0].lost)
        session.transport.write(b"dropped")
        self.clock.advance(0)
        self.assertEqual(session.readyState, CLOSED)
        self.userFactory.built[0].lost.trap(ConnectionLost)
        self.assertEqual(other.readyState, OPEN)
        sink.resume()
        self.assertEqual(
            [decode(f) for f in sink.frames], ["o", (1013, "Outgoing queue over limit")]
        )


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
        factory = SessionRegistry(RecordingFactory(), SockJSOptions(disconnect_delay=1000), clock)
        sinks = [RecordingSink(polling=True)]
        session = factory.openSession("s", sinks[0], info())
        assert session is not None
        written = []
        for step in steps:
            current = sinks[-1]
            if step == "write":
                data = b"%d" % len(written)
                written.append(data.decode())
                session.transport.write(data)
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


class TransportTests(SessionTestCase):
    def test_transportIsNotTheSession(self) -> None:
        """The protocol's transport has the transport API and none of the session machinery."""
        session, sink = self.open()
        transport = self.userFactory.built[0].transport
        self.assertIsInstance(transport, SockJSTransport)
        self.assertIsNot(transport, session)
        self.assertTrue(verifyObject(ISockJSTransport, transport))
        self.assertTrue(IPushProducer.providedBy(transport))
        for name in ["attach", "detach", "fail", "flush", "shutdown", "messagesReceived"]:
            self.assertFalse(hasattr(transport, name), name)

    def test_protocolIsTheProtocol(self) -> None:
        """transport.protocol is the protocol object, as in Twisted; None once it is lost."""
        session, sink = self.open()
        protocol = self.userFactory.built[0]
        self.assertIs(protocol.transport.protocol, protocol)
        protocol.transport.loseConnection()
        self.assertIsNone(protocol.transport.protocol)

    def test_transportName(self) -> None:
        """transportName is the name of the receiving connection's transport."""
        session, sink = self.open()
        self.assertEqual(session.transport.transportName, "xhr-polling")
        self.assertIn("xhr-polling", repr(session.transport))

    def test_readyStateConstants(self) -> None:
        """CONNECTING, OPEN, CLOSING and CLOSED are exported, 0 to 3, and readyState uses them."""
        self.assertEqual(
            (
                sockjs_twisted.CONNECTING,
                sockjs_twisted.OPEN,
                sockjs_twisted.CLOSING,
                sockjs_twisted.CLOSED,
            ),
            (0, 1, 2, 3),
        )
        session, sink = self.open()
        self.assertEqual(session.transport.readyState, sockjs_twisted.OPEN)
        session.transport.close()
        self.assertEqual(session.transport.readyState, sockjs_twisted.CLOSED)

    def test_noTimerForOverflow(self) -> None:
        """An overflowing queue ends the session in the flush its write scheduled: no timer of its own."""
        self.factory.highWater = 10
        self.factory.maxQueue = 100
        session, sink = self.open()
        sink.pause()
        session.transport.write(b"x" * 101)
        now = [c for c in self.clock.getDelayedCalls() if c.getTime() == self.clock.seconds()]
        self.assertEqual(len(now), 1)
        session.transport.abortConnection()
        self.userFactory.built[0].lost.trap(ConnectionAborted)
        self.clock.advance(0)
        self.assertEqual(self.userFactory.built[0].events.count("connectionLost"), 1)


LONE_SURROGATES = ["x\ud800y", "x\udc00y", "\udc00\ud800"]


class SurrogateTests(SessionTestCase):
    def test_echoedExactly(self) -> None:
        """A lone surrogate reaches the protocol as UTF-8 with surrogatepass, and its echo is the same JSON string."""
        self.userFactory.onData = lambda p, d: p.transport.write(d)
        session, sink = self.open()
        for text in LONE_SURROGATES:
            payload = json.dumps([text]).encode("ascii")
            session.messagesReceived(decodeHTTPPayload(payload))
            session.messagesReceived(decodeWebSocketPayload(payload.decode("ascii")))
        self.clock.advance(0)
        expected = [t.encode("utf-8", "surrogatepass") for t in LONE_SURROGATES for _ in "ab"]
        self.assertEqual(self.userFactory.built[0].received, expected)
        frame = sink.frames[-1]
        self.assertTrue(frame.isascii())
        self.assertEqual(json.loads(frame[1:]), [t for t in LONE_SURROGATES for _ in "ab"])
        self.assertIn('"x\\ud800y"', frame)

    def test_otherInvalidUTF8Raises(self) -> None:
        """write() still raises for bytes that are not UTF-8 even with surrogates allowed."""
        session, sink = self.open()
        for data in [b"\xff", b"a\xc3b", b"\xf4\x90\x80\x80", b"\xc0\x80", b"\xed\xa0x"]:
            self.assertRaises(ValueError, session.transport.write, data)
        self.clock.advance(0)
        self.assertEqual(sink.frames, ["o"])

    def test_rawWebSocketRefuses(self) -> None:
        """A raw websocket cannot carry a lone surrogate: write() raises at the call."""
        session, sink = self.open(None, registered=False, framed=False)
        self.assertRaises(
            ValueError, session.transport.write, "\ud800".encode("utf-8", "surrogatepass")
        )


class StreamWriterTests(SessionTestCase):
    def test_characterSplitAcrossWrites(self) -> None:
        """A character cut at the end of a write is sent with the next write."""
        session, sink = self.open()
        session.transport.write(b"caf\xc3")
        session.transport.write(b"\xa9!")
        session.transport.write(b"\xe2")
        session.transport.write(b"\x82")
        session.transport.write(b"\xac")
        session.transport.write("\ud800".encode("utf-8", "surrogatepass")[:2])
        session.transport.write(b"\x80")
        self.clock.advance(0)
        self.assertEqual(decode(sink.frames[-1]), ["caf", "\u00e9!", "\u20ac", "\ud800"])

    def test_neverUTF8Raises(self) -> None:
        """Only bytes that can never become UTF-8 raise; a carried tail that cannot continue raises too."""
        session, sink = self.open()
        self.assertRaises(ValueError, session.transport.write, b"\xf4\x90")
        session.transport.write(b"\xc3")
        self.assertRaises(ValueError, session.transport.write, b"x")
        session.transport.write(b"ok")
        self.clock.advance(0)
        self.assertEqual(decode(sink.frames[-1]), ["ok"])

    def test_fileSender(self) -> None:
        """A non-ASCII file sent with FileSender arrives intact."""
        text = "caf\u00e9 \u20ac \U0001f600 \u4e2d\u6587\n" * 5000
        data = text.encode("utf-8")
        session, sink = self.open()
        done = FileSender().beginFileTransfer(io.BytesIO(data), session.transport)
        for _ in range(100):
            self.clock.advance(0)
        self.successResultOf(done)
        received = [m for f in sink.frames[1:] for m in decode(f)]
        self.assertGreater(len(received), 1)
        self.assertEqual("".join(received), text)


class AbortAndFailureTests(SessionTestCase):
    def test_abortDropsQueue(self) -> None:
        """abortConnection drops what is queued, sends the close frame, and gives ConnectionAborted at once."""
        session, sink = self.open()
        session.transport.write(b"dropped")
        session.transport.abortConnection()
        protocol = self.userFactory.built[0]
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        protocol.lost.trap(ConnectionAborted)
        self.assertEqual([decode(f) for f in sink.frames], ["o", (3000, "Go away!")])
        self.clock.advance(0)
        self.clock.advance(5)
        self.assertIsNone(self.factory.getSession("s"))
        self.assertNoTimers()

    def test_abortBetweenPolls(self) -> None:
        """Aborted with no receiver attached, the protocol is told at once and the next poll gets the close frame."""
        session, first = self.open(sink=RecordingSink(polling=True))
        session.transport.write(b"dropped")
        session.transport.close(4000, "closing")
        session.transport.abortConnection()
        self.userFactory.built[0].lost.trap(ConnectionAborted)
        poll = RecordingSink(polling=True)
        session.attach(poll, info())
        self.assertEqual([decode(f) for f in poll.frames], [(4000, "closing")])
        self.clock.advance(5)
        self.assertNoTimers()

    def test_websocketAbort(self) -> None:
        """An aborted websocket session sends its close frame and is gone."""
        session, sink = self.open(None, registered=False)
        session.transport.abortConnection()
        self.assertEqual(sink.finished, (3000, "Go away!"))
        self.assertEqual(len(self.factory), 0)
        self.assertNoTimers()

    def test_dataReceivedFailureIsTheReason(self) -> None:
        """An exception in dataReceived ends the session with 1011 and is what connectionLost gets."""
        self.userFactory.onData = lambda p, d: 1 / 0
        session, sink = self.open()
        session.transport.write(b"dropped")
        session.messagesReceived([b"x", b"never"])
        protocol = self.userFactory.built[0]
        protocol.lost.trap(ZeroDivisionError)
        self.assertEqual(protocol.received, [b"x"])
        self.assertEqual([decode(f) for f in sink.frames], ["o", (1011, "Internal error")])
        self.assertEqual(protocol.events.count("connectionLost"), 1)

    def test_connectionMadeFailureIsTheReason(self) -> None:
        """An exception in connectionMade is what connectionLost gets."""
        self.userFactory.onConnect = lambda p: 1 / 0
        self.open()
        self.userFactory.built[0].lost.trap(ZeroDivisionError)

    def test_connectionLostRaises(self) -> None:
        """A connectionLost that raises is logged once; the session is still gone, with no timer left."""

        def boom(reason: object) -> None:
            raise RuntimeError("in connectionLost")

        session, sink = self.open(None, registered=False)
        self.userFactory.built[0].connectionLost = boom  # type: ignore[method-assign]
        session.transport.loseConnection()
        self.assertLoggedError("connectionLost raised", "RuntimeError: in connectionLost")
        self.assertEqual(len(self.factory), 0)
        self.assertEqual(session.readyState, CLOSED)
        self.assertNoTimers()

    def test_failingFlush(self) -> None:
        """A flush that raises closes that session with 1011, logs once, and the other sessions still get theirs."""

        class BrokenSink(RecordingSink):
            def writeMessages(self, quoted: list[str]) -> None:
                raise RuntimeError("broken sink")

        session, sink = self.open("a", sink=BrokenSink())
        other, otherSink = self.open("b")
        session.transport.write(b"x")
        other.transport.write(b"y")
        self.clock.advance(0)
        self.assertEqual(decode(sink.frames[-1]), (1011, "Internal error"))
        self.userFactory.built[0].lost.trap(RuntimeError)
        self.assertEqual(decode(otherSink.frames[-1]), ["y"])
        self.assertLoggedError("flush failed", "RuntimeError: broken sink")

    def test_brokenSinkAtTheEnd(self) -> None:
        """A sink that raises while the session sends its close frame does not keep connectionLost from the protocol."""

        class BrokenSink(RecordingSink):
            def writeFrame(self, frame: str) -> None:
                if frame.startswith("c"):
                    raise RuntimeError("broken sink")
                super().writeFrame(frame)

        session, sink = self.open(sink=BrokenSink())
        session.transport.write(b"x")
        session.shutdown(1001, "Server shutting down")
        self.userFactory.built[0].lost.trap(ConnectionDone)
        self.assertEqual(sink.messages, [['"x"']])
        self.assertLoggedError("close frame could not be sent", "RuntimeError: broken sink")
        self.clock.advance(0)
        self.assertNoTimers()

    def test_registerProducerAfterClose(self) -> None:
        """A producer registered on a closed session is stopped at once and never registered."""
        session, sink = self.open()
        session.transport.loseConnection()
        producer = RecordingProducer()
        session.transport.registerProducer(producer, True)
        self.assertEqual(producer.events, ["stop"])
        session.transport.registerProducer(RecordingProducer(), True)

    def test_logDefaultsToTwistedLogger(self) -> None:
        """Without the log option, errors from user code go to twisted.logger with their traceback."""
        self.factory = SessionRegistry(self.userFactory, SockJSOptions(), self.clock)
        self.userFactory.onData = lambda p, d: 1 / 0
        session, sink = self.open()
        session.messagesReceived([b"x"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_logOption(self) -> None:
        """The log option gets the session's messages: a queue over its limit is an error."""
        self.factory.highWater = 10
        self.factory.maxQueue = 100
        session, sink = self.open()
        sink.pause()
        session.transport.write(b"x" * 101)
        self.assertEqual(
            self.logged,
            [("error", "SockJS session s closed: its outgoing queue passed 100 bytes")],
        )


class HoldingProtocol(RecordingProtocol):
    """
    Pauses its transport when told to in a message, and echoes every message.
    """

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self.transport.write(data)
        if data == b"pause":
            self.transport.pauseProducing()
        elif data == b"blink":
            self.transport.pauseProducing()
            self.transport.resumeProducing()


class IncomingFlowTests(SessionTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.userFactory.protocol = HoldingProtocol  # type: ignore[assignment]
        self.userFactory.buildProtocol = self.build  # type: ignore[method-assign]

    def build(self, addr: Any) -> HoldingProtocol:
        protocol = HoldingProtocol()
        self.userFactory.built.append(protocol)
        return protocol

    def test_pauseHoldsTheRest(self) -> None:
        """Messages after pauseProducing wait, and are delivered in order on resumeProducing."""
        session, sink = self.open()
        protocol = self.userFactory.built[0]
        waiting = session.messagesReceived([b"1", b"pause", b"3"])
        self.assertIsNotNone(waiting)
        self.assertNoResult(waiting)
        later = session.messagesReceived([b"4"])
        assert later is not None
        self.assertNoResult(later)
        self.assertEqual(protocol.received, [b"1", b"pause"])
        self.assertEqual(session.incomingBacklog, 2)
        protocol.transport.resumeProducing()
        # Not from inside resumeProducing: from the reactor, in the next turn.
        self.assertEqual(protocol.received, [b"1", b"pause"])
        self.assertNoResult(waiting)
        self.clock.advance(0)
        self.assertEqual(protocol.received, [b"1", b"pause", b"3", b"4"])
        self.successResultOf(waiting)
        self.successResultOf(later)
        self.assertEqual(session.incomingBacklog, 0)
        self.assertEqual([decode(f) for f in sink.frames], ["o", ["1", "pause"], ["3", "4"]])

    def test_holdsAgainAfterDraining(self) -> None:
        """A session that held and delivered messages holds the next ones again, in order."""
        session, sink = self.open()
        protocol = self.userFactory.built[0]
        session.messagesReceived([b"pause", b"2"])
        protocol.transport.resumeProducing()
        self.clock.advance(0)
        waiting = session.messagesReceived([b"pause", b"4", b"5"])
        self.assertEqual(session.incomingBacklog, 2)
        protocol.transport.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(protocol.received, [b"pause", b"2", b"pause", b"4", b"5"])
        self.successResultOf(waiting)
        self.assertEqual(session.incomingBacklog, 0)

    def test_noHoldingQueueUntilNeeded(self) -> None:
        """A session keeps no queue of its own for held messages until one is held, nor once it ended."""
        session, sink = self.open()
        session.messagesReceived([b"1"])
        self.assertIs(session._incoming, _session._NOTHING_HELD)
        session.messagesReceived([b"pause", b"held"])
        self.assertIsNot(session._incoming, _session._NOTHING_HELD)
        session.transport.loseConnection()
        self.assertIs(session._incoming, _session._NOTHING_HELD)
        self.assertEqual(len(_session._NOTHING_HELD), 0)

    def test_pausedAfterLastMessage(self) -> None:
        """A send whose last message paused the protocol is answered only on resume."""
        session, sink = self.open()
        waiting = session.messagesReceived([b"pause"])
        assert waiting is not None
        self.assertNoResult(waiting)
        session.transport.resumeProducing()
        self.successResultOf(waiting)

    def test_pauseAndResumeInside(self) -> None:
        """Pausing and resuming within dataReceived delivers everything without waiting."""
        session, sink = self.open()
        self.assertIsNone(session.messagesReceived([b"blink", b"2"]))
        self.assertEqual(self.userFactory.built[0].received, [b"blink", b"2"])

    def test_pausedFromOutside(self) -> None:
        """A transport paused before any message holds all of them until resumed."""
        session, sink = self.open()
        session.transport.pauseProducing()
        waiting = session.messagesReceived([b"a"])
        self.assertEqual(self.userFactory.built[0].received, [])
        session.transport.resumeProducing()
        session.transport.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(self.userFactory.built[0].received, [b"a"])
        self.successResultOf(waiting)

    def test_endReleasesWaiters(self) -> None:
        """When a paused session ends, the held messages are dropped and every waiting send is released."""
        session, sink = self.open()
        waiting = session.messagesReceived([b"pause", b"held"])
        session.transport.loseConnection()
        self.successResultOf(waiting)
        self.assertEqual(session.incomingBacklog, 0)
        self.assertEqual(self.userFactory.built[0].received, [b"pause"])

    def test_stopProducingCloses(self) -> None:
        """stopProducing on the transport closes the session, as on TCP."""
        session, sink = self.open()
        session.transport.stopProducing()
        self.assertEqual(decode(sink.frames[-1]), (3000, "Go away!"))


class LifecycleTests(SessionTestCase):
    @settings(
        derandomize=True,
        max_examples=300,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        deadline=None,
    )
    @given(
        st.lists(
            st.sampled_from(
                [
                    "write",
                    "write",
                    "turn",
                    "poll",
                    "stream",
                    "end",
                    "drop",
                    "pause",
                    "resume",
                    "close",
                    "fail",
                    "expire",
                    "shutdown",
                    "overflow",
                    "abort",
                    "raise",
                    "receive",
                    "receive",
                    "readPause",
                    "readResume",
                ]
            ),
            max_size=40,
        ),
        st.booleans(),
    )
    def test_exactlyOneConnectionLost(self, steps: list[str], websocket: bool) -> None:
        """In any interleaving of writes, receives, pauses both ways, receivers, closes, failures, expiry, shutdown, overflow and abort, the protocol gets one connectionLost, messages arrive once and in order both ways, and nothing is left behind."""
        clock = Clock()
        userFactory = RecordingFactory()
        factory = SessionRegistry(
            userFactory, SockJSOptions(disconnect_delay=1000, log=lambda s, m: None), clock
        )
        factory.highWater = 100
        factory.maxQueue = 1000
        sinks = [RecordingSink(polling=not websocket)]
        session = factory.openSession(
            None if websocket else "s", sinks[0], info(), registered=not websocket
        )
        assert session is not None
        transport = session.transport
        protocol = userFactory.built[0]
        written: list[str] = []
        sent: list[bytes] = []
        for step in steps:
            current = sinks[-1]
            if step == "write":
                if transport.connected:
                    data = str(len(written))
                    written.append(data)
                    transport.write(data.encode())
                else:
                    transport.write(b"late")
            elif step == "turn":
                clock.advance(0)
            elif step in ("poll", "stream") and not websocket and current.finished is not None:
                sink = RecordingSink(polling=step == "poll")
                sinks.append(sink)
                session.attach(sink, info())
            elif step in ("end", "drop") and current.finished is None:
                current.end(aborted=step == "drop")
            elif step == "pause" and current.finished is None:
                current.pause()
            elif step == "resume" and current.sinkPaused and current.finished is None:
                current.resume()
            elif step == "close":
                transport.close(3001, "bye")
            elif step == "fail":
                session.fail((1011, "Internal error"), "failed")
            elif step == "expire":
                clock.advance(1000)
            elif step == "shutdown":
                factory.closeAll(1001, "Server shutting down")
            elif step == "overflow":
                transport.write(b"x" * 1001)
            elif step == "abort":
                transport.abortConnection()
            elif step == "raise":
                protocol.onData = lambda p, d: 1 / 0 if d == b"boom" else None
                if transport.connected:
                    sent.append(b"boom")
                session.messagesReceived([b"boom"])
            elif step == "receive":
                batch = [b"in%d" % (len(sent) + i) for i in range(3)]
                if transport.connected:
                    sent.extend(batch)
                session.messagesReceived(batch)
            elif step == "readPause":
                transport.pauseProducing()
            elif step == "readResume":
                transport.resumeProducing()
            clock.advance(1)
            self.assertLessEqual(protocol.events.count("connectionLost"), 1)
            if protocol.lost is not None:
                self.assertEqual(session.readyState, CLOSED)
        openAtEnd = transport.connected
        if openAtEnd:
            transport.resumeProducing()
            clock.advance(0)
            # Everything, up to a message that made the protocol raise.
            end = sent.index(b"boom") + 1 if b"boom" in sent else len(sent)
            self.assertEqual(protocol.received, sent[:end])
        # The client reads what is left, then goes away for good.
        last = sinks[-1]
        if last.finished is None and last.sinkPaused:
            last.resume()
        if last.finished is None:
            last.end()
        if not websocket:
            final = RecordingSink(polling=False)
            sinks.append(final)
            session.attach(final, info())
            clock.advance(0)
            if final.finished is None:
                final.end()
        clock.advance(2000)
        self.assertEqual(protocol.events.count("connectionLost"), 1)
        received = [
            m
            for sink in sinks
            for frame in sink.frames
            if isinstance(decode(frame), list)
            for m in decode(frame)
            if m != "x" * 1001
        ]
        dropping = {"drop", "fail", "expire", "shutdown", "overflow", "abort", "raise"}
        self.assertEqual(received, written[: len(received)])
        got = protocol.received
        self.assertEqual(got, sent[: len(got)])
        if "readPause" not in steps:
            self.assertEqual(got, sent)
        if not websocket and not dropping.intersection(steps):
            self.assertEqual(received, written)
        self.assertEqual(len(factory), 0)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.flushLoggedErrors()


class QueueMemoryTests(SessionTestCase):
    def test_memoryFollowsBytes(self) -> None:
        """A queue of 100,000 small messages costs about their text, not an object per message, and all of them arrive in order."""
        session, sink = self.open()
        sink.pause()
        messages = [b"%05d" % i for i in range(100000)]
        if tracemalloc is not None:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        for message in messages:
            session.transport.write(message)
        if tracemalloc is not None:
            grown = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            self.assertLess(grown, 1.5 * sum(len(m) + 3 for m in messages))
        # PyPy has no tracemalloc; everywhere, the queue holds few objects.
        self.assertLess(len(session._queue), len(messages) // 50)
        self.assertEqual(session.readyState, OPEN)
        sink.resume()
        self.assertEqual(
            [m for f in sink.frames[1:] for m in decode(f)], [m.decode() for m in messages]
        )
