"""
A SockJS client in a few lines: connect to an echo endpoint, send each message given on
the command line, write each answer to standard output, close.

Start a server (the standard test services, C{/echo} among them), then the client::

    $ twistd -n sockjs --port tcp:8081:interface=127.0.0.1
    $ python -m examples.client.echo_client http://127.0.0.1:8081/echo hello wörld
    websocket
    hello
    wörld

C{--transport xhr-polling} (given once or more, in order) picks the transports to try;
by default the client tries the websocket, then xhr-streaming, then xhr-polling, as
sockjs-client does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import react
from twisted.python.failure import Failure

from sockjs_twisted.client import connectSockJS


class EchoClient(Protocol):
    """
    Sends its messages once connected; closes once they all came back.
    """

    def __init__(self, messages: list[str], done: Deferred[None]) -> None:
        self.messages = messages
        self.done = done
        self.answers = 0

    def connectionMade(self) -> None:
        for message in self.messages:
            self.transport.write(message.encode("utf-8"))  # type: ignore[union-attr]
        if not self.messages:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        sys.stdout.write(data.decode("utf-8") + "\n")
        self.answers += 1
        if self.answers == len(self.messages):
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Optional[Failure] = None) -> None:
        self.done.callback(None)


async def main(reactor: Any, *argv: str) -> None:
    parser = argparse.ArgumentParser(description="Echo messages through a SockJS endpoint.")
    parser.add_argument("url", help="the endpoint, e.g. http://127.0.0.1:8081/echo")
    parser.add_argument("messages", nargs="*", help="the messages to send")
    parser.add_argument("--transport", action="append", dest="transports", metavar="NAME")
    args = parser.parse_args(argv)

    done: Deferred[None] = Deferred()
    factory = Factory.forProtocol(lambda: EchoClient(args.messages, done))
    protocol = await connectSockJS(reactor, args.url, factory, args.transports)
    sys.stdout.write(protocol.transport.transportName + "\n")  # type: ignore[attr-defined]
    sys.stdout.flush()
    await done


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
