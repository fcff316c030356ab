"""
The websocket-multiplex wire rules (sockjs_twisted.multiplex), over real SockJS sessions
driven by a Clock, and over a real websocket of a SockJSResource.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.protocols.portforward import ProxyFactory, ProxyServer
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from sockjs_twisted._deadline import Timers
from sockjs_twisted._options import SockJSOptions
from sockjs_twisted._registry import SessionRegistry
from sockjs_twisted.interfaces import ISockJSTransport
from sockjs_twisted.multiplex import (
    ChannelTransport,
    MultiplexFactory,
    MultiplexProtocol,
    jsEscape,
)
from sockjs_twisted.testserver import EchoFactory

from ._fakes import RecordingFactory, RecordingProducer, RecordingProtocol, RecordingSink, info
from ._harness import sockjsClient


def scheduled(clock: Clock) -> list[str]:
    """
    What C{clock} will call: a session keeps its heartbeat (behind its registry's
    L{Timers}); a channel's delivery of held messages shows as C{_drainHeld}.
    """
    names = []
    for call in clock.getDelayedCalls():
        owner = getattr(call.func, "__self__", None)  # type: ignore[attr-defined]
        if isinstance(owner, Timers):
            names += [timer.func.__name__ for timer in owner.getDelayedCalls()]  # type: ignore[union-attr]
        else:
            names.append(call.func.__name__)  # type: ignore[attr-defined]
    return sorted(names)


def writeUntil(write: Any, done: Any, chunk: bytes = b"f" * 4096) -> None:
    """
    Call C{write(chunk)} until C{done()}: past the session's 64 KiB high-water mark
    within 100 writes, or the test fails (rather than loop for ever).
    """
    for _ in range(100):
        if done():
            return
        write(chunk)
    raise AssertionError("still not paused after 100 writes")


def channelOf(protocol: RecordingProtocol) -> ChannelTransport:
    """
    The channel transport of C{protocol}.
    """
    transport = protocol.transport
    assert isinstance(transport, ChannelTransport), transport
    return transport


class MultiplexTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.chat = RecordingFactory()
        self.news = RecordingFactory()
        self.mux = MultiplexFactory({"chat": self.chat, "news": self.news, "echo": EchoFactory()})
        self.logged: list[tuple[str, str]] = []
        self.registry = SessionRegistry(
            self.mux,
            SockJSOptions(log=lambda severity, message: self.logged.append((severity, message))),
            self.clock,
        )
        self.registry.start()
        self.sink = RecordingSink()
        session = self.registry.openSession("s", self.sink, info())
        assert session is not None
        self.session = session
        self.sink.messages.clear()

    def send(self, *lines: str) -> None:
        """
        The client sends C{lines}, one SockJS message each, in one batch.
        """
        self.session.messagesReceived([line.encode("utf-8") for line in lines])
        self.clock.advance(0)

    def received(self) -> list[str]:
        """
        The SockJS messages the client got since the last call.
        """
        out = [json.loads("[" + ",".join(batch) + "]") for batch in self.sink.messages]
        self.sink.messages.clear()
        return [m for batch in out for m in batch]

    def one(self, factory: RecordingFactory) -> RecordingProtocol:
        [protocol] = factory.built
        return protocol


class WireTests(MultiplexTestCase):
    def test_subscribeBuildsOneProtocolPerChannel(self) -> None:
        """sub,<topic> builds one protocol with the topic's factory and connects it."""
        self.send("sub,chat")
        protocol = self.one(self.chat)
        self.assertEqual(protocol.events, ["makeConnection"])
        self.assertIsInstance(channelOf(protocol), ChannelTransport)
        self.assertEqual(self.news.built, [])

    def test_messageReachesItsChannel(self) -> None:
        """msg,<topic>,<payload> gives the payload, commas and all, to that channel only."""
        self.send("sub,chat", "sub,news", "msg,chat,a,b,,c", "msg,news,")
        self.assertEqual(self.one(self.chat).received, [b"a,b,,c"])
        self.assertEqual(self.one(self.news).received, [b""])

    def test_writeSendsMsgLine(self) -> None:
        """A channel's write sends msg,<topic>,<data>; two channels interleave."""
        self.send("sub,echo", "sub,chat", "msg,echo,x,y", "msg,echo,\u2603")
        channelOf(self.one(self.chat)).write(b"from chat")
        self.clock.advance(0)
        self.assertEqual(
            self.received(), ["msg,echo,x,y", "msg,echo,\u2603", "msg,chat,from chat"]
        )

    def test_unknownTopicAnsweredUns(self) -> None:
        """sub to an unknown topic is answered uns,<topic>; nothing else changes."""
        self.send("sub,chat", "sub,nope")
        self.assertEqual(self.received(), ["uns,nope"])
        self.send("msg,chat,still here")
        self.assertEqual(self.one(self.chat).received, [b"still here"])
        self.assertEqual(self.session.readyState, 1)

    def test_refusingFactoryAnsweredUns(self) -> None:
        """sub whose factory returns None from buildProtocol is answered uns,<topic>."""
        self.chat.refuse = True
        self.send("sub,chat", "sub,news")
        self.assertEqual(self.received(), ["uns,chat"])
        self.assertEqual(len(self.news.built), 1)

    def test_raisingFactoryAnsweredUns(self) -> None:
        """sub whose factory raises is answered uns,<topic> and logged; others go on."""

        def boom(addr: Any) -> None:
            raise RuntimeError("boom")

        self.chat.buildProtocol = boom  # type: ignore[method-assign]
        self.send("sub,chat", "sub,news", "msg,news,ok")
        self.assertEqual(self.received(), ["uns,chat"])
        self.assertEqual(self.one(self.news).received, [b"ok"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_messageOnUnsubscribedIgnored(self) -> None:
        """msg on a topic not subscribed (known or not) is ignored: nothing built, sent."""
        self.send("msg,chat,hello", "msg,nope,hello", "uns,chat")
        self.assertEqual(self.chat.built, [])
        self.assertEqual(self.received(), [])
        self.assertEqual(self.session.readyState, 1)

    def test_duplicateSubscribeIgnored(self) -> None:
        """A second sub to a subscribed topic is ignored: one protocol, still connected."""
        self.send("sub,chat", "sub,chat", "msg,chat,m")
        protocol = self.one(self.chat)
        self.assertEqual(protocol.events, ["makeConnection"])
        self.assertEqual(protocol.received, [b"m"])
        self.assertEqual(self.received(), [])

    def test_malformedLinesIgnored(self) -> None:
        """Lines without a comma or with an unknown type are ignored; channels go on."""
        self.send("sub,chat")
        self.send("", "sub", "msg", "hello", "pub,chat,x", "MSG,chat,x", ",chat")
        self.send("msg,chat,after")
        self.assertEqual(self.one(self.chat).received, [b"after"])
        self.assertEqual(self.received(), [])
        self.assertEqual(self.session.readyState, 1)

    def test_trailingFieldsAndEmptyMessage(self) -> None:
        """sub,<topic>,x subscribes <topic>; msg,<topic> is an empty message; uns,<topic>,x unsubscribes."""
        self.send("sub,chat,extra", "msg,chat", "uns,chat,extra")
        protocol = self.one(self.chat)
        self.assertEqual(protocol.received, [b""])
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])

    def test_clientUnsubscribe(self) -> None:
        """uns,<topic> gives that channel's protocol one connectionLost(ConnectionDone)."""
        self.send("sub,chat", "sub,news", "uns,chat", "uns,chat")
        protocol = self.one(self.chat)
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        assert protocol.lost is not None
        protocol.lost.trap(ConnectionDone)
        self.assertFalse(channelOf(protocol).connected)
        self.assertTrue(channelOf(protocol).disconnecting)
        self.assertEqual(self.received(), [])
        self.assertEqual(self.one(self.news).events, ["makeConnection"])

    def test_resubscribeBuildsNewProtocol(self) -> None:
        """After uns, a new sub to the same topic gets a new protocol."""
        self.send("sub,chat", "uns,chat", "sub,chat", "msg,chat,again")
        first, second = self.chat.built
        self.assertEqual(first.received, [])
        self.assertEqual(second.received, [b"again"])

    def test_serverLoseConnectionSendsUns(self) -> None:
        """A channel's loseConnection sends uns,<topic> and one connectionLost; no more writes."""
        self.send("sub,chat", "sub,news")
        protocol = self.one(self.chat)
        transport = channelOf(protocol)
        transport.write(b"bye")
        transport.loseConnection()
        transport.loseConnection()
        transport.write(b"dropped")
        self.clock.advance(0)
        self.assertEqual(self.received(), ["msg,chat,bye", "uns,chat"])
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        self.send("msg,chat,late")
        self.assertEqual(protocol.received, [])
        self.send("msg,news,alive")
        self.assertEqual(self.one(self.news).received, [b"alive"])

    def test_sessionEndLosesEveryChannelOnce(self) -> None:
        """When the SockJS session ends, every channel gets exactly one connectionLost."""
        self.send("sub,chat", "sub,news", "uns,news", "sub,news")
        self.session.close()
        self.clock.advance(60)
        chat = self.one(self.chat)
        first, second = self.news.built
        for protocol in (chat, first, second):
            self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        assert chat.lost is not None
        chat.lost.trap(ConnectionDone)

    def test_sessionTimeoutLosesChannels(self) -> None:
        """A session that times out gives its channels connectionLost(ConnectionLost)."""
        self.send("sub,chat")
        self.sink.end(aborted=True)
        self.clock.advance(60)
        protocol = self.one(self.chat)
        assert protocol.lost is not None
        protocol.lost.trap(ConnectionLost)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_dataReceivedRaisingClosesOnlyThatChannel(self) -> None:
        """A channel protocol raising in dataReceived closes that channel alone (uns)."""

        def boom(protocol: RecordingProtocol, data: bytes) -> None:
            raise ValueError("boom")

        self.chat.onData = boom
        self.send("sub,chat", "sub,news", "msg,chat,x", "msg,news,y")
        self.assertEqual(self.received(), ["uns,chat"])
        self.assertEqual(self.one(self.chat).events, ["makeConnection", "connectionLost"])
        self.assertEqual(self.one(self.news).received, [b"y"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_closeInConnectionMade(self) -> None:
        """A channel closed from its connectionMade sends uns and is lost once."""
        self.chat.onConnect = lambda protocol: channelOf(protocol).loseConnection()
        self.send("sub,chat", "msg,chat,x")
        self.assertEqual(self.received(), ["uns,chat"])
        protocol = self.one(self.chat)
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        self.assertEqual(protocol.received, [])

    def test_escapedTopicNames(self) -> None:
        """Topics are matched as the browser client escapes channel names (JS escape())."""
        factory = RecordingFactory()
        self.mux = MultiplexFactory({"my chat/é": factory})
        self.registry = SessionRegistry(self.mux, SockJSOptions(), self.clock)
        self.sink = RecordingSink()
        session = self.registry.openSession("t", self.sink, info())
        assert session is not None
        self.session = session
        self.sink.messages.clear()
        self.send("sub,my%20chat/%E9", "msg,my%20chat/%E9,hi")
        self.assertEqual(factory.built[0].received, [b"hi"])
        channelOf(factory.built[0]).write(b"yo")
        self.clock.advance(0)
        self.assertEqual(self.received(), ["msg,my%20chat/%E9,yo"])

    def test_jsEscape(self) -> None:
        """jsEscape is JavaScript's escape(): %XX below 256, %uXXXX per UTF-16 unit."""
        self.assertEqual(jsEscape("aZ09@*_+-./"), "aZ09@*_+-./")
        self.assertEqual(jsEscape("a b,é€\U0001f600"), "a%20b%2C%E9%u20AC%uD83D%uDE00")

    def test_writeTakesBytes(self) -> None:
        """A channel's write takes bytes, as any transport's."""
        self.send("sub,chat")
        self.assertRaises(TypeError, channelOf(self.one(self.chat)).write, "text")


class TransportTests(MultiplexTestCase):
    def test_connectionProperties(self) -> None:
        """A channel's transport shows the session's address, id, headers and transport."""
        self.send("sub,chat")
        transport = channelOf(self.one(self.chat))
        self.assertTrue(verifyObject(ISockJSTransport, transport))
        self.assertEqual(transport.getPeer(), self.session.getPeer())
        self.assertEqual(transport.getHost(), self.session.getHost())
        self.assertEqual(transport.remoteAddress, "10.0.0.1")
        self.assertEqual(transport.remotePort, 5000)
        self.assertEqual(transport.sessionId, "s")
        self.assertEqual(transport.transportName, "xhr-polling")
        self.assertEqual(transport.url, "/echo/0/s/xhr")
        self.assertEqual(transport.pathname, "/echo/0/s/xhr")
        self.assertEqual(transport.headers, {})
        self.assertEqual(transport.prefix, "/echo")
        self.assertEqual(transport.topic, "chat")
        self.assertTrue(transport.connected)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.readyState, 1)

    def test_buildProtocolGetsPeer(self) -> None:
        """A channel's factory builds its protocol for the client's address."""
        self.send("sub,chat")
        self.assertEqual(self.chat.addresses, [self.session.getPeer()])

    def test_doStartDoStopForwarded(self) -> None:
        """The topic factories start and stop with the multiplex factory."""
        self.assertEqual((self.chat.starts, self.news.starts), (1, 1))
        self.registry.stop()
        self.assertEqual((self.chat.stops, self.news.stops), (1, 1))


class BackpressureTests(MultiplexTestCase):
    def pauseSession(self) -> None:
        """
        The client stops reading, and a channel writes past the session's high-water mark.
        """
        self.sink.pause()
        filler = channelOf(self.one(self.news))
        writeUntil(filler.write, self.mux_paused)

    def mux_paused(self) -> bool:
        protocol: Any = self.session._protocol
        return bool(protocol._outgoingPaused)

    def test_producersFollowTheSession(self) -> None:
        """Every channel's streaming producer pauses with the session's queue, resumes after."""
        self.send("sub,chat", "sub,news")
        producer = RecordingProducer()
        channelOf(self.one(self.chat)).registerProducer(producer, True)
        self.pauseSession()
        self.assertEqual(producer.events, ["pause"])
        self.sink.resume()
        self.assertEqual(producer.events, ["pause", "resume"])

    def test_producerRegisteredWhilePaused(self) -> None:
        """A producer registered while the connection is paused starts paused."""
        self.send("sub,chat", "sub,news")
        self.pauseSession()
        producer = RecordingProducer()
        channelOf(self.one(self.chat)).registerProducer(producer, True)
        self.assertEqual(producer.events, ["pause"])

    def test_producerStoppedWhenChannelEnds(self) -> None:
        """A channel's producer is stopped when the channel closes; re-registering fails."""
        self.send("sub,chat")
        transport = channelOf(self.one(self.chat))
        producer = RecordingProducer()
        transport.registerProducer(producer, True)
        self.assertRaises(RuntimeError, transport.registerProducer, RecordingProducer(), True)
        self.send("uns,chat")
        self.assertEqual(producer.events, ["stop"])
        late = RecordingProducer()
        transport.registerProducer(late, True)
        self.assertEqual(late.events, ["stop"])

    def test_channelOverItsLimitClosedAlone(self) -> None:
        """A channel writing maxChannelQueue bytes while paused is closed; the rest stays."""
        self.mux.maxChannelQueue = 10_000
        self.send("sub,chat", "sub,news")
        self.pauseSession()
        chat = self.one(self.chat)
        for _ in range(3):
            channelOf(chat).write(b"c" * 4000)
        assert chat.lost is not None
        chat.lost.trap(ConnectionLost)
        self.assertEqual(self.session.readyState, 1)
        self.assertEqual(self.one(self.news).events, ["makeConnection"])
        self.sink.resume()
        self.clock.advance(0)
        lines = self.received()
        self.assertEqual(lines[-1], "uns,chat")
        self.assertEqual(sum(1 for line in lines if line.startswith("msg,chat,")), 2)

    def test_resumeResetsTheAllowance(self) -> None:
        """What a channel wrote while paused counts only until the connection resumes."""
        self.mux.maxChannelQueue = 10_000
        self.send("sub,chat", "sub,news")
        chat = self.one(self.chat)
        for _ in range(3):
            self.pauseSession()
            channelOf(chat).write(b"c" * 8000)
            self.sink.resume()
            self.clock.advance(0)
        self.assertIsNone(chat.lost)


class OutgoingMuxProducerTests(MultiplexTestCase):
    def test_muxIsTheSessionsStreamingProducer(self) -> None:
        """The multiplexer registers itself on the SockJS transport as its streaming producer."""
        mux = self.session.protocol
        self.assertIsInstance(mux, MultiplexProtocol)
        self.assertIs(self.session._producer, mux)
        self.assertTrue(self.session._streamingProducer)

    def test_everyChannelsProducerPausedOverHighWater(self) -> None:
        """Over the session's high-water mark each channel's producer is paused once, and resumed once after."""
        self.send("sub,chat", "sub,echo", "sub,news")
        chatProducer, echoProducer = RecordingProducer(), RecordingProducer()
        channelOf(self.one(self.chat)).registerProducer(chatProducer, True)
        mux = self.session.protocol
        assert isinstance(mux, MultiplexProtocol)
        mux._channels["echo"].registerProducer(echoProducer, True)
        self.sink.pause()
        filler = channelOf(self.one(self.news))
        writeUntil(filler.write, lambda: self.session._producerPaused)
        self.assertEqual((chatProducer.events, echoProducer.events), (["pause"], ["pause"]))
        filler.write(b"more")
        self.assertEqual((chatProducer.events, echoProducer.events), (["pause"], ["pause"]))
        self.sink.resume()
        self.assertEqual(
            (chatProducer.events, echoProducer.events), (["pause", "resume"], ["pause", "resume"])
        )

    def test_outgoingPauseLeavesIncomingFlowing(self) -> None:
        """The session's full outgoing queue pauses the channels' producers, not their dataReceived."""
        self.send("sub,chat", "sub,news")
        self.sink.pause()
        filler = channelOf(self.one(self.news))
        writeUntil(filler.write, lambda: self.session._producerPaused)
        self.send("msg,chat,still read")
        self.assertEqual(self.one(self.chat).received, [b"still read"])


class IncomingFlowControlTests(MultiplexTestCase):
    def muxProtocol(self) -> MultiplexProtocol:
        mux = self.session.protocol
        assert isinstance(mux, MultiplexProtocol)
        return mux

    def test_transportProtocolIsTheProtocol(self) -> None:
        """A channel's transport.protocol is its protocol (None once lost); transportName names the SockJS transport."""
        self.send("sub,chat")
        protocol = self.one(self.chat)
        transport = channelOf(protocol)
        self.assertIs(transport.protocol, protocol)
        self.assertEqual(transport.transportName, "xhr-polling")
        self.send("uns,chat")
        self.assertIsNone(transport.protocol)

    def test_pausedChannelHoldsInOrder(self) -> None:
        """A paused channel's messages wait, and arrive in order in the turn after resumeProducing, not inside it."""
        self.send("sub,chat")
        protocol = self.one(self.chat)
        transport = channelOf(protocol)
        transport.pauseProducing()
        self.send("msg,chat,1", "msg,chat,2")
        self.send("msg,chat,3")
        self.assertEqual(protocol.received, [])
        self.assertEqual(self.muxProtocol().heldBytes, 3)
        transport.resumeProducing()
        self.assertEqual(protocol.received, [])
        transport.pauseProducing()
        transport.resumeProducing()
        self.assertEqual(scheduled(self.clock), ["_drainHeld", "_heartbeat"])
        self.session.messagesReceived([b"msg,chat,4"])
        self.assertEqual(protocol.received, [])
        self.clock.advance(0)
        self.assertEqual(protocol.received, [b"1", b"2", b"3", b"4"])
        self.assertEqual(self.muxProtocol().heldBytes, 0)
        self.send("msg,chat,5")
        self.assertEqual(protocol.received[-1], b"5")
        self.assertEqual(scheduled(self.clock), ["_heartbeat"])

    def test_otherChannelsKeepFlowing(self) -> None:
        """While one channel is paused, the others get their messages at once, and the session reads on."""
        self.send("sub,chat", "sub,news")
        chat, news = self.one(self.chat), self.one(self.news)
        channelOf(chat).pauseProducing()
        self.assertIsNone(
            self.session.messagesReceived([b"msg,chat,a", b"msg,news,b", b"msg,chat,c"])
        )
        self.send("msg,news,d")
        self.assertEqual(news.received, [b"b", b"d"])
        self.assertEqual(chat.received, [])
        self.assertFalse(self.session._readPaused)
        channelOf(chat).resumeProducing()
        self.clock.advance(0)
        self.assertEqual(chat.received, [b"a", b"c"])

    def test_pauseInsideDataReceived(self) -> None:
        """A protocol pausing in dataReceived gets no more of the batch; pause then resume in it changes nothing."""

        def onData(protocol: RecordingProtocol, data: bytes) -> None:
            if data == b"stop":
                protocol.transport.pauseProducing()  # type: ignore[union-attr]
            elif data == b"blink":
                protocol.transport.pauseProducing()  # type: ignore[union-attr]
                protocol.transport.resumeProducing()  # type: ignore[union-attr]

        self.chat.onData = onData
        self.send("sub,chat", "msg,chat,blink", "msg,chat,1", "msg,chat,stop", "msg,chat,2")
        protocol = self.one(self.chat)
        self.assertEqual(protocol.received, [b"blink", b"1", b"stop"])
        channelOf(protocol).resumeProducing()
        self.send("msg,chat,stop", "msg,chat,3")
        self.assertEqual(protocol.received, [b"blink", b"1", b"stop", b"2", b"stop"])
        channelOf(protocol).resumeProducing()
        self.clock.advance(0)
        self.assertEqual(protocol.received, [b"blink", b"1", b"stop", b"2", b"stop", b"3"])

    def test_pauseDuringDrainStopsIt(self) -> None:
        """A protocol pausing while held messages are delivered stops the delivery; a resume goes on in order."""
        self.chat.onData = lambda protocol, data: (
            protocol.transport.pauseProducing() if data == b"stop" else None
        )
        self.send("sub,chat")
        protocol = self.one(self.chat)
        channelOf(protocol).pauseProducing()
        self.send("msg,chat,1", "msg,chat,stop", "msg,chat,2")
        channelOf(protocol).resumeProducing()
        self.clock.advance(0)
        self.assertEqual(protocol.received, [b"1", b"stop"])
        self.assertEqual(self.muxProtocol().heldBytes, 1)
        channelOf(protocol).resumeProducing()
        self.clock.advance(0)
        self.assertEqual(protocol.received, [b"1", b"stop", b"2"])

    def test_stopProducingClosesTheChannel(self) -> None:
        """stopProducing on a channel closes that channel (uns, ConnectionDone), as on TCP."""
        self.send("sub,chat", "sub,news")
        protocol = self.one(self.chat)
        channelOf(protocol).stopProducing()
        self.clock.advance(0)
        self.assertEqual(self.received(), ["uns,chat"])
        assert protocol.lost is not None
        protocol.lost.trap(ConnectionDone)
        self.send("msg,news,alive")
        self.assertEqual(self.one(self.news).received, [b"alive"])

    def test_abortConnectionDropsHeld(self) -> None:
        """abortConnection drops what the channel held, sends uns, and gives ConnectionAborted before it returns."""
        self.send("sub,chat", "sub,news")
        protocol = self.one(self.chat)
        transport = channelOf(protocol)
        transport.pauseProducing()
        self.send("msg,chat,held")
        transport.resumeProducing()
        transport.abortConnection()
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
        assert protocol.lost is not None
        protocol.lost.trap(ConnectionAborted)
        self.assertEqual(self.muxProtocol().heldBytes, 0)
        self.assertEqual(scheduled(self.clock), ["_flushPending", "_heartbeat"])
        self.clock.advance(0)
        self.assertEqual(protocol.received, [])
        self.assertEqual(self.received(), ["uns,chat"])
        self.assertEqual(self.one(self.news).events, ["makeConnection"])

    def test_closedWhilePausedDropsHeld(self) -> None:
        """A paused channel closed by the server or unsubscribed by the client drops what it held."""
        self.send("sub,chat", "sub,news")
        chat, news = self.one(self.chat), self.one(self.news)
        channelOf(chat).pauseProducing()
        channelOf(news).pauseProducing()
        self.send("msg,chat,a", "msg,news,b", "uns,news")
        channelOf(chat).loseConnection()
        self.assertEqual(self.muxProtocol().heldBytes, 0)
        channelOf(chat).resumeProducing()
        channelOf(news).resumeProducing()
        self.clock.advance(0)
        self.assertEqual((chat.received, news.received), ([], []))
        assert chat.lost is not None and news.lost is not None
        chat.lost.trap(ConnectionDone)
        news.lost.trap(ConnectionDone)
        self.assertEqual(scheduled(self.clock), ["_heartbeat"])

    def test_heldBoundPausesTheSession(self) -> None:
        """Past maxHeld bytes held over all channels, the session stops reading; at half of it, it reads again."""
        self.mux.maxHeld = 100
        self.send("sub,chat", "sub,news", "sub,echo")
        chat, news = self.one(self.chat), self.one(self.news)
        channelOf(chat).pauseProducing()
        channelOf(news).pauseProducing()
        self.send("msg,chat," + "a" * 40, "msg,news," + "b" * 40)
        self.assertFalse(self.session._readPaused)
        waiting = self.session.messagesReceived(
            [b"msg,chat," + b"c" * 40, b"msg,echo,waits", b"msg,news,late"]
        )
        self.assertTrue(self.session._readPaused)
        assert waiting is not None
        self.assertNoResult(waiting)
        self.assertEqual(self.muxProtocol().heldBytes, 120)
        self.assertEqual(self.session.incomingBacklog, len(b"msg,echo,waits,msg,news,late") - 1)
        self.clock.advance(0)
        self.assertEqual(self.received(), [])
        # chat drains 80: 40 remain, under half of maxHeld: the session reads again.
        channelOf(chat).resumeProducing()
        self.clock.advance(0)
        self.assertEqual(chat.received, [b"a" * 40, b"c" * 40])
        self.assertFalse(self.session._readPaused)
        self.clock.advance(0)
        self.successResultOf(waiting)
        self.assertEqual(self.received(), ["msg,echo,waits"])
        self.assertEqual(news.received, [])
        self.assertEqual(self.muxProtocol().heldBytes, 44)

    def test_heldBoundHysteresis(self) -> None:
        """Held data over maxHeld / 2 keeps the session paused; dropping a channel's held data resumes it."""
        self.mux.maxHeld = 100
        self.chat.onData = lambda protocol, data: protocol.transport.pauseProducing()
        self.send("sub,chat", "sub,news")
        chat = self.one(self.chat)
        channelOf(chat).pauseProducing()
        self.send(*["msg,chat," + "x" * 30] * 4)
        self.assertTrue(self.session._readPaused)
        channelOf(chat).resumeProducing()
        self.clock.advance(0)
        self.assertEqual(len(chat.received), 1)
        self.assertEqual(self.muxProtocol().heldBytes, 90)
        self.assertTrue(self.session._readPaused)
        channelOf(chat).loseConnection()
        self.assertEqual(self.muxProtocol().heldBytes, 0)
        self.assertFalse(self.session._readPaused)
        self.send("msg,news,flows")
        self.assertEqual(self.one(self.news).received, [b"flows"])

    def test_sessionEndDropsHeld(self) -> None:
        """When the session ends, paused channels drop what they held and nothing is left scheduled."""
        self.send("sub,chat")
        mux = self.muxProtocol()
        protocol = self.one(self.chat)
        channelOf(protocol).pauseProducing()
        self.send("msg,chat,x")
        channelOf(protocol).resumeProducing()
        self.session.transport.abortConnection()
        self.clock.advance(60)
        self.assertEqual(protocol.received, [])
        self.assertEqual(mux.heldBytes, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_raisingDuringDrainClosesOnlyThatChannel(self) -> None:
        """A protocol raising on a held message is closed (uns), its rest dropped; others go on."""

        def onData(protocol: RecordingProtocol, data: bytes) -> None:
            raise ValueError("boom")

        self.chat.onData = onData
        self.send("sub,chat", "sub,news")
        chat = self.one(self.chat)
        channelOf(chat).pauseProducing()
        self.send("msg,chat,1", "msg,chat,2")
        channelOf(chat).resumeProducing()
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(chat.received, [b"1"])
        self.assertEqual(self.received(), ["uns,chat"])
        self.assertEqual(self.muxProtocol().heldBytes, 0)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.send("msg,news,ok")
        self.assertEqual(self.one(self.news).received, [b"ok"])

    @settings(
        derandomize=True,
        max_examples=200,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        deadline=None,
    )
    @given(
        st.lists(
            st.sampled_from(
                [
                    "chat",
                    "chat",
                    "news",
                    "news",
                    "pauseChat",
                    "resumeChat",
                    "pauseNews",
                    "resumeNews",
                    "turn",
                ]
            ),
            max_size=40,
        )
    )
    def test_interleavingsKeepEveryMessageOnceInOrder(self, steps: list[str]) -> None:
        """In any interleaving of messages, pauses and resumes on two channels, each gets every message once, in order, and nothing is held once both read."""
        clock = Clock()
        chat, news = RecordingFactory(), RecordingFactory()
        mux = MultiplexFactory({"chat": chat, "news": news}, maxHeld=12)
        registry = SessionRegistry(mux, SockJSOptions(), clock)
        sink = RecordingSink()
        session = registry.openSession("s", sink, info())
        assert session is not None
        session.messagesReceived([b"sub,chat", b"sub,news"])
        protocols = {"chat": chat.built[0], "news": news.built[0]}
        sent: dict[str, list[bytes]] = {"chat": [], "news": []}
        for step in steps:
            if step in sent:
                data = b"%d" % (len(sent[step]) + 100)
                sent[step].append(data)
                session.messagesReceived([b"msg," + step.encode() + b"," + data])
            elif step == "turn":
                clock.advance(0)
            else:
                transport = channelOf(protocols[step[-4:].lower()])
                if step.startswith("pause"):
                    transport.pauseProducing()
                else:
                    transport.resumeProducing()
        for name, protocol in protocols.items():
            received = protocol.received
            self.assertEqual(received, sent[name][: len(received)])
            channelOf(protocol).resumeProducing()
        for _ in range(4):
            clock.advance(0)
        for name, protocol in protocols.items():
            self.assertEqual(protocol.received, sent[name])
        mp = session.protocol
        assert isinstance(mp, MultiplexProtocol)
        self.assertEqual(mp.heldBytes, 0)
        self.assertEqual(session.incomingBacklog, 0)
        self.assertFalse(session._readPaused)
        self.assertEqual(scheduled(clock), ["_heartbeat"])


class PausingLineReceiver(LineReceiver):
    """
    Pauses its transport after a line C{wait}, as a protocol that waits on something
    slow does.
    """

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"wait":
            self.pauseProducing()


class TwistedProtocolsTests(MultiplexTestCase):
    def test_lineReceiverPausingOverAChannel(self) -> None:
        """A LineReceiver that pauses its transport works over a channel as over TCP, and the other channels flow."""
        lines = Factory.forProtocol(PausingLineReceiver)
        self.mux = MultiplexFactory({"lines": lines, "news": self.news})
        self.registry = SessionRegistry(self.mux, SockJSOptions(), self.clock)
        self.sink = RecordingSink()
        session = self.registry.openSession("l", self.sink, info())
        assert session is not None
        self.session = session
        self.send("sub,lines", "sub,news", "msg,lines,a\r\nwait\r\nb\r\n", "msg,lines,c\r\n")
        mux = self.session.protocol
        assert isinstance(mux, MultiplexProtocol)
        receiver = mux._channels["lines"].protocol
        assert isinstance(receiver, PausingLineReceiver)
        self.assertIs(receiver.transport.protocol, receiver)  # type: ignore[union-attr]
        self.assertEqual(receiver.lines, [b"a", b"wait"])
        self.send("msg,news,meanwhile")
        self.assertEqual(self.one(self.news).received, [b"meanwhile"])
        receiver.resumeProducing()
        self.assertEqual(receiver.lines, [b"a", b"wait", b"b"])
        self.clock.advance(0)
        self.assertEqual(receiver.lines, [b"a", b"wait", b"b", b"c"])

    def test_portforwardOverAChannel(self) -> None:
        """twisted.protocols.portforward forwards a channel to TCP with flow control both ways."""
        reactor = MemoryReactorClock()

        class Forward(ProxyFactory):
            def buildProtocol(self, addr: Any) -> ProxyServer:
                server = super().buildProtocol(addr)
                assert isinstance(server, ProxyServer)
                server.reactor = reactor  # type: ignore[assignment]
                return server

        self.mux = MultiplexFactory({"fwd": Forward("backend.example", 7), "news": self.news})
        self.registry = SessionRegistry(self.mux, SockJSOptions(), self.clock)
        self.sink = RecordingSink()
        session = self.registry.openSession("p", self.sink, info())
        assert session is not None
        self.session = session
        self.sink.messages.clear()
        # Until the backend answers, the proxy does not read the channel.
        self.send("sub,fwd", "sub,news", "msg,fwd,early ", "msg,news,x")
        [(host, port, clientFactory, _, _)] = reactor.tcpClients
        self.assertEqual((host, port), ("backend.example", 7))
        self.assertEqual(self.one(self.news).received, [b"x"])
        backend = StringTransport()
        client = clientFactory.buildProtocol(None)
        assert client is not None
        client.makeConnection(backend)
        self.assertEqual(backend.value(), b"")
        self.clock.advance(0)
        self.assertEqual(backend.value(), b"early ")
        # The backend's replies go out on the channel.
        client.dataReceived(b"reply")
        self.clock.advance(0)
        self.assertEqual(self.received(), ["msg,fwd,reply"])
        # The backend's socket is full: it pauses the channel (its registered producer).
        channel = backend.producer
        assert isinstance(channel, ChannelTransport)
        channel.pauseProducing()
        self.send("msg,fwd,later", "msg,news,y")
        self.assertEqual(backend.value(), b"early ")
        self.assertEqual(self.one(self.news).received, [b"x", b"y"])
        channel.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(backend.value(), b"early later")
        # The client does not read: the backend's transport is paused, then resumed.
        self.sink.pause()
        writeUntil(client.dataReceived, lambda: backend.producerState == "paused")
        self.sink.resume()
        self.assertEqual(backend.producerState, "producing")
        # The backend closes: the channel closes.
        client.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(0)
        self.assertEqual(self.received()[-1], "uns,fwd")
        self.assertTrue(channel.disconnecting)


class PullProducerTests(TestCase):
    """
    A pull producer is driven by Twisted's own cooperator (on the global reactor), as
    Twisted's TLS transport drives one: so this test runs the reactor.
    """

    def test_pullProducerAskedUntilUnregistered(self) -> None:
        """A channel's pull producer gets resumeProducing until it unregisters."""
        clock = Clock()
        factory = RecordingFactory()
        registry = SessionRegistry(MultiplexFactory({"file": factory}), SockJSOptions(), clock)
        sink = RecordingSink()
        session = registry.openSession("s", sink, info())
        assert session is not None
        session.messagesReceived([b"sub,file"])
        transport = channelOf(factory.built[0])
        done: Deferred[None] = Deferred()

        class Pull:
            calls = 0

            def resumeProducing(self) -> None:
                self.calls += 1
                transport.write(b"chunk %d" % self.calls)
                if self.calls == 3:
                    transport.unregisterProducer()
                    done.callback(None)

            def stopProducing(self) -> None:
                raise AssertionError("stopped")

        pull = Pull()
        transport.registerProducer(pull, False)

        def check(_: object) -> None:
            clock.advance(0)
            lines = [json.loads("[" + ",".join(batch) + "]") for batch in sink.messages]
            self.assertEqual(
                [m for batch in lines for m in batch],
                ["msg,file,chunk 1", "msg,file,chunk 2", "msg,file,chunk 3"],
            )
            self.assertEqual(pull.calls, 3)

        return done.addCallback(check)  # type: ignore[return-value]


class WebSocketTests(SynchronousTestCase):
    def test_rawWebSocketTwoChannels(self) -> None:
        """Over a real websocket of a SockJSResource, two channels run side by side."""
        client, resource = sockjsClient(
            MultiplexFactory({"echo": EchoFactory(), "other": EchoFactory()}), prefix="/m"
        )
        ws = client.websocket("/m/websocket")
        self.assertTrue(ws.open)
        ws.sendText("sub,echo")
        ws.sendText("sub,other")
        ws.sendText("msg,echo,1,2")
        ws.sendText("msg,other,three")
        ws.sendText("uns,echo")
        ws.sendText("msg,echo,ignored")
        ws.sendText("sub,unknown")
        client.advance(0)
        self.assertEqual(ws.receive(), ["msg,echo,1,2", "msg,other,three", "uns,unknown"])

    def test_framedWebSocket(self) -> None:
        """Over the SockJS websocket, lines travel as SockJS messages."""
        client, resource = sockjsClient(MultiplexFactory({"echo": EchoFactory()}), prefix="/m")
        ws = client.websocket("/m/0/abc/websocket")
        self.assertEqual(ws.frames(), ["o"])
        ws.sendText(json.dumps(["sub,echo", "msg,echo,a,b"]))
        client.advance(0)
        self.assertEqual(ws.frames(), [["msg,echo,a,b"]])

    def test_noProtocolLeftAfterClose(self) -> None:
        """Closing the websocket ends every channel: connectionLost once each."""
        factory = RecordingFactory()
        client, resource = sockjsClient(MultiplexFactory({"a": factory}), prefix="/m")
        ws = client.websocket("/m/websocket")
        ws.sendText("sub,a")
        ws.sendClose()
        client.advance(10)
        [protocol] = factory.built
        self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
