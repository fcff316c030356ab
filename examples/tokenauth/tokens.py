"""
Signed, expiring tokens: C{<user>.<expiry>.<signature>}, where the signature is an
HMAC-SHA256 of the rest under a server secret.  Your login page issues one; the SockJS
endpoint checks it.  Any scheme works the same way (a random token looked up in your
session store, a JWT): the gate only needs a function from token to user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Optional

from twisted.internet.interfaces import IReactorTime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """
    Issues and checks tokens.

    :param secret: The server's secret; keep it out of the code in real life.
    :param clock: Tells the time (the reactor).
    :param lifetime: Seconds a token is good for; it only needs to last until the page
        connects.
    """

    def __init__(self, secret: bytes, clock: IReactorTime, lifetime: float = 60.0) -> None:
        self._secret = secret
        self._clock = clock
        self._lifetime = lifetime

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user: str) -> str:
        """
        A token for C{user}, good for C{lifetime} seconds from now.
        """
        expiry = int(self._clock.seconds() + self._lifetime)
        payload = f"{_b64(user.encode('utf-8'))}.{expiry}"
        return f"{payload}.{self._sign(payload)}"

    def check(self, token: str) -> Optional[str]:
        """
        The user C{token} was issued to, or C{None} if it is forged, malformed or expired.
        """
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        encodedUser, _, expiry = payload.partition(".")
        try:
            if int(expiry) < self._clock.seconds():
                return None
            return _unb64(encodedUser).decode("utf-8")
        except ValueError:
            return None
