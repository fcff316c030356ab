"""
Token authentication on the first message, end to end:

    .venv/bin/python -m examples.tokenauth.server 8081    # then open http://localhost:8081/

The page gets a token from C{POST /token} (a stand-in for your login: here anyone may
have a token for any name) and sends it as its first SockJS message.  The endpoint at
C{/private} checks it with L{TokenGate}, then serves the user with L{Greeter}.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.static import Data

from sockjs_twisted import SockJSResource

from .gate import TokenAuthFactory
from .tokens import TokenSigner

PAGE = (Path(__file__).parent / "index.html").read_bytes()


class Greeter(Protocol):
    """
    What an authenticated user gets: a welcome, and their messages back with their name.
    """

    def __init__(self, user: str) -> None:
        self.user = user

    def connectionMade(self) -> None:
        self.transport.write(f"welcome, {self.user}".encode())

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(self.user.encode("utf-8") + b": " + data)


class IssueToken(Resource):
    """
    C{POST /token} with a name as the body: a token for that name.  Your real login
    (checking a password, a session cookie of your own site...) goes here.
    """

    isLeaf = True

    def __init__(self, signer: TokenSigner) -> None:
        super().__init__()
        self.signer = signer

    def render_POST(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        name = request.content.read(100).decode("utf-8", "replace").strip()
        if not name:
            request.setResponseCode(400)
            return b"a name, please\n"
        return self.signer.issue(name).encode("ascii")


def resource(reactor: Optional[IReactorTime] = None, secret: Optional[bytes] = None) -> Resource:
    """
    The page at C{/}, the token issuer at C{/token}, the authenticated endpoint at
    C{/private}.

    :param secret: The signing secret; a random one by default (tokens then die with the
        process).
    """
    if reactor is None:
        from twisted.internet import reactor  # type: ignore[no-redef]
    signer = TokenSigner(secret or os.urandom(32), reactor)  # type: ignore[arg-type]
    authenticated = TokenAuthFactory(signer.check, Greeter, clock=reactor)
    root = Resource()
    root.putChild(b"", Data(PAGE, "text/html; charset=utf-8"))
    root.putChild(b"token", IssueToken(signer))
    root.putChild(b"private", SockJSResource(authenticated, reactor, prefix="/private"))
    return root


def _factory() -> Any:
    """
    For C{twistd sockjs --factory examples.tokenauth.server.factory}: a secret from
    C{$TOKEN_SECRET}, and no way to get a token but L{TokenSigner.issue}.
    """
    from twisted.internet import reactor

    secret = os.environ.get("TOKEN_SECRET", "").encode("utf-8") or os.urandom(32)
    return TokenAuthFactory(TokenSigner(secret, reactor).check, Greeter)  # type: ignore[arg-type]


factory = _factory


def main() -> None:
    from examples._run import run

    run(resource)


if __name__ == "__main__":
    main()
