"""
Authenticate a SockJS session with a token sent as its first message, then hand the
session to a protocol built for that user.

The protocol built for the user never sees an unauthenticated session: it is connected
only once the token checks out, and messages that arrive while the check runs are held
and delivered to it in order.  A session that sends a bad token, or none in time, is closed
with a close code the page can show.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, cast

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IProtocol, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from sockjs_twisted import ISockJSTransport

AUTHENTICATION_FAILED = (4001, "Authentication failed")
AUTHENTICATION_TIMED_OUT = (4008, "Authentication timed out")
INTERNAL_ERROR = (1011, "Internal error")
OPEN = 1  # ISockJSTransport.readyState


class TokenGate(Protocol):
    """
    The protocol of a session until it has authenticated, and then a pass-through to the
    user's protocol.
    """

    factory: TokenAuthFactory
    transport: ISockJSTransport
    log = Logger()

    def __init__(self) -> None:
        self._user: Optional[IProtocol] = None
        self._held: Optional[list[bytes]] = None  # None: no token yet
        self._deadline: Optional[IDelayedCall] = None
        self._checking: Optional[Deferred[Any]] = None
        self._gone = False

    def connectionMade(self) -> None:
        self._deadline = self.factory.clock.callLater(
            self.factory.timeout, self.transport.close, *AUTHENTICATION_TIMED_OUT
        )

    def dataReceived(self, data: bytes) -> None:
        if self._user is not None:
            self._user.dataReceived(data)
        elif self._held is not None:
            self._held.append(data)  # the token is being checked
        else:
            self._held = []
            self._cancelDeadline()
            token = data.decode("utf-8")  # SockJS messages are always UTF-8
            self._checking = maybeDeferred(self.factory.checkToken, token)
            self._checking.addCallbacks(self._checked, self._checkFailed)

    def _checked(self, user: Any) -> None:
        self._checking = None
        if self._gone:
            return
        if user is None:
            self.transport.close(*AUTHENTICATION_FAILED)
            return
        held, self._held = self._held or [], []
        try:
            protocol = self.factory.protocolForUser(user)
            self._user = protocol
            protocol.makeConnection(self.transport)
            for message in held:
                if self._gone or self.transport.readyState != OPEN:
                    break
                protocol.dataReceived(message)
        except Exception:
            self.log.failure("the protocol of an authenticated session raised")
            self.transport.close(*INTERNAL_ERROR)

    def _checkFailed(self, failure: Failure) -> None:
        self._checking = None
        if self._gone:
            return  # cancelled by connectionLost, or failed after the client left
        self.log.failure("checking a token failed", failure)
        self.transport.close(*INTERNAL_ERROR)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._gone = True
        self._cancelDeadline()
        if self._checking is not None:
            self._checking.cancel()
        user, self._user = self._user, None
        if user is not None:
            user.connectionLost(reason)

    def _cancelDeadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None


class TokenAuthFactory(Factory):
    """
    Sessions authenticate with their first message.

    :param checkToken: Given the token (str), returns the user, or C{None} to refuse;
        or a L{Deferred} that fires with one of those (a database lookup).
    :param protocolForUser: Builds the protocol that serves an authenticated user.
    :param timeout: Seconds a new session has to send its token.
    :param clock: Provides C{callLater}; the global reactor by default.
    """

    protocol = TokenGate

    def __init__(
        self,
        checkToken: Callable[[str], Any],
        protocolForUser: Callable[[Any], IProtocol],
        timeout: float = 10.0,
        clock: Optional[IReactorTime] = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = cast(IReactorTime, reactor)
        self.checkToken = checkToken
        self.protocolForUser = protocolForUser
        self.timeout = timeout
        self.clock: IReactorTime = clock

    def buildProtocol(self, addr: IAddress) -> TokenGate:
        gate = TokenGate()
        gate.factory = self
        return gate
