"""
Server-side protocol factories for the stress runs, served with C{python -m twisted sockjs
--factory stress.servers.StressFactory} (or C{BroadcastFactory}).

Every message a client sends is a command or data:

  - C{!stats}: answered (to the asker only) with one JSON object: live protocols (counted in
    C{connectionMade} / C{connectionLost}), protocols ever connected, why the lost ones
    were lost, and the progress of every pusher.
  - C{!push <count> <size>} (L{StressFactory}): send C{count} numbered messages of C{size}
    bytes from a streaming push producer registered on the session transport, honouring
    C{pauseProducing} / C{resumeProducing}.
  - C{!join} (L{BroadcastFactory}): become a member; answered with C{!joined}.
  - anything else: echoed (L{StressFactory}), or written to every member without any
    regard for backpressure (L{BroadcastFactory}).

Commands start with C{"!"} so that they never look like data.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Optional

from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["BroadcastFactory", "Pusher", "StressFactory", "numberedMessage"]

_FILLER = b"abcdefghijklmnopqrstuvwxyz"
_SEQUENCE_DIGITS = 8


def numberedMessage(sequence: int, size: int) -> bytes:
    """
    Message C{sequence} of a push: its number (8 digits and a colon), then one letter,
    chosen by the number, repeated up to C{size} bytes; so a reader can tell a message
    that is missing, misplaced, cut or mixed with another.

    :param sequence: The message's number, from 0.
    :param size: Its length in bytes, at least 9.
    """
    head = b"%0*d:" % (_SEQUENCE_DIGITS, sequence)
    return head + _FILLER[sequence % 26 : sequence % 26 + 1] * (size - len(head))


def checkNumbered(message: str, sequence: int, size: int) -> Optional[str]:
    """
    What is wrong with C{message}, received where message C{sequence} of C{size} bytes
    was expected; C{None} when nothing is.
    """
    if message.encode("ascii", "replace") == numberedMessage(sequence, size):
        return None
    head = message[: _SEQUENCE_DIGITS + 1]
    return f"expected message {sequence} ({size} bytes), got {head!r}... ({len(message)} chars)"


@implementer(IPushProducer)
class Pusher:
    """
    Writes C{count} numbered messages of C{size} bytes to a transport, as a streaming
    producer: as many as the transport takes before it says C{pauseProducing}, the rest
    when it says C{resumeProducing}.

    :ivar sent: Messages written so far.
    :ivar paused: Is the transport holding us back now?
    :ivar pauses: How many times it did.
    :ivar done: Were all written?
    :ivar stopped: Did the transport go away first?
    """

    def __init__(self, transport: Any, count: int, size: int) -> None:
        self.transport = transport
        self.count = count
        self.size = size
        self.sent = 0
        self.paused = False
        self.pauses = 0
        self.done = False
        self.stopped = False
        self._writing = False

    def start(self) -> None:
        """
        Register on the transport and start writing.
        """
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def pauseProducing(self) -> None:
        if not self.paused:
            self.pauses += 1
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if self._writing:
            # Resumed from inside our own write: the loop below carries on.
            return
        self._writing = True
        try:
            while not self.paused and not self.stopped and self.sent < self.count:
                self.transport.write(numberedMessage(self.sent, self.size))
                self.sent += 1
        finally:
            self._writing = False
        if self.sent == self.count and not self.done and not self.stopped:
            self.done = True
            self.transport.unregisterProducer()

    def stopProducing(self) -> None:
        self.stopped = True

    def stats(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "size": self.size,
            "sent": self.sent,
            "paused": self.paused,
            "pauses": self.pauses,
            "done": self.done,
            "stopped": self.stopped,
        }


class _Counted(Protocol):
    """
    A protocol its factory counts: live while between C{connectionMade} and
    C{connectionLost}.
    """

    factory: _CountingFactory

    def _transport(self) -> ITransport:
        assert self.transport is not None
        return self.transport

    def connectionMade(self) -> None:
        self.factory.connected(self)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.disconnected(self, reason)

    def dataReceived(self, data: bytes) -> None:
        if data == b"!stats":
            self._transport().write(json.dumps(self.factory.stats()).encode("ascii"))
        else:
            self.messageReceived(data)

    def messageReceived(self, data: bytes) -> None:
        raise NotImplementedError()


class _CountingFactory(Factory):
    """
    Counts its live protocols and remembers why the others went.
    """

    log = Logger()

    def __init__(self) -> None:
        self.live: set[_Counted] = set()
        self.opened = 0
        self.lost: Counter[str] = Counter()
        self.doubleLost = 0

    def connected(self, protocol: _Counted) -> None:
        self.opened += 1
        self.live.add(protocol)

    def disconnected(self, protocol: _Counted, reason: Optional[Failure]) -> None:
        if protocol not in self.live:
            # A protocol must get exactly one connectionLost.
            self.doubleLost += 1
            self.log.error("connectionLost called twice on {protocol!r}", protocol=protocol)
            return
        self.live.discard(protocol)
        why = reason.getErrorMessage() if reason is not None else "None"
        self.lost[why] += 1

    def stats(self) -> dict[str, Any]:
        return {
            "live": len(self.live),
            "opened": self.opened,
            "lost": dict(self.lost),
            "doubleLost": self.doubleLost,
        }


class _StressProtocol(_Counted):
    factory: StressFactory
    pusher: Optional[Pusher] = None

    def messageReceived(self, data: bytes) -> None:
        if data.startswith(b"!push "):
            count, size = (int(word) for word in data.split()[1:3])
            if self.pusher is None and count > 0 and size > _SEQUENCE_DIGITS:
                self.pusher = Pusher(self._transport(), count, size)
                self.factory.pushers.append(self.pusher)
                self.pusher.start()
        else:
            self._transport().write(data)


class StressFactory(_CountingFactory):
    """
    Echo, C{!stats}, and C{!push <count> <size>}.
    """

    protocol = _StressProtocol  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.pushers: list[Pusher] = []

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        stats["pushers"] = [pusher.stats() for pusher in self.pushers]
        return stats


class _BroadcastProtocol(_Counted):
    factory: BroadcastFactory

    def messageReceived(self, data: bytes) -> None:
        if data == b"!join":
            self.factory.members.add(self)
            self._transport().write(b"!joined")
            return
        # Like the standard /broadcast: no producer, no looking at anyone's queue.  But
        # over a copy of the members: a write that passes a member's max_queue_size
        # closes it, and calls its connectionLost (which leaves the set), synchronously.
        for member in list(self.factory.members):
            member._transport().write(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.members.discard(self)
        super().connectionLost(reason)


class BroadcastFactory(_CountingFactory):
    """
    A broadcast that ignores backpressure, as the standard C{/broadcast} test service
    does: C{!join}, C{!stats}, and everything else sent to every member.
    """

    protocol = _BroadcastProtocol  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.members: set[_BroadcastProtocol] = set()

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        stats["members"] = len(self.members)
        return stats
