"""
Many channels over one SockJS connection: the server side of SockJS's websocket-multiplex
protocol (npm C{websocket-multiplex}, whose browser client is C{WebSocketMultiplex}).

Every SockJS message of a multiplexed connection is one line::

    sub,<topic>            subscribe to <topic>: a channel opens
    msg,<topic>,<payload>  a message on the channel (the payload may contain commas)
    uns,<topic>            unsubscribe: the channel closes

split on its first two commas only.  The server sends C{msg,<topic>,<payload>} for what a
channel's protocol writes and C{uns,<topic>} when it closes the channel.

L{MultiplexFactory} maps topics to ordinary protocol factories and is itself an ordinary
protocol factory: wrap it in L{SockJSFactory} or L{SockJSResource} like any other.  Each
channel subscribed on each connection gets its own protocol, built by the factory its topic
names, with a transport of its own (L{ChannelTransport}).

The rules for what a client may get wrong (none of them ends the connection or any other
channel; the reference server, C{multiplex_server.js}, ignores all of them):

- C{sub} to a topic the factory does not know: answered C{uns,<topic>} (the client's
  channel then closes instead of waiting forever); no protocol is built.  The same answer
  when the topic's factory refuses (C{buildProtocol} returns C{None} or raises).
- C{sub} to a topic already subscribed on this connection: ignored; the channel open
  keeps its protocol.  So a connection holds at most one channel per known topic.
- C{msg} on a topic not subscribed on this connection (never, or not any more):
  ignored.  A message in flight while the server closes the channel is normal, not an
  error.
- C{uns} on a topic not subscribed: ignored.
- C{msg,<topic>} without a second comma: an empty message on that channel (as the
  reference server, which joins what follows the topic).
- Anything after C{sub,<topic>,} or C{uns,<topic>,} is ignored.
- A malformed line (no comma, or a type other than C{sub} / C{msg} / C{uns}): ignored.

A channel's transport behaves as the SockJS session's own (L{SockJSTransport}) and as a
TCP transport: C{transport.protocol} is the channel's protocol, C{transport.transportName}
the SockJS transport's name, and flow control works both ways, per channel.

Incoming (what the client sends on a channel):

- C{pauseProducing} on a channel's transport stops that channel's C{dataReceived}; its
  C{msg} payloads are held, in order, and delivered after C{resumeProducing}, from the
  reactor in the next turn (never from inside C{resumeProducing}).  The other channels
  keep flowing.
- What the channels of a connection hold is bounded: once it passes C{maxHeld} bytes, the
  multiplexer pauses the SockJS connection's incoming side (every channel then waits, and
  the client is pushed back as with one paused protocol); it resumes it once the held
  data is down to half of C{maxHeld}.
- C{stopProducing} closes the channel, as on TCP (C{uns}, C{ConnectionDone}).
- When a channel closes, whichever side closes it, what it held is dropped, as the
  session drops what it held when it ends.

Outgoing (what the channels write):

- the SockJS connection's limits (C{max_message_size}, C{max_body_size}) bound each line;
- when the connection's outgoing queue passes its high-water mark, every channel's
  registered producer is paused (the multiplexer is the streaming producer registered on
  the SockJS transport), and resumed when the queue drains (a pull producer is driven as
  Twisted's TLS transport drives one, through C{_PullToPush});
- a channel that keeps writing while the connection is paused is closed on its own
  (C{uns}, and C{connectionLost(ConnectionLost)} for its protocol) once it has written
  C{maxChannelQueue} bytes since the pause began; the other channels and the
  connection stay open.  (Without it, one channel ignoring backpressure would make the
  whole session pass C{max_queue_size} and close with 1013.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Optional

from twisted.internet._producer_helpers import _PullToPush
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .interfaces import ISockJSTransport

__all__ = ["ChannelTransport", "MultiplexFactory", "MultiplexProtocol", "jsEscape"]

DEFAULT_MAX_CHANNEL_QUEUE = 1024 * 1024
DEFAULT_MAX_HELD = 1024 * 1024

_UNESCAPED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@*_+-./")


def jsEscape(name: str) -> str:
    """
    JavaScript's C{escape()}, which the browser client applies to channel names: the
    topic as it appears on the wire.

    :param name: A channel name as the browser code gives it to
        C{multiplexer.channel(name)}.
    """
    out = []
    for char in name:
        if char in _UNESCAPED:
            out.append(char)
            continue
        data = char.encode("utf-16-be")
        for i in range(0, len(data), 2):
            code = (data[i] << 8) | data[i + 1]
            out.append("%%%02X" % code if code < 256 else "%%u%04X" % code)
    return "".join(out)


def _clockOf(transport: Any) -> IReactorTime:
    """
    The clock that drives the SockJS session behind C{transport}: held messages are
    delivered in the reactor turn after a resume, on the same clock as the session's own.
    Over another transport (a test's, a TCP one), the global reactor.
    """
    # SockJSTransport -> Session -> SessionRegistry.clock: inside this package.
    session = getattr(transport, "_session", None)
    clock = getattr(getattr(session, "_factory", None), "clock", None)
    if clock is None:
        from twisted.internet import reactor as globalReactor

        clock = globalReactor
    return clock  # type: ignore[no-any-return]


@implementer(ISockJSTransport)
class ChannelTransport:
    """
    The transport of one channel's protocol.  C{write} sends C{msg,<topic>,<data>} over
    the connection; C{loseConnection} sends C{uns,<topic>}.  The connection's properties
    (C{sessionId}, C{headers}, C{remoteAddress}, ...) are the SockJS session's.

    As on the session's own transport: C{protocol} is the protocol this transport
    carries; C{pauseProducing} and C{resumeProducing} are about what the client sends on
    this channel; a producer registered with C{registerProducer} is paused while the
    connection's outgoing queue is full.

    :ivar topic: The channel's topic, as on the wire.
    :ivar protocol: The protocol this transport carries, as on Twisted's own transports
        and on the session's (C{None} once it has had its C{connectionLost}).
    """

    def __init__(self, mux: MultiplexProtocol, topic: str, protocol: IProtocol) -> None:
        self._mux = mux
        self.topic = topic
        self.protocol: Optional[IProtocol] = protocol
        self._prefix = b"msg," + topic.encode("utf-8", "surrogateescape") + b","
        self._open = True
        # Outgoing: the producer the protocol registered, driven by the connection.
        self._producer: Any = None
        self._producerPaused = False
        self._pausedBytes = 0
        # Incoming: payloads that wait while the protocol paused reading.
        self._held: deque[bytes] = deque()
        self._readPaused = False
        self._delivering = False
        self._drainCall: Optional[IDelayedCall] = None

    def __repr__(self) -> str:
        return f"<ChannelTransport {self.topic!r} open={self._open}>"

    # -- the connection's properties ---------------------------------------------------

    def _session(self) -> Any:
        return self._mux.transport

    @property
    def connected(self) -> bool:
        """
        Is the channel open?
        """
        return self._open

    @property
    def disconnecting(self) -> bool:
        """
        Is the channel closed?
        """
        return not self._open

    @property
    def readyState(self) -> int:
        """
        1 while the channel is open, 3 once it is closed.
        """
        return 1 if self._open else 3

    @property
    def sessionId(self) -> Optional[str]:
        return getattr(self._session(), "sessionId", None)

    @property
    def transportName(self) -> str:
        """
        The SockJS transport the browser uses now (C{"websocket"}, ...).
        """
        name = getattr(self._session(), "transportName", "")
        return name if isinstance(name, str) else ""

    @property
    def prefix(self) -> Optional[str]:
        return getattr(self._session(), "prefix", None)

    @property
    def url(self) -> Optional[str]:
        return getattr(self._session(), "url", None)

    @property
    def pathname(self) -> Optional[str]:
        return getattr(self._session(), "pathname", None)

    @property
    def headers(self) -> dict[str, str]:
        return getattr(self._session(), "headers", {})

    @property
    def remoteAddress(self) -> Optional[str]:
        return getattr(self._session(), "remoteAddress", None)

    @property
    def remotePort(self) -> Optional[int]:
        return getattr(self._session(), "remotePort", None)

    def getPeer(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        The client's address, as the SockJS session sees it.
        """
        session = self._session()
        return session.getPeer() if session is not None else None

    def getHost(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        The server's address, as the SockJS session sees it.
        """
        session = self._session()
        return session.getHost() if session is not None else None

    # -- ITransport ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send one message on this channel.

        :param data: UTF-8 text.
        :raise TypeError: C{data} is not bytes.
        """
        if not self._open:
            return
        if type(data) is not bytes:
            raise TypeError(
                f"transport.write() takes bytes (one UTF-8 message), not {type(data).__name__}"
            )
        mux = self._mux
        if mux._outgoingPaused:
            self._pausedBytes += len(data)
            if self._pausedBytes > mux.factory.maxChannelQueue:
                mux.log.error(
                    "multiplexed channel {topic!r} closed: it wrote {size} bytes while "
                    "the connection was paused",
                    topic=self.topic,
                    size=self._pausedBytes,
                )
                mux._closeChannel(
                    self.topic, Failure(ConnectionLost("channel outgoing queue over limit"))
                )
                return
        session = mux.transport
        assert session is not None
        session.write(self._prefix + data)

    def writeSequence(self, data: list[bytes]) -> None:  # type: ignore[override]
        """
        Send the concatenation of C{data} as one message.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close this channel: the client gets C{uns,<topic>} after what was written; the
        protocol gets C{connectionLost(ConnectionDone)}; what it held unread is dropped.
        The other channels stay open.
        """
        if self._open:
            self._mux._closeChannel(self.topic, Failure(ConnectionDone("channel closed")))

    def abortConnection(self) -> None:
        """
        Close this channel at once: what it held unread is dropped, the client gets
        C{uns,<topic>}, and the protocol gets C{connectionLost(ConnectionAborted)}
        before this returns.  The other channels stay open.
        """
        if self._open:
            self._mux._closeChannel(self.topic, Failure(ConnectionAborted()))

    def close(self, code: int = 3000, reason: str = "Go away!") -> None:
        """
        As L{loseConnection}: a channel's close carries no code.
        """
        self.loseConnection()

    # -- IConsumer -------------------------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register a producer, paused while the connection's outgoing queue is past its
        high-water mark.  A producer registered on a closed channel is stopped at once.

        :raise RuntimeError: Another producer is registered.
        """
        if self._producer is not None:
            raise RuntimeError(
                f"Cannot register producer {producer!r}, because producer "
                f"{self._producer!r} was never unregistered."
            )
        if not self._open:
            producer.stopProducing()
            return
        if not streaming:
            producer = _PullToPush(producer, self)
            producer.startStreaming()
        self._producer = producer
        self._producerPaused = False
        if self._mux._outgoingPaused:
            self._pauseProducer()

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        producer = self._producer
        self._producer = None
        if isinstance(producer, _PullToPush):
            producer.stopStreaming()

    # -- IPushProducer: what the client sends on this channel ---------------------------

    def pauseProducing(self) -> None:
        """
        Stop delivering this channel's messages to C{dataReceived}; they wait, in order.
        The other channels keep flowing.
        """
        self._readPaused = True

    def resumeProducing(self) -> None:
        """
        Deliver the messages that waited, in order, from the reactor in the next turn
        (never from inside this call), and those that follow.
        """
        if not self._readPaused:
            return
        self._readPaused = False
        if self._delivering:
            # The loop that is delivering goes on.
            return
        if self._held and self._open and self._drainCall is None:
            self._drainCall = self._mux._clock.callLater(0, self._drainHeld)

    def stopProducing(self) -> None:
        """
        Close this channel, as C{stopProducing} on a TCP transport does.
        """
        self.loseConnection()

    # -- incoming, driven by the multiplexer ---------------------------------------------

    def _received(self, payload: bytes) -> None:
        """
        The client sent C{payload} on this channel: deliver it, or hold it while the
        protocol does not read (or older messages still wait).
        """
        if self._readPaused or self._held or self._delivering:
            self._held.append(payload)
            self._mux._holding(len(payload))
            return
        self._deliver(payload)

    def _deliver(self, payload: bytes) -> None:
        protocol = self.protocol
        assert protocol is not None
        self._delivering = True
        try:
            protocol.dataReceived(payload)
        except BaseException:
            self._mux.log.failure(
                "multiplexed channel {topic!r}: the protocol's dataReceived raised",
                topic=self.topic,
            )
            self._mux._closeChannel(self.topic, Failure(ConnectionLost("dataReceived raised")))
        finally:
            self._delivering = False

    def _drainHeld(self) -> None:
        self._drainCall = None
        held = self._held
        mux = self._mux
        while held and self._open and not self._readPaused:
            payload = held.popleft()
            mux._released(len(payload))
            self._deliver(payload)

    def _dropHeld(self) -> None:
        """
        The channel is closed: what it held will never be read.
        """
        call = self._drainCall
        if call is not None:
            self._drainCall = None
            call.cancel()
        if self._held:
            size = sum(len(payload) for payload in self._held)
            self._held.clear()
            self._mux._released(size)

    # -- outgoing backpressure, driven by the connection --------------------------------

    def _pauseProducer(self) -> None:
        """
        The connection cannot take more: pause this channel's producer.
        """
        producer = self._producer
        if producer is not None and not self._producerPaused:
            self._producerPaused = True
            producer.pauseProducing()

    def _resumeProducer(self) -> None:
        """
        The connection can take more: resume this channel's producer.
        """
        self._pausedBytes = 0
        producer = self._producer
        if producer is not None and self._producerPaused:
            self._producerPaused = False
            producer.resumeProducing()

    def _stopProducer(self) -> None:
        """
        The channel is gone: stop this channel's producer.
        """
        producer = self._producer
        self._producer = None
        if producer is not None:
            producer.stopProducing()


@implementer(IPushProducer)
class MultiplexProtocol(Protocol):
    """
    One multiplexed SockJS connection: parses its lines and runs its channels.  It is the
    streaming producer registered on the SockJS transport: the session pauses it when its
    outgoing queue is full, and it pauses every channel's producer in turn.
    """

    log = Logger()
    factory: MultiplexFactory

    def __init__(self, factory: MultiplexFactory) -> None:
        self.factory = factory
        self._channels: dict[str, ChannelTransport] = {}
        self._outgoingPaused = False
        self._incomingPaused = False
        self._heldBytes = 0
        self._ended = False
        self._clock: IReactorTime

    def connectionMade(self) -> None:
        transport: Any = self.transport
        self._clock = _clockOf(transport)
        transport.registerProducer(self, True)

    def channels(self) -> list[str]:
        """
        The topics subscribed on this connection now.
        """
        return list(self._channels)

    @property
    def heldBytes(self) -> int:
        """
        Bytes of messages the channels of this connection hold while their protocols do
        not read.
        """
        return self._heldBytes

    def dataReceived(self, data: bytes) -> None:
        parts = data.split(b",", 2)
        if len(parts) < 2:
            return
        kind = parts[0]
        topic = parts[1].decode("utf-8", "surrogateescape")
        if kind == b"msg":
            channel = self._channels.get(topic)
            if channel is not None:
                channel._received(parts[2] if len(parts) == 3 else b"")
        elif kind == b"sub":
            if topic not in self._channels:
                self._subscribe(topic)
        elif kind == b"uns":
            if topic in self._channels:
                self._lose(topic, Failure(ConnectionDone("unsubscribed")))

    def _subscribe(self, topic: str) -> None:
        factory = self.factory.channelFactory(topic)
        protocol: Optional[IProtocol] = None
        if factory is not None:
            try:
                protocol = factory.buildProtocol(self.transport.getPeer())  # type: ignore[union-attr]
            except BaseException:
                self.log.failure(
                    "multiplexed channel {topic!r}: buildProtocol raised", topic=topic
                )
        if protocol is None:
            self._send(b"uns," + topic.encode("utf-8", "surrogateescape"))
            return
        channel = ChannelTransport(self, topic, protocol)
        self._channels[topic] = channel
        try:
            protocol.makeConnection(channel)
        except BaseException:
            self.log.failure(
                "multiplexed channel {topic!r}: the protocol's makeConnection raised",
                topic=topic,
            )
            self._closeChannel(topic, Failure(ConnectionLost("makeConnection raised")))

    def _send(self, line: bytes) -> None:
        if not self._ended and self.transport is not None:
            self.transport.write(line)

    def _closeChannel(self, topic: str, reason: Failure) -> None:
        """
        The server ends the channel: tell the client (C{uns}) and the protocol.
        """
        if topic in self._channels:
            self._send(b"uns," + topic.encode("utf-8", "surrogateescape"))
            self._lose(topic, reason)

    def _lose(self, topic: str, reason: Failure) -> None:
        """
        The one way a channel ends: what it held is dropped, its producer stopped, and
        its protocol gets C{connectionLost(reason)}, once.
        """
        channel = self._channels.pop(topic)
        channel._open = False
        channel._dropHeld()
        protocol = channel.protocol
        channel.protocol = None
        try:
            channel._stopProducer()
        except BaseException:
            self.log.failure(
                "multiplexed channel {topic!r}: the producer's stopProducing raised",
                topic=topic,
            )
        if protocol is None:
            return
        try:
            protocol.connectionLost(reason)
        except BaseException:
            self.log.failure(
                "multiplexed channel {topic!r}: the protocol's connectionLost raised",
                topic=topic,
            )

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The SockJS session ended: every channel's protocol gets C{reason}.
        """
        self._ended = True
        for topic in list(self._channels):
            self._lose(topic, reason)

    # -- what the channels hold: bounded over the connection ------------------------------

    def _holding(self, size: int) -> None:
        """
        A channel holds C{size} more bytes: past C{maxHeld}, stop reading the connection.
        """
        self._heldBytes += size
        if (
            self._heldBytes > self.factory.maxHeld
            and not self._incomingPaused
            and not self._ended
            and self.transport is not None
        ):
            self._incomingPaused = True
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def _released(self, size: int) -> None:
        """
        A channel delivered or dropped C{size} held bytes: at half C{maxHeld}, read the
        connection again.
        """
        self._heldBytes -= size
        if (
            self._incomingPaused
            and self._heldBytes <= self.factory.maxHeld // 2
            and not self._ended
            and self.transport is not None
        ):
            self._incomingPaused = False
            self.transport.resumeProducing()  # type: ignore[attr-defined]

    # -- IPushProducer: the session pauses us when its outgoing queue is full ----------

    def pauseProducing(self) -> None:
        """
        The connection's outgoing queue is past its high-water mark: pause every
        channel's producer.
        """
        self._outgoingPaused = True
        for channel in list(self._channels.values()):
            channel._pauseProducer()

    def resumeProducing(self) -> None:
        """
        The connection's outgoing queue drained: resume every channel's producer.
        """
        self._outgoingPaused = False
        for channel in list(self._channels.values()):
            channel._resumeProducer()

    def stopProducing(self) -> None:
        """
        The session is ending; L{connectionLost} follows and ends every channel.
        """


class MultiplexFactory(Factory):
    """
    Serve several protocol factories over one SockJS connection, one per topic:
    C{SockJSFactory(MultiplexFactory({"chat": chatFactory, "ticker": tickerFactory}))}.

    The wrapped factories' C{doStart}/C{doStop} follow this one's.

    :ivar maxChannelQueue: Bytes a channel may write while the connection is paused
        before that channel alone is closed.
    :ivar maxHeld: Bytes the channels of one connection may hold, in all, while their
        protocols paused reading, before the multiplexer stops reading the connection
        (until they hold half as much).
    """

    protocol = MultiplexProtocol  # type: ignore[assignment]

    def __init__(
        self,
        channels: Mapping[str, IProtocolFactory],
        maxChannelQueue: int = DEFAULT_MAX_CHANNEL_QUEUE,
        maxHeld: int = DEFAULT_MAX_HELD,
    ) -> None:
        """
        :param channels: Channel names (as the browser code gives them to
            C{multiplexer.channel(name)}) to the factories that serve them.
        :param maxChannelQueue: See the class's ivar.
        :param maxHeld: See the class's ivar.
        """
        self._byTopic = {jsEscape(name): factory for name, factory in channels.items()}
        self.maxChannelQueue = maxChannelQueue
        self.maxHeld = maxHeld

    def channelFactory(self, topic: str) -> Optional[IProtocolFactory]:
        """
        The factory serving C{topic} (as on the wire), if any.
        """
        return self._byTopic.get(topic)

    def startFactory(self) -> None:
        for factory in self._byTopic.values():
            factory.doStart()

    def stopFactory(self) -> None:
        for factory in self._byTopic.values():
            factory.doStop()

    def buildProtocol(self, addr: Optional[IAddress]) -> MultiplexProtocol:  # type: ignore[override]
        return MultiplexProtocol(self)
