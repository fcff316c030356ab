"""
An in-memory HTTP and websocket client for testing SockJS resources without sockets: a
real twisted.web Site (and real Autobahn) on a L{MemoryReactorClock}, fed raw bytes over
L{StringTransport}s, answers parsed incrementally (chunked, Content-Length, or until
close).  Time moves only when a test advances the clock.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from sockjs_twisted import SockJSResource
from sockjs_twisted._factory import SockJSSite


class Response:
    """
    One HTTP response, parsed as its bytes arrive.

    :ivar status: The status code.
    :ivar version: C{"1.0"} or C{"1.1"}.
    :ivar headers: Lower-case header names to their last value (str).
    :ivar rawHeaders: Lower-case names to every value.
    :ivar body: The body received so far, de-chunked.
    :ivar complete: Has the body ended?
    """

    def __init__(self, status: int, version: str, rawHeaders: dict[str, list[str]]) -> None:
        self.status = status
        self.version = version
        self.rawHeaders = rawHeaders
        self.headers = {k: v[-1] for k, v in rawHeaders.items()}
        self.body = b""
        self.complete = False
        self.chunks: list[bytes] = []
        self._read = 0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    def read(self) -> bytes:
        """
        The body bytes that arrived since the last read.
        """
        data = self.body[self._read :]
        self._read = len(self.body)
        return data


class Connection:
    """
    One client TCP connection to the site.
    """

    def __init__(self, client: HTTPClient, port: int) -> None:
        self.client = client
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8081),
            peerAddress=IPv4Address("TCP", "127.0.0.1", port),
        )
        self.protocol = client.site.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self._buffer = b""
        self._responses: list[Response] = []
        self._current: Optional[Response] = None
        self._chunkLeft: Optional[int] = None
        self._bodyLeft: Optional[int] = None
        self._untilClose = False
        self._expectNoBody: list[bool] = []
        self.closed = False
        self.websocket: Optional[WebSocket] = None

    # sending

    def send(self, data: bytes, chunkSize: Optional[int] = None) -> None:
        """
        Send raw bytes, in chunks of C{chunkSize} if given (down to one byte).
        """
        if chunkSize is None:
            self.transport.protocol.dataReceived(data)
        else:
            for i in range(0, len(data), chunkSize):
                self.transport.protocol.dataReceived(data[i : i + chunkSize])
        self.pump()

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Optional[dict[str, str]] = None,
        version: str = "1.1",
        chunkSize: Optional[int] = None,
    ) -> Response:
        """
        Send one request; return its response (maybe still incomplete).
        """
        lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1:8081"]
        allHeaders = dict(headers or {})
        if body or method in ("POST", "PUT"):
            allHeaders.setdefault("Content-Length", str(len(body)))
        lines += [f"{k}: {v}" for k, v in allHeaders.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        before = len(self._responses)
        self._expectNoBody.append(method == "HEAD")
        self.send(raw, chunkSize)
        assert len(self._responses) > before, f"no response to {method} {path}"
        return self._responses[before]

    def close(self, reason: Optional[Failure] = None) -> None:
        """
        The client goes away.
        """
        if not self.closed:
            self.closed = True
            protocol = self.transport.protocol
            protocol.connectionLost(reason or Failure(ConnectionLost("client went away")))

    # receiving

    def pump(self) -> None:
        """
        Parse whatever the server wrote since the last pump.
        """
        if self.websocket is not None:
            self.websocket.pump()
            return
        data = self.transport.value()
        self.transport.clear()
        self._buffer += data
        self._parse()
        if self.transport.disconnecting and not self.closed:
            if self._current is not None and self._untilClose:
                self._current.complete = True
                self._current = None
            self.closed = True
            self.transport.protocol.connectionLost(Failure(ConnectionDone()))

    def _parse(self) -> None:
        while True:
            if self._current is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self._buffer[:end].decode("latin-1").split("\r\n")
                self._buffer = self._buffer[end + 4 :]
                version, status = head[0].split(" ")[:2]
                raw: dict[str, list[str]] = {}
                for line in head[1:]:
                    name, value = line.split(":", 1)
                    raw.setdefault(name.strip().lower(), []).append(value.strip())
                response = Response(int(status), version.split("/")[1], raw)
                self._responses.append(response)
                noBody = self._expectNoBody.pop(0) if self._expectNoBody else False
                self._chunkLeft = self._bodyLeft = None
                self._untilClose = False
                if noBody or response.status in (101, 204, 304):
                    response.complete = True
                    if response.status == 101:
                        return
                    continue
                if response.headers.get("transfer-encoding", "").lower() == "chunked":
                    self._chunkLeft = -1
                elif "content-length" in response.headers:
                    self._bodyLeft = int(response.headers["content-length"])
                else:
                    self._untilClose = True
                self._current = response
                if self._bodyLeft == 0:
                    response.complete = True
                    self._current = None
                continue
            response = self._current
            if self._untilClose:
                response.body += self._buffer
                if self._buffer:
                    response.chunks.append(self._buffer)
                self._buffer = b""
                return
            if self._bodyLeft is not None:
                take = self._buffer[: self._bodyLeft]
                self._buffer = self._buffer[len(take) :]
                response.body += take
                self._bodyLeft -= len(take)
                if self._bodyLeft:
                    return
                response.complete = True
                self._current = None
                continue
            # chunked
            if self._chunkLeft == -1:
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(self._buffer[:end].split(b";")[0], 16)
                if len(self._buffer) < end + 2 + size + 2:
                    return
                chunk = self._buffer[end + 2 : end + 2 + size]
                self._buffer = self._buffer[end + 2 + size + 2 :]
                if size == 0:
                    response.complete = True
                    self._current = None
                    continue
                response.chunks.append(chunk)
                response.body += chunk
                continue
            return


class HTTPClient:
    """
    A site around C{root} on a fake reactor, and connections to it.
    """

    def __init__(
        self,
        root: Optional[Resource] = None,
        clock: Optional[MemoryReactorClock] = None,
        site: Optional[SockJSSite] = None,
    ) -> None:
        self.clock = clock or MemoryReactorClock()
        if site is None:
            assert root is not None
            site = SockJSSite(root, reactor=self.clock)
        self.site = site
        self.site.startFactory()
        self._port = 40000
        self.connections: list[Connection] = []

    def connect(self) -> Connection:
        self._port += 1
        connection = Connection(self, self._port)
        self.connections.append(connection)
        return connection

    def request(self, method: str, path: str, body: bytes = b"", **kw: Any) -> Response:
        """
        One request on a new connection.
        """
        return self.connect().request(method, path, body, **kw)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: bytes = b"", **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def advance(self, seconds: float = 0) -> None:
        """
        Move time on (C{0}: run what is due this turn), then parse what was written.
        """
        self.clock.advance(seconds)
        self.pumpAll()

    def pumpAll(self) -> None:
        for connection in self.connections:
            if not connection.closed:
                connection.pump()

    def websocket(self, path: str, headers: Optional[dict[str, str]] = None) -> WebSocket:
        """
        Open a websocket to C{path}.
        """
        return WebSocket(self.connect(), path, headers)


def sockjsClient(
    factory: Any, prefix: str = "/echo", **options: Any
) -> tuple[HTTPClient, SockJSResource]:
    """
    An L{HTTPClient} for one L{SockJSResource} serving C{factory} at C{prefix}.
    """
    clock = MemoryReactorClock()
    root = Resource()
    resource = SockJSResource(factory, reactor=clock, prefix=prefix, **options)
    root.putChild(prefix.strip("/").encode("ascii"), resource)
    return HTTPClient(root, clock), resource


class WebSocket:
    """
    A minimal RFC 6455 client over one in-memory connection.
    """

    def __init__(
        self, connection: Connection, path: str, headers: Optional[dict[str, str]] = None
    ) -> None:
        self.connection = connection
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        allHeaders = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        }
        allHeaders.update(headers or {})
        self.response = connection.request("GET", path, headers=allHeaders)
        self.messages: list[str] = []
        self.closeCode: Optional[int] = None
        self.closeReason: Optional[str] = None
        self._frames = b""
        if self.response.status == 101:
            connection.websocket = self
            self._frames = connection._buffer
            connection._buffer = b""
            self._parse()

    @property
    def open(self) -> bool:
        return self.response.status == 101

    def sendText(self, text: str) -> None:
        self._sendFrame(0x1, text.encode("utf-8"))

    def sendRaw(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self._sendFrame(opcode, payload, fin)

    def sendClose(self, code: int = 1000, reason: str = "") -> None:
        self._sendFrame(0x8, struct.pack("!H", code) + reason.encode("utf-8"))

    def _sendFrame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        mask = os.urandom(4)
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.connection.transport.protocol.dataReceived(head + mask + masked)
        self.pump()

    def pump(self) -> None:
        transport = self.connection.transport
        self._frames += transport.value()
        transport.clear()
        self._parse()
        if transport.disconnecting and not self.connection.closed:
            self.connection.closed = True
            transport.protocol.connectionLost(Failure(ConnectionDone()))

    def receive(self) -> list[str]:
        """
        The text messages received since the last call.
        """
        self.pump()
        messages = self.messages
        self.messages = []
        return messages

    def frames(self) -> list[Any]:
        """
        The SockJS frames received since the last call, decoded: C{"o"}, C{"h"}, a list
        of messages for C{a[...]}, a C{(code, reason)} tuple for C{c[...]}.
        """
        out: list[Any] = []
        for m in self.receive():
            if m in ("o", "h"):
                out.append(m)
            elif m.startswith("a"):
                out.append(json.loads(m[1:]))
            elif m.startswith("c"):
                out.append(tuple(json.loads(m[1:])))
            else:
                raise AssertionError(f"not a SockJS frame: {m!r}")
        return out

    def _parse(self) -> None:
        while len(self._frames) >= 2:
            b0, b1 = self._frames[0], self._frames[1]
            n = b1 & 0x7F
            offset = 2
            if n == 126:
                if len(self._frames) < 4:
                    return
                n = struct.unpack("!H", self._frames[2:4])[0]
                offset = 4
            elif n == 127:
                if len(self._frames) < 10:
                    return
                n = struct.unpack("!Q", self._frames[2:10])[0]
                offset = 10
            if len(self._frames) < offset + n:
                return
            payload = self._frames[offset : offset + n]
            self._frames = self._frames[offset + n :]
            opcode = b0 & 0x0F
            if opcode == 0x1:
                self.messages.append(payload.decode("utf-8"))
            elif opcode == 0x8:
                if len(payload) >= 2:
                    self.closeCode = struct.unpack("!H", payload[:2])[0]
                    self.closeReason = payload[2:].decode("utf-8")
                else:
                    self.closeCode = 1005
