"""
Hand-written recording fakes for session tests.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from sockjs_twisted._framing import messageFrame
from sockjs_twisted._session import ConnectionInfo, Session
from sockjs_twisted.interfaces import ISessionSink


def info(port: int = 5000, url: str = "/echo/0/s/xhr", **headers: str) -> ConnectionInfo:
    return ConnectionInfo(
        peer=IPv4Address("TCP", "10.0.0.1", port),
        host=IPv4Address("TCP", "127.0.0.1", 8081),
        headers=dict(headers),
        url=url,
    )


@implementer(IPushProducer)
class RecordingProducer:
    """
    A streaming producer that records what its consumer asks of it.
    """

    def __init__(self) -> None:
        self.events: list[str] = []

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


@implementer(ISessionSink)
class RecordingSink:
    """
    Records frames; ends itself after one frame if polling.
    """

    protocolName = "xhr-polling"

    def __init__(self, polling: bool = False, limit: Optional[int] = None) -> None:
        self.polling = polling
        self.limit = limit
        self.frames: list[str] = []
        self.messages: list[list[str]] = []
        self.finished: Optional[tuple[int, str]] = None
        self.sinkPaused = False
        self.session: Optional[Session] = None
        self._sent = 0

    def bindSession(self, session: Session) -> None:
        self.session = session

    def writeFrame(self, frame: str) -> None:
        assert self.finished is None, f"frame {frame!r} after finish"
        self.frames.append(frame)
        self._sent += len(frame)
        if self.polling or (self.limit is not None and self._sent >= self.limit):
            self.end()

    def writeMessages(self, quoted: list[str]) -> None:
        self.messages.append(list(quoted))
        self.writeFrame(messageFrame(quoted))

    def finishSink(self, code: int, reason: str) -> None:
        if self.finished is None:
            self.finished = (code, reason)

    def end(self, aborted: bool = False) -> None:
        """
        The response ends by itself (or the client goes away).
        """
        if self.finished is None:
            self.finished = (0, "ended")
        if self.session is not None:
            self.session.detach(self, aborted)

    def pause(self) -> None:
        self.sinkPaused = True

    def resume(self) -> None:
        self.sinkPaused = False
        assert self.session is not None
        self.session.resumeProducing()


class RecordingProtocol(Protocol):
    """
    Records what happens to it; optionally acts in connectionMade.
    """

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.received: list[bytes] = []
        self.lost: Optional[Failure] = None
        self.onConnect: Any = None
        self.onData: Any = None

    def makeConnection(self, transport: Any) -> None:
        self.events.append("makeConnection")
        super().makeConnection(transport)

    def connectionMade(self) -> None:
        if self.onConnect is not None:
            self.onConnect(self)

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        if self.onData is not None:
            self.onData(self, data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.events.append("connectionLost")
        self.lost = reason


class RecordingFactory(Factory):
    """
    Builds L{RecordingProtocol}s and keeps them.
    """

    def __init__(self, refuse: bool = False) -> None:
        self.built: list[RecordingProtocol] = []
        self.addresses: list[Any] = []
        self.refuse = refuse
        self.starts = 0
        self.stops = 0
        self.onConnect: Any = None
        self.onData: Any = None

    def doStart(self) -> None:
        self.starts += 1

    def doStop(self) -> None:
        self.stops += 1

    def buildProtocol(self, addr: Any) -> Optional[RecordingProtocol]:  # type: ignore[override]
        self.addresses.append(addr)
        if self.refuse:
            return None
        protocol = RecordingProtocol()
        protocol.factory = self
        protocol.onConnect = self.onConnect
        protocol.onData = self.onData
        self.built.append(protocol)
        return protocol
