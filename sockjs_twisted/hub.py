"""
Publish/subscribe for SockJS sessions: a message published on a channel reaches every
transport subscribed to it, in this process (L{LocalHub}) or in every process and on every
machine that shares a Redis server (L{RedisHub}).

A subscriber is any transport with C{write(bytes)}: a SockJS session's transport, or
anything else that looks like one.  A message is one UTF-8 text message, as
C{transport.write} takes it.
"""

from __future__ import annotations

import os
import random
from collections import deque
from typing import Any, Callable, Optional
from urllib.parse import unquote, urlsplit

from twisted.application.internet import backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from ._framing import decodeWritten, quoteMessage
from ._redis import RedisProtocol
from ._session import SockJSTransport

__all__ = ["IHub", "LocalHub", "RedisHub", "hubFromURL", "parseRedisURL", "writeQuoted"]


class IHub(Interface):
    """
    Channels of subscribers; a message published on a channel is written to each.
    """

    def subscribe(channel: str, transport: Any) -> None:
        """
        Write every message later published on C{channel} to C{transport} (once, however
        often it subscribes).  A transport found C{disconnecting} (closed) when a message
        comes is unsubscribed from every channel.
        """

    def unsubscribe(channel: str, transport: Any) -> None:
        """
        Stop writing C{channel}'s messages to C{transport}.
        """

    def unsubscribeAll(transport: Any) -> None:
        """
        Unsubscribe C{transport} from every channel (call it from C{connectionLost}).
        """

    def publish(channel: str, message: bytes) -> None:
        """
        Write C{message} (UTF-8 text) to every subscriber of C{channel}.  Each
        publisher's messages arrive in the order it published them.

        :raise TypeError: C{message} is not bytes.
        :raise ValueError: C{message} is not UTF-8.
        """

    published = Attribute("Messages published through this hub.")
    delivered = Attribute("Writes made to this process's subscribers.")


def writeQuoted(transport: Any, message: bytes, quoted: str) -> None:
    """
    Write C{message} to C{transport}, whose quoted form (SockJS JSON) is C{quoted}
    already, so that a message for many sessions is checked and quoted once.

    This is the one place the hub knows what a session is.  A session's own
    C{write} still applies its limits (closed sessions drop writes; a session whose
    client does not read is closed when its queue passes C{max_queue_size}), so a slow
    subscriber never holds up the others.  Any other transport gets C{write(message)}.
    """
    if type(transport) is SockJSTransport:
        session = transport._session
        if session._framed and not session._tail:
            # The session quotes through its endpoint, which remembers the last bytes
            # object it quoted: hand it the answer.
            registry = session._factory
            registry._lastData = message
            registry._lastQuoted = quoted
    transport.write(message)


def _decodeMessage(message: bytes) -> str:
    """
    One whole message, as C{publish} takes it: UTF-8 text (lone surrogates pass, as
    SockJS framing carries them).

    :raise TypeError: Not bytes.
    :raise ValueError: Not UTF-8 text, or cut in the middle of a character.
    """
    return decodeWritten(message, True)


@implementer(IHub)
class LocalHub:
    """
    The hub of one process.

    :ivar published: Messages published.
    :ivar delivered: Writes made to subscribers.
    :ivar failed: Writes that raised (logged; the other subscribers still got theirs).
    """

    log = Logger()

    def __init__(self) -> None:
        # Dicts, not sets: subscribers get messages in the order they subscribed.
        self._channels: dict[str, dict[Any, None]] = {}
        self._byTransport: dict[Any, dict[str, None]] = {}
        self.published = 0
        self.delivered = 0
        self.failed = 0

    def subscribers(self, channel: str) -> list[Any]:
        """
        The transports subscribed to C{channel}.
        """
        return list(self._channels.get(channel, ()))

    def channels(self) -> list[str]:
        """
        The channels that have subscribers.
        """
        return list(self._channels)

    def subscribe(self, channel: str, transport: Any) -> None:
        members = self._channels.get(channel)
        if members is None:
            members = self._channels[channel] = {}
            self._channelAdded(channel)
        members[transport] = None
        self._byTransport.setdefault(transport, {})[channel] = None

    def unsubscribe(self, channel: str, transport: Any) -> None:
        members = self._channels.get(channel)
        if members is None or transport not in members:
            return
        del members[transport]
        channels = self._byTransport.get(transport)
        if channels is not None:
            channels.pop(channel, None)
            if not channels:
                del self._byTransport[transport]
        if not members:
            del self._channels[channel]
            self._channelRemoved(channel)

    def unsubscribeAll(self, transport: Any) -> None:
        for channel in list(self._byTransport.get(transport, ())):
            self.unsubscribe(channel, transport)

    def publish(self, channel: str, message: bytes) -> None:
        quoted = quoteMessage(_decodeMessage(message))
        self.published += 1
        self.deliver(channel, message, quoted)

    def deliver(self, channel: str, message: bytes, quoted: Optional[str] = None) -> None:
        """
        Write C{message} to this process's subscribers of C{channel}.

        :param quoted: C{message} quoted already, if it was.
        """
        members = self._channels.get(channel)
        if not members:
            return
        if quoted is None:
            quoted = quoteMessage(_decodeMessage(message))
        for transport in list(members):
            if getattr(transport, "disconnecting", False):
                # Closed or closing (a session drops writes then): forget it, in case its
                # protocol does not unsubscribe.
                self.unsubscribeAll(transport)
                continue
            try:
                writeQuoted(transport, message, quoted)
            except Exception:
                self.failed += 1
                self.log.failure(
                    "Hub: writing to a subscriber of {channel!r} failed", channel=channel
                )
            else:
                self.delivered += 1

    def _channelAdded(self, channel: str) -> None:
        """
        C{channel} got its first subscriber.
        """

    def _channelRemoved(self, channel: str) -> None:
        """
        C{channel} lost its last subscriber.
        """


class _Backoff:
    """
    Delays between reconnection attempts: doubling from C{initial} up to C{maximum},
    each drawn at random between half of it and all of it.
    """

    def __init__(self, initial: float, maximum: float, rand: Callable[[], float]) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rand = rand
        self._policy = backoffPolicy(initial, maximum, factor=2.0, jitter=lambda: 0.0)
        self.attempts = 0

    def next(self) -> float:
        delay = self._policy(self.attempts)
        self.attempts = min(self.attempts + 1, 32)
        return delay * (0.5 + self._rand() / 2)

    def reset(self) -> None:
        self.attempts = 0


class _RedisLink:
    """
    One connection to Redis, made again (with backoff) whenever it is lost, until
    L{stop}.
    """

    log = Logger()

    def __init__(
        self,
        name: str,
        reactor: Any,
        connect: Callable[[], Deferred[Any]],
        backoff: _Backoff,
        ready: Callable[[Any], None],
        lost: Callable[[], None],
    ) -> None:
        self.name = name
        self._reactor = reactor
        self._connect = connect
        self._backoff = backoff
        self._ready = ready
        self._lostCallback = lost
        self.protocol: Any = None
        self._attempt: Optional[Deferred[Any]] = None
        self._retry: Optional[IDelayedCall] = None
        self._running = False
        self._failedOnce = False
        self.connections = 0

    def start(self) -> None:
        self._running = True
        self._try()

    def stop(self) -> Deferred[None]:
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._attempt is not None:
            self._attempt.cancel()
        protocol = self.protocol
        if protocol is None or protocol.transport is None:
            return succeed(None)
        done = protocol.whenDisconnected()
        protocol.transport.loseConnection()
        done.addCallback(lambda _: None)
        return done  # type: ignore[no-any-return]

    def _try(self) -> None:
        self._retry = None
        if not self._running:
            return
        d = self._attempt = self._connect()
        d.addCallbacks(self._connected, self._failed)

    def _connected(self, protocol: Any) -> None:
        self._attempt = None
        if not self._running:
            protocol.transport.loseConnection()
            return
        self.protocol = protocol
        self._backoff.reset()
        self.connections += 1
        if self._failedOnce:
            self.log.info("Hub: Redis {name} connection made again", name=self.name)
        self._failedOnce = False
        protocol.whenDisconnected().addCallback(self._disconnected)
        self._ready(protocol)

    def _disconnected(self, _: object) -> None:
        self.protocol = None
        self._lostCallback()
        if self._running:
            self.log.warn("Hub: Redis {name} connection lost; reconnecting", name=self.name)
            self._failedOnce = True
            self._schedule()

    def _failed(self, reason: Failure) -> None:
        self._attempt = None
        if not self._running:
            return
        if not self._failedOnce:
            self.log.warn(
                "Hub: cannot reach Redis ({name}): {error}; retrying",
                name=self.name,
                error=reason.getErrorMessage(),
            )
        self._failedOnce = True
        self._schedule()

    def _schedule(self) -> None:
        self._retry = self._reactor.callLater(self._backoff.next(), self._try)


@implementer(IHub)
class RedisHub(LocalHub, Service):
    """
    A hub whose publishes reach the subscribers of every process connected to the same
    Redis server, over Redis pub/sub.

    Subscribers in this process get a message at once, whether Redis can be reached or
    not; the other processes get it through Redis.  Each message travels as
    C{<hub id> <sequence number> <message>} on the Redis channel C{<prefix><channel>}, so
    a receiver skips its own messages and duplicates, and counts the ones it missed.

    Publishes made while Redis cannot be reached, and those sent but not acknowledged
    when the connection was lost, wait in a buffer of at most C{bufferSize} messages
    (the oldest go first when it is full: counted in C{dropped}), sent again in order once
    both connections are back and C{settleDelay} seconds have passed (time for the other
    processes to subscribe again).  Whatever reaches Redis while another process's
    subscribing connection is down is lost for that process (Redis pub/sub keeps
    nothing): that process counts it in C{missed} when the next message from the same
    publisher arrives.

    It is a service: start it to connect, stop it to disconnect.

    :ivar dropped: Publishes this hub dropped because its buffer was full.
    :ivar missed: Messages from other processes this hub knows it missed (sequence
        gaps).
    :ivar duplicates: Messages received twice (sent again after a lost
        acknowledgement), skipped.
    :ivar received: Messages received from other processes and delivered here.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: Optional[str] = None,
        reactor: Optional[Any] = None,
        prefix: str = "sockjs:",
        bufferSize: int = 10_000,
        initialDelay: float = 0.1,
        maxDelay: float = 2.0,
        connectTimeout: float = 5.0,
        settleDelay: Optional[float] = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """
        :param host: The Redis server's host.
        :param port: Its port.
        :param password: Its password, if it needs one.
        :param reactor: Provides TCP and time; the global reactor by default.
        :param prefix: Put before every channel name on Redis.
        :param bufferSize: Most publishes kept while Redis cannot be reached.
        :param initialDelay: Seconds before the first reconnection attempt; then twice
            as long each time...
        :param maxDelay: ... up to this.
        :param connectTimeout: Seconds a connection attempt may take.
        :param settleDelay: After an outage, seconds to wait once both connections are
            back before sending what was buffered (and anything published meanwhile),
            so that other processes have subscribed again: C{maxDelay} by default.
        :param rand: A random number in [0, 1), to spread reconnection attempts.
        """
        LocalHub.__init__(self)
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self._reactor = reactor
        self.host = host
        self.port = port
        self._password = password
        self.prefix = prefix
        self.bufferSize = bufferSize
        self._connectTimeout = connectTimeout
        self.hubId = os.urandom(8).hex()
        self._sequence: dict[str, int] = {}
        self._lastSeen: dict[tuple[str, str], int] = {}
        self._buffer: deque[tuple[bytes, bytes]] = deque()
        self._unacknowledged: deque[tuple[bytes, bytes]] = deque()
        self._subscribed = False
        self._settleDelay = maxDelay if settleDelay is None else settleDelay
        self._outage = False
        self._settling: Optional[IDelayedCall] = None
        self.dropped = 0
        self.missed = 0
        self.duplicates = 0
        self.received = 0
        self._publisher = _RedisLink(
            "publishing",
            reactor,
            self._connectPublisher,
            _Backoff(initialDelay, maxDelay, rand),
            self._publisherReady,
            self._publisherLost,
        )
        self._subscriber = _RedisLink(
            "subscribing",
            reactor,
            self._connectSubscriber,
            _Backoff(initialDelay, maxDelay, rand),
            self._subscriberReady,
            self._subscriberLost,
        )

    def __repr__(self) -> str:
        return f"<RedisHub {self.host}:{self.port} {self.hubId}>"

    # -- the service -----------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        self._publisher.start()
        self._subscriber.start()

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        if self._settling is not None and self._settling.active():
            self._settling.cancel()
        self._settling = None
        from twisted.internet.defer import gatherResults

        return gatherResults(  # type: ignore[return-value]
            [self._publisher.stop(), self._subscriber.stop()]
        ).addCallback(lambda _: None)

    @property
    def connected(self) -> bool:
        """
        Are both connections to Redis up (and this hub's channels subscribed), and has
        the hub settled after an outage?
        """
        return self._linked() and not self._outage

    def _linked(self) -> bool:
        return self._publisher.protocol is not None and self._subscribed

    def _linkReady(self) -> None:
        if not self._linked():
            return
        if self._outage:
            if self._settling is None:
                self._settling = self._reactor.callLater(self._settleDelay, self._settled)
            return
        self._flush()

    def _settled(self) -> None:
        self._settling = None
        self._outage = False
        self._flush()

    def _linkLost(self) -> None:
        self._outage = True
        if self._settling is not None and self._settling.active():
            self._settling.cancel()
        self._settling = None

    @property
    def buffered(self) -> int:
        """
        Publishes waiting for Redis.
        """
        return len(self._buffer)

    def stats(self) -> dict[str, int]:
        """
        The counters, by name.
        """
        return {
            "published": self.published,
            "delivered": self.delivered,
            "received": self.received,
            "buffered": self.buffered,
            "dropped": self.dropped,
            "missed": self.missed,
            "duplicates": self.duplicates,
        }

    # -- publishing ------------------------------------------------------------------

    def publish(self, channel: str, message: bytes) -> None:
        LocalHub.publish(self, channel, message)
        sequence = self._sequence.get(channel, 0) + 1
        self._sequence[channel] = sequence
        payload = b"%s %d %s" % (self.hubId.encode("ascii"), sequence, message)
        item = (self._redisChannel(channel), payload)
        if self._buffer or not self.connected:
            self._bufferItem(item)
        else:
            self._send(item)

    def _redisChannel(self, channel: str) -> bytes:
        return (self.prefix + channel).encode("utf-8")

    def _bufferItem(self, item: tuple[bytes, bytes]) -> None:
        self._buffer.append(item)
        while len(self._buffer) > self.bufferSize:
            self._buffer.popleft()
            self.dropped += 1

    def _send(self, item: tuple[bytes, bytes]) -> None:
        protocol = self._publisher.protocol
        self._unacknowledged.append(item)
        d = protocol.publish(*item)
        d.addCallbacks(self._acknowledged, self._notAcknowledged)

    def _acknowledged(self, _: object) -> None:
        if self._unacknowledged:
            self._unacknowledged.popleft()

    def _notAcknowledged(self, reason: Failure) -> None:
        # The connection was lost: _publisherLost puts the item back in the buffer.
        pass

    def _flush(self) -> None:
        while self._buffer and self.connected:
            self._send(self._buffer.popleft())

    def _connectPublisher(self) -> Deferred[Any]:
        return self._connectProtocol(None)

    def _publisherReady(self, protocol: Any) -> None:
        self._linkReady()

    def _publisherLost(self) -> None:
        self._linkLost()
        # Sent, never acknowledged: maybe lost with the connection. Send them again
        # (receivers skip duplicates), before what was buffered since.
        if self._unacknowledged:
            self._buffer.extendleft(reversed(self._unacknowledged))
            self._unacknowledged.clear()
            while len(self._buffer) > self.bufferSize:
                self._buffer.popleft()
                self.dropped += 1

    # -- subscribing -----------------------------------------------------------------

    def _connectSubscriber(self) -> Deferred[Any]:
        return self._connectProtocol(self._messageReceived)

    def _subscriberReady(self, protocol: Any) -> None:
        channels = [self._redisChannel(channel) for channel in self._channels]
        if channels:
            d = protocol.subscribe(channels)
            d.addCallbacks(lambda _: self._subscribedAll(), self._subscribeFailed)
        else:
            self._subscribedAll()

    def _subscribedAll(self) -> None:
        self._subscribed = True
        self._linkReady()

    def _subscribeFailed(self, reason: Failure) -> None:
        self.log.warn("Hub: SUBSCRIBE failed: {error}", error=reason.getErrorMessage())

    def _subscriberLost(self) -> None:
        self._subscribed = False
        self._linkLost()

    def _channelAdded(self, channel: str) -> None:
        protocol = self._subscriber.protocol
        if protocol is not None:
            protocol.subscribe([self._redisChannel(channel)]).addErrback(self._subscribeFailed)

    def _channelRemoved(self, channel: str) -> None:
        protocol = self._subscriber.protocol
        if protocol is not None:
            protocol.unsubscribe([self._redisChannel(channel)]).addErrback(self._subscribeFailed)

    def _messageReceived(self, redisChannel: bytes, payload: bytes) -> None:
        prefix = self.prefix.encode("utf-8")
        if not redisChannel.startswith(prefix):
            return
        try:
            channel = redisChannel[len(prefix) :].decode("utf-8")
            origin, sequenceText, message = payload.split(b" ", 2)
            sequence = int(sequenceText)
            originId = origin.decode("ascii")
        except ValueError:
            self.log.warn("Hub: ignored a malformed message on {channel!r}", channel=redisChannel)
            return
        if originId == self.hubId:
            return
        key = (originId, channel)
        last = self._lastSeen.get(key)
        if last is not None:
            if sequence <= last:
                self.duplicates += 1
                return
            self.missed += sequence - last - 1
        self._lastSeen[key] = sequence
        self.received += 1
        try:
            self.deliver(channel, message)
        except ValueError:
            self.log.warn(
                "Hub: ignored a message that is not UTF-8 on {channel!r}", channel=channel
            )

    # -- connecting ----------------------------------------------------------------

    def _connectProtocol(
        self, onMessage: Optional[Callable[[bytes, bytes], None]]
    ) -> Deferred[Any]:
        from twisted.internet.endpoints import HostnameEndpoint, connectProtocol

        protocol = RedisProtocol(password=self._password, onMessage=onMessage)
        endpoint = HostnameEndpoint(
            self._reactor, self.host, self.port, timeout=self._connectTimeout
        )
        d = connectProtocol(endpoint, protocol)
        d.addCallback(lambda p: p.ready)
        return d


def parseRedisURL(url: str) -> tuple[str, int, Optional[str]]:
    """
    The host, port and password of C{redis://[:password@]host[:port][/db]} (the
    database number is accepted and ignored: Redis pub/sub channels span databases).

    :raise ValueError: Not such a URL.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError(f"not a redis://host[:port] URL: {url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, password


def hubFromURL(url: str, reactor: Optional[Any] = None) -> RedisHub:
    """
    A L{RedisHub} (not started) for C{redis://[:password@]host[:port][/db]}.

    :raise ValueError: Not such a URL.
    """
    host, port, password = parseRedisURL(url)
    return RedisHub(host, port, password=password, reactor=reactor)
