"""
A chat room: every member's message reaches every member, joins and leaves are announced,
and C{/nick NAME} changes a member's name.

    .venv/bin/python -m examples.chat.server 8081    # then open http://localhost:8081/ in two windows

One factory holds the room, so every session of the endpoint is in it.  A broadcast writes
the same bytes object to each member: the server quotes it once for all of them.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Optional

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.static import Data

from sockjs_twisted import SockJSResource

PAGE = (Path(__file__).parent / "index.html").read_bytes()
_NICK = re.compile(r"[\w.-]{1,24}")


class ChatMember(Protocol):
    """
    One browser in the room.
    """

    factory: ChatRoom
    name = ""

    def connectionMade(self) -> None:
        self.factory.join(self)

    def dataReceived(self, data: bytes) -> None:
        text = data.decode("utf-8")  # SockJS messages are always UTF-8 text
        if text.startswith("/nick "):
            self.factory.rename(self, text[len("/nick ") :].strip())
        elif text.strip():
            self.factory.broadcast(f"{self.name}: {text}")

    def connectionLost(self, reason: Optional[Failure] = None) -> None:
        self.factory.leave(self)


class ChatRoom(Factory):
    """
    The room: its members, in the order they joined.
    """

    protocol = ChatMember

    def __init__(self) -> None:
        self.members: dict[ChatMember, None] = {}
        self._guests = itertools.count(1)

    def names(self) -> set[str]:
        return {member.name for member in self.members}

    def join(self, member: ChatMember) -> None:
        member.name = f"guest-{next(self._guests)}"
        self.members[member] = None
        member.transport.write(
            f"* you are {member.name}; /nick NAME changes it; here: "
            f"{', '.join(sorted(self.names()))}".encode()
        )
        self.broadcast(f"* {member.name} joined", but=member)

    def leave(self, member: ChatMember) -> None:
        if member in self.members:
            del self.members[member]
            self.broadcast(f"* {member.name} left")

    def rename(self, member: ChatMember, name: str) -> None:
        if not _NICK.fullmatch(name):
            member.transport.write(b"* a name is 1 to 24 letters, digits, '.', '-' or '_'")
        elif name in self.names():
            member.transport.write(f"* {name} is taken".encode())
        else:
            old, member.name = member.name, name
            self.broadcast(f"* {old} is now {name}")

    def broadcast(self, text: str, but: Optional[ChatMember] = None) -> None:
        """
        Send C{text} to every member (but one).
        """
        data = text.encode("utf-8")
        for member in self.members:
            if member is not but:
                member.transport.write(data)


# For `twistd sockjs --factory examples.chat.server.factory`: one room.
factory = ChatRoom()


def resource(reactor: Optional[IReactorTime] = None) -> Resource:
    """
    The page at C{/}, a new room at C{/chat}.
    """
    root = Resource()
    root.putChild(b"", Data(PAGE, "text/html; charset=utf-8"))
    root.putChild(b"chat", SockJSResource(ChatRoom(), reactor, prefix="/chat"))
    return root


def main() -> None:
    from examples._run import run

    run(resource)


if __name__ == "__main__":
    main()
