"""
The websocket-multiplex wire rules (sockjs_twisted.multiplex), over real SockJS sessions
driven by a Clock, and over a real websocket of a SockJSResource.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sockjs_twisted._options import SockJSOptions
from sockjs_twisted._registry import SessionRegistry
from sockjs_twisted.interfaces import ISockJSTransport
from sockjs_twisted.multiplex import ChannelTransport, MultiplexFactory, jsEscape
from sockjs_twisted.testserver import EchoFactory

from ._fakes import RecordingFactory, RecordingProtocol, RecordingSink, info
from ._harness import sockjsClient


@implementer(IPushProducer)
class RecordingProducer:
    def __init__(self) -> None:
        self.events: list[str] = []

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


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
        while not self.mux_paused():
            filler.write(b"f" * 4096)

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
