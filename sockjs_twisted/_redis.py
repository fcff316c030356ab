"""
The little of the Redis protocol (RESP2) the hub needs: commands with replies in order
(PUBLISH, AUTH), and the pub/sub mode of a subscribing connection (SUBSCRIBE,
UNSUBSCRIBE, and the messages pushed to it).

Every reply in a network read is handled in that read: a pub/sub message costs no extra
reactor turn (txredisapi 1.6, which the hub used first, resumes its parser in a new
reactor turn after every bulk string: three turns and an epoll unregister/register per
message, which made a busy worker slow to take broadcasts from Redis).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional, Union

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

__all__ = ["RedisError", "RedisProtocol", "encodeCommand"]

Reply = Union[bytes, int, None, list["Reply"], "RedisError"]


class RedisError(Exception):
    """
    An error reply from Redis.
    """


class _Incomplete(Exception):
    pass


def encodeCommand(*args: bytes) -> bytes:
    """
    A command as RESP: an array of bulk strings.
    """
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def _parse(buffer: bytes, start: int) -> tuple[Reply, int]:
    """
    The reply at C{buffer[start:]}, and where the next one starts.

    :raise _Incomplete: The reply has not arrived whole.
    """
    end = buffer.find(b"\r\n", start)
    if end < 0:
        raise _Incomplete()
    kind = buffer[start : start + 1]
    line = buffer[start + 1 : end]
    after = end + 2
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, after
        if len(buffer) < after + length + 2:
            raise _Incomplete()
        return buffer[after : after + length], after + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items: list[Reply] = []
        for _ in range(count):
            item, after = _parse(buffer, after)
            items.append(item)
        return items, after
    if kind == b":":
        return int(line), after
    if kind == b"+":
        return line, after
    if kind == b"-":
        return RedisError(line.decode("utf-8", "replace")), after
    raise ValueError(f"not a Redis reply: {buffer[start : start + 40]!r}")


class RedisProtocol(Protocol):
    """
    One connection to Redis.

    :ivar ready: Fires with this protocol once the connection is made (and
        authenticated, with a password); fails if AUTH fails.
    """

    def __init__(
        self,
        password: Optional[str] = None,
        onMessage: Optional[Callable[[bytes, bytes], None]] = None,
    ) -> None:
        """
        :param password: Sent with AUTH first, if given.
        :param onMessage: Called with C{(channel, message)} for every pub/sub message
            (a subscribing connection).
        """
        self._password = password
        self._onMessage = onMessage
        self._buffer = b""
        self._replies: deque[Deferred[Any]] = deque()
        self._confirmations: deque[list[Any]] = deque()
        self._lostWaiters: list[Deferred[None]] = []
        self.ready: Deferred[RedisProtocol] = Deferred()
        self.connected = False

    # -- the connection ----------------------------------------------------------------

    def connectionMade(self) -> None:
        self.connected = True
        transport: Any = self.transport
        try:
            transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            pass
        if self._password is None:
            self.ready.callback(self)
            return
        d = self.command(b"AUTH", self._password.encode("utf-8"))

        def authFailed(reason: Failure) -> None:
            transport.loseConnection()
            self.ready.errback(reason)

        d.addCallbacks(lambda _: self.ready.callback(self), authFailed)

    def whenDisconnected(self) -> Deferred[None]:
        """
        A L{Deferred} that fires when the connection is lost.
        """
        d: Deferred[None] = Deferred()
        if not self.connected and self.transport is not None:
            d.callback(None)
        else:
            self._lostWaiters.append(d)
        return d

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected = False
        waiters, self._lostWaiters = self._lostWaiters, []
        for waiter in waiters:
            waiter.callback(None)
        replies, self._replies = self._replies, deque()
        for d in replies:
            d.errback(Failure(ConnectionLost("the connection to Redis was lost")))
        confirmations, self._confirmations = self._confirmations, deque()
        for _, d in confirmations:
            d.errback(Failure(ConnectionLost("the connection to Redis was lost")))
        if not self.ready.called:
            self.ready.errback(Failure(ConnectionLost("the connection to Redis was lost")))

    # -- commands --------------------------------------------------------------------

    def command(self, *args: bytes) -> Deferred[Any]:
        """
        Send a command; the L{Deferred} fires with its reply (fails with L{RedisError}).
        """
        d: Deferred[Any] = Deferred()
        self._replies.append(d)
        assert self.transport is not None
        self.transport.write(encodeCommand(*args))
        return d

    def publish(self, channel: bytes, message: bytes) -> Deferred[Any]:
        """
        PUBLISH; fires with how many subscribers Redis delivered it to.
        """
        return self.command(b"PUBLISH", channel, message)

    def subscribe(self, channels: list[bytes]) -> Deferred[None]:
        """
        SUBSCRIBE; fires once Redis confirmed every channel.
        """
        return self._pubsub(b"SUBSCRIBE", channels)

    def unsubscribe(self, channels: list[bytes]) -> Deferred[None]:
        """
        UNSUBSCRIBE; fires once Redis confirmed every channel.
        """
        return self._pubsub(b"UNSUBSCRIBE", channels)

    def _pubsub(self, verb: bytes, channels: list[bytes]) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._confirmations.append([len(channels), d])
        assert self.transport is not None
        self.transport.write(encodeCommand(verb, *channels))
        return d

    # -- replies ---------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        position = 0
        try:
            while position < len(buffer):
                reply, position = _parse(buffer, position)
                self._replyReceived(reply)
        except _Incomplete:
            pass
        except ValueError:
            self._buffer = b""
            assert self.transport is not None
            self.transport.loseConnection()
            return
        self._buffer = buffer[position:]

    def _replyReceived(self, reply: Reply) -> None:
        if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
            kind = reply[0]
            if kind == b"message" and len(reply) == 3:
                if self._onMessage is not None:
                    self._onMessage(reply[1], reply[2])  # type: ignore[arg-type]
                return
            if kind in (b"subscribe", b"unsubscribe") and self._confirmations:
                entry = self._confirmations[0]
                entry[0] -= 1
                if entry[0] <= 0:
                    self._confirmations.popleft()
                    entry[1].callback(None)
                return
        if not self._replies:
            return
        d = self._replies.popleft()
        if isinstance(reply, RedisError):
            d.errback(Failure(reply))
        else:
            d.callback(reply)
