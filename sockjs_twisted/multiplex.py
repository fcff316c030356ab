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

Limits and backpressure per channel:

- the SockJS connection's limits (C{max_message_size}, C{max_body_size}) bound each line;
- when the connection's outgoing queue passes its high-water mark, every channel's
  streaming producer is paused, and resumed when the queue drains (a pull producer is
  driven as Twisted's TLS transport drives one, through C{_PullToPush});
- a channel that keeps writing while the connection is paused is closed on its own
  (C{uns}, and C{connectionLost(ConnectionLost)} for its protocol) once it has written
  C{maxChannelQueue} bytes since the pause began; the other channels and the
  connection stay open.  (Without it, one channel ignoring backpressure would make the
  whole session pass C{max_queue_size} and close with 1013.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from twisted.internet._producer_helpers import _PullToPush
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .interfaces import ISockJSTransport

__all__ = ["ChannelTransport", "MultiplexFactory", "MultiplexProtocol", "jsEscape"]

DEFAULT_MAX_CHANNEL_QUEUE = 1024 * 1024

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


@implementer(ISockJSTransport, IPushProducer)
class ChannelTransport:
    """
    The transport of one channel's protocol.  C{write} sends C{msg,<topic>,<data>} over
    the connection; C{loseConnection} sends C{uns,<topic>}.  The connection's properties
    (C{sessionId}, C{headers}, C{remoteAddress}, ...) are the SockJS session's.

    :ivar topic: The channel's topic, as on the wire.
    """

    def __init__(self, mux: MultiplexProtocol, topic: str) -> None:
        self._mux = mux
        self.topic = topic
        self._prefix = b"msg," + topic.encode("utf-8") + b","
        self._open = True
        self._producer: Any = None
        self._producerPaused = False
        self._pausedBytes = 0

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
        session = self._session()
        name = getattr(session, "transportName", None)
        if name is None:
            name = getattr(session, "protocol", "")
        return name if isinstance(name, str) else ""

    @property
    def protocol(self) -> str:
        return self.transportName

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
        if mux._paused:
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
        Close this channel: the client gets C{uns,<topic>}; the other channels stay open.
        """
        if self._open:
            self._mux._closeChannel(self.topic, Failure(ConnectionDone("channel closed")))

    def abortConnection(self) -> None:
        """
        As L{loseConnection}: the protocol has nothing more abrupt.
        """
        self.loseConnection()

    def close(self, code: int = 3000, reason: str = "Go away!") -> None:
        """
        As L{loseConnection}: a channel's close carries no code.
        """
        self.loseConnection()

    # -- IConsumer -------------------------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register a producer, paused while the connection's outgoing queue is past its
        high-water mark.
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
        if self._mux._paused:
            self.pauseProducing()

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        producer = self._producer
        self._producer = None
        if isinstance(producer, _PullToPush):
            producer.stopStreaming()

    # -- IPushProducer: driven by the connection --------------------------------------------

    def pauseProducing(self) -> None:
        """
        The connection cannot take more: pause this channel's producer.
        """
        producer = self._producer
        if producer is not None and not self._producerPaused:
            self._producerPaused = True
            producer.pauseProducing()

    def resumeProducing(self) -> None:
        """
        The connection can take more: resume this channel's producer.
        """
        self._pausedBytes = 0
        producer = self._producer
        if producer is not None and self._producerPaused:
            self._producerPaused = False
            producer.resumeProducing()

    def stopProducing(self) -> None:
        """
        The channel is gone: stop this channel's producer.
        """
        producer = self._producer
        self._producer = None
        if producer is not None:
            producer.stopProducing()


class MultiplexProtocol(Protocol):
    """
    One multiplexed SockJS connection: parses its lines and runs its channels.
    """

    log = Logger()
    factory: MultiplexFactory

    def __init__(self, factory: MultiplexFactory) -> None:
        self.factory = factory
        self._channels: dict[str, tuple[IProtocol, ChannelTransport]] = {}
        self._paused = False
        self._ended = False

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.registerProducer(self, True)

    def channels(self) -> list[str]:
        """
        The topics subscribed on this connection now.
        """
        return list(self._channels)

    def dataReceived(self, data: bytes) -> None:
        parts = data.split(b",", 2)
        if len(parts) < 2:
            return
        kind = parts[0]
        topic = parts[1].decode("utf-8", "surrogateescape")
        if kind == b"msg":
            channel = self._channels.get(topic)
            if channel is None:
                return
            protocol = channel[0]
            try:
                protocol.dataReceived(parts[2] if len(parts) == 3 else b"")
            except BaseException:
                self.log.failure(
                    "multiplexed channel {topic!r}: the protocol's dataReceived raised",
                    topic=topic,
                )
                self._closeChannel(topic, Failure(ConnectionLost("dataReceived raised")))
        elif kind == b"sub":
            if topic not in self._channels:
                self._subscribe(topic)
        elif kind == b"uns":
            channel = self._channels.get(topic)
            if channel is not None:
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
        channel = ChannelTransport(self, topic)
        self._channels[topic] = (protocol, channel)
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
            self._send(b"uns," + topic.encode("utf-8"))
            self._lose(topic, reason)

    def _lose(self, topic: str, reason: Failure) -> None:
        protocol, channel = self._channels.pop(topic)
        channel._open = False
        channel.stopProducing()
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

    # -- IPushProducer: the session pauses us when its queue is full -------------------

    def pauseProducing(self) -> None:
        self._paused = True
        for _, channel in list(self._channels.values()):
            channel.pauseProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        for _, channel in list(self._channels.values()):
            channel.resumeProducing()

    def stopProducing(self) -> None:
        pass


class MultiplexFactory(Factory):
    """
    Serve several protocol factories over one SockJS connection, one per topic:
    C{SockJSFactory(MultiplexFactory({"chat": chatFactory, "ticker": tickerFactory}))}.

    The wrapped factories' C{doStart}/C{doStop} follow this one's.

    :ivar maxChannelQueue: Bytes a channel may write while the connection is paused
        before that channel alone is closed.
    """

    protocol = MultiplexProtocol  # type: ignore[assignment]

    def __init__(
        self,
        channels: Mapping[str, IProtocolFactory],
        maxChannelQueue: int = DEFAULT_MAX_CHANNEL_QUEUE,
    ) -> None:
        """
        :param channels: Channel names (as the browser code gives them to
            C{multiplexer.channel(name)}) to the factories that serve them.
        :param maxChannelQueue: See the class's ivar.
        """
        self._byTopic = {jsEscape(name): factory for name, factory in channels.items()}
        self.maxChannelQueue = maxChannelQueue

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
