"""
The pages that belong to no session: the greeting, C{/info} and C{/iframe*.html}.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import Request

from ._options import SockJSOptions
from ._transports._http import (
    APPLICATION_JSON,
    TEXT_HTML,
    TEXT_PLAIN,
    answerOptions,
    notAllowed,
    setCacheForever,
    setCORS,
    setNoCache,
)

_IFRAME = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="{sockjs_url}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""


class Greeting(Resource):
    """
    C{GET /}: C{Welcome to SockJS!}.
    """

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            return notAllowed(request, b"GET")
        request.setHeader(b"Content-Type", TEXT_PLAIN)
        return b"Welcome to SockJS!\n"


class Info(Resource):
    """
    C{GET /info}: what the server offers, and entropy for the client.
    """

    isLeaf = True

    def __init__(self, options: SockJSOptions) -> None:
        super().__init__()
        self.options = options
        origins = options.allowed_origins
        self._static = {
            "websocket": options.websocket,
            "cookie_needed": options.jsessionid is not False,
            "origins": ["*:*"] if origins is None else list(origins),
        }

    def render(self, request: IRequest) -> Any:
        if request.method == b"OPTIONS":
            return answerOptions(request, self.options, b"OPTIONS, GET")
        if request.method not in (b"GET", b"HEAD"):
            return notAllowed(request, b"OPTIONS, GET")
        request.setHeader(b"Content-Type", APPLICATION_JSON)
        setNoCache(request)
        setCORS(request, self.options)
        info = dict(self._static, entropy=secrets.randbits(32))
        return json.dumps(info).encode("ascii")


class IFrame(Resource):
    """
    C{GET /iframe*.html}: the page the iframe transports load, cacheable for a year.
    """

    isLeaf = True

    def __init__(self, options: SockJSOptions) -> None:
        super().__init__()
        self._body = _IFRAME.format(sockjs_url=html.escape(options.sockjs_url)).encode("utf-8")
        self._etag = b'"' + hashlib.sha256(self._body).hexdigest()[:32].encode("ascii") + b'"'

    def render(self, request: Request) -> bytes:  # type: ignore[override]
        if request.method not in (b"GET", b"HEAD"):
            return notAllowed(request, b"GET")
        if request.getHeader(b"if-none-match") == self._etag:
            request.setResponseCode(304)
            request.defaultContentType = None
            return b""
        request.setHeader(b"Content-Type", TEXT_HTML)
        request.setHeader(b"ETag", self._etag)
        setCacheForever(request)
        return self._body
