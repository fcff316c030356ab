"""
What the stress scripts share: the server subprocess, C{/proc} sampling, and small blocking
SockJS clients over plain sockets.

The clients are deliberately plain: a socket whose receive buffer the caller sizes before
connecting, one C{recv} per L{SockJSConnection.events} call, nothing read behind the
caller's back.  A stress script decides exactly when (and whether) a client reads, and
counts the bytes that crossed the socket.  That is why they are not
L{sockjs_twisted.client} (a reactor reads whenever data is there, and it speaks neither
eventsource nor a bare C{xhr} receiver); the SockJS frames are decoded by the client's
decoder all the same.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from typing import Any, Optional

from sockjs_twisted.client import Close, FrameError, Heartbeat, Messages, Open, decodeFrame

__all__ = [
    "HOST",
    "MiB",
    "ROOT",
    "Deadline",
    "ProtocolError",
    "Sampler",
    "ServerProcess",
    "SockJSConnection",
    "connect",
    "megabytes",
]

HOST = "127.0.0.1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1024 * 1024
_RECV_SIZE = 256 * 1024


def megabytes(n: float) -> str:
    """
    C{n} bytes in MiB, one decimal.
    """
    return f"{n / MiB:.1f}"


class ProtocolError(Exception):
    """
    The server said something a SockJS server must not.
    """


class Deadline:
    """
    A point in time that every loop of the stress scripts is bounded by.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.end


# -- the server ------------------------------------------------------------------------


class ServerProcess:
    """
    C{python -m twisted --log-format text sockjs ...} on 127.0.0.1, on a port the kernel picks, started from
    the repository root (so that C{stress.*} factories import), its output collected by a
    thread (so that it never blocks on a full pipe), stopped by its PID.

    :ivar pid: The server's process id.
    :ivar port: The port it listens on.
    :ivar log: Its output, the last 5000 lines.
    """

    def __init__(self, *args: str, startTimeout: float = 30.0) -> None:
        self.args = list(args)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twisted",
                "--log-format",
                "text",
                "sockjs",
                "--port",
                f"tcp:0:interface={HOST}",
                *args,
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        self.log: deque[str] = deque(maxlen=5000)
        self._lines: queue.Queue[Optional[str]] = queue.Queue()
        self._reader = threading.Thread(target=self._readOutput, daemon=True)
        self._reader.start()
        self.port = self._waitForPort(Deadline(startTimeout))

    def _readOutput(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for raw in stdout:
            line = raw.decode("utf-8", "replace")
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _waitForPort(self, deadline: Deadline) -> int:
        while not deadline.expired:
            try:
                line = self._lines.get(timeout=deadline.remaining())
            except queue.Empty:
                break
            if line is None:
                break
            match = re.search(r"starting on (\d+)", line)
            if match:
                return int(match.group(1))
        self.stop()
        raise RuntimeError("the server did not start:\n" + "".join(self.log))

    def rss(self) -> int:
        """
        The server's resident set size, in bytes (C{VmRSS} in C{/proc/PID/status}).
        """
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for {self.pid}")

    def fds(self) -> int:
        """
        How many file descriptors the server has open.
        """
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def errors(self) -> list[str]:
        """
        What the server logged of errors it did not handle: each traceback's heading line
        and its exception, and any C{connectionLost called twice}.
        """
        found = []
        heading = ""
        lines = [line.rstrip() for line in list(self.log)]
        for i, line in enumerate(lines):
            if "connectionLost called twice" in line:
                found.append(line)
            if not line.startswith("\t"):
                heading = line
                continue
            if line.strip().startswith("Traceback") or i + 1 == len(lines):
                continue
            if not lines[i + 1].startswith("\t") or not lines[i + 1].strip():
                # The last line of a traceback: the exception.
                found.append(f"{heading.split('] ', 1)[-1]}: {line.strip()}")
        return found

    def stop(self) -> Optional[int]:
        """
        SIGTERM, then SIGKILL after 10 seconds; its exit status.
        """
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(10)
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Sampler:
    """
    Samples a server's RSS (and optionally its open file descriptors) from a thread, and
    keeps the peaks.
    """

    def __init__(self, server: ServerProcess, interval: float = 0.02, fds: bool = False) -> None:
        self.server = server
        self.interval = interval
        self.withFds = fds
        self.peakRss = 0
        self.peakFds = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            self.peakRss = max(self.peakRss, self.server.rss())
            if self.withFds:
                self.peakFds = max(self.peakFds, self.server.fds())
        except OSError:
            return
        self.samples += 1

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sample()


# -- sockets -----------------------------------------------------------------------------


def _connect(rcvbuf: Optional[int], timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Before connect(), so that the window the kernel advertises is small from the
        # start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    return sock


def _readHead(sock: socket.socket, deadline: Deadline) -> tuple[str, dict[str, str], bytes]:
    """
    Read an HTTP response head: its status line, headers (lower-case names), and the
    bytes after it.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        if deadline.expired or len(data) > 65536:
            raise ProtocolError(f"no response head: {data[:200]!r}")
        sock.settimeout(max(deadline.remaining(), 0.001))
        chunk = sock.recv(65536)
        if not chunk:
            raise ProtocolError(f"connection closed before a response head: {data[:200]!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, rest


class _Dechunker:
    """
    Decodes an HTTP/1.1 chunked body as it arrives.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._remaining = 0
        self._state = "size"
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer
        buffer += data
        out = bytearray()
        while not self.done:
            if self._state == "size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    break
                size = int(bytes(buffer[:end]).split(b";")[0], 16)
                del buffer[: end + 2]
                if size == 0:
                    self.done = True
                else:
                    self._remaining = size
                    self._state = "data"
            elif self._state == "data":
                if not buffer:
                    break
                take = min(self._remaining, len(buffer))
                out += buffer[:take]
                del buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "crlf"
            else:
                if len(buffer) < 2:
                    break
                del buffer[:2]
                self._state = "size"
        return bytes(out)


class _WebSocketReader:
    """
    The client end of a websocket: frames in, SockJS frames (text messages) out.
    """

    def __init__(self, path: str, port: int, rcvbuf: Optional[int], timeout: float) -> None:
        self.sock = _connect(rcvbuf, timeout)
        self.sock.connect((HOST, port))
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode("ascii")
        )
        status, _, rest = _readHead(self.sock, Deadline(timeout))
        if " 101 " not in status + " ":
            raise ProtocolError(f"websocket upgrade refused: {status}")
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self.closeCode: Optional[int] = None
        self.closeReason = ""
        self._initial = rest

    def initial(self) -> list[str]:
        data, self._initial = self._initial, b""
        return self.feed(data)

    def feed(self, data: bytes) -> list[str]:
        buffer = self._buffer
        buffer += data
        messages: list[str] = []
        while len(buffer) >= 2:
            b0, b1 = buffer[0], buffer[1]
            if b1 & 0x80:
                raise ProtocolError("the server masked a frame")
            size = b1 & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    break
                size = struct.unpack("!H", buffer[2:4])[0]
                start = 4
            elif size == 127:
                if len(buffer) < 10:
                    break
                size = struct.unpack("!Q", buffer[2:10])[0]
                start = 10
            if len(buffer) < start + size:
                break
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            opcode = b0 & 0x0F
            if opcode == 8:
                if len(payload) >= 2:
                    self.closeCode = struct.unpack("!H", payload[:2])[0]
                    self.closeReason = payload[2:].decode("utf-8", "replace")
                else:
                    self.closeCode = 1005
            elif opcode == 9:
                self.sendFrame(10, payload)
            elif opcode in (0, 1, 2):
                self._fragments.append(payload)
                if b0 & 0x80:
                    messages.append(b"".join(self._fragments).decode("utf-8"))
                    self._fragments = []
        return messages

    def sendFrame(self, opcode: int, payload: bytes) -> None:
        key = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = (key * (size // 4 + 1))[:size]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(
            size, "big"
        )
        self.sock.sendall(head + key + masked)


class _HTTPStreamReader:
    """
    The client end of an HTTP response carrying SockJS frames: C{xhr}, C{xhr_streaming}
    (frames end with a new line) or C{eventsource} (C{data: <frame>} events).
    """

    def __init__(
        self, method: str, path: str, port: int, rcvbuf: Optional[int], timeout: float
    ) -> None:
        self.eventSource = path.endswith("/eventsource")
        self.sock = _connect(rcvbuf, timeout)
        self.sock.connect((HOST, port))
        self.sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Length: 0\r\n\r\n".encode(
                "ascii"
            )
        )
        status, headers, rest = _readHead(self.sock, Deadline(timeout))
        if " 200 " not in status + " ":
            raise ProtocolError(f"{method} {path}: {status}")
        self._dechunker = (
            _Dechunker() if headers.get("transfer-encoding", "").lower() == "chunked" else None
        )
        self._pending = b""
        self._separator = b"\r\n\r\n" if self.eventSource else b"\n"
        self._initial = rest
        self.complete = False
        self.closeCode: Optional[int] = None

    def initial(self) -> list[str]:
        data, self._initial = self._initial, b""
        return self.feed(data)

    def feed(self, data: bytes) -> list[str]:
        if self._dechunker is not None:
            data = self._dechunker.feed(data)
            self.complete = self._dechunker.done
        self._pending += data
        parts = self._pending.split(self._separator)
        self._pending = parts.pop()
        frames = []
        for part in parts:
            if self.eventSource:
                part = part.lstrip(b"\r\n")
                if not part.startswith(b"data: "):
                    raise ProtocolError(f"not an event: {part[:100]!r}")
                part = part[6:]
            elif part == b"h" * 2048:
                # The xhr_streaming prelude.
                continue
            frames.append(part.decode("utf-8"))
        return frames


# -- SockJS ------------------------------------------------------------------------------

Event = tuple[str, Any]


def parseFrame(frame: str) -> list[Event]:
    """
    One SockJS frame as events: C{("o", None)}, C{("h", None)}, C{("m", message)} for each
    message of an C{a} frame, C{("c", [code, reason])}.  The decoding is the client's
    (L{sockjs_twisted.client.decodeFrame}), the one frame parser of the code base.
    """
    try:
        decoded = decodeFrame(frame)
    except FrameError:
        raise ProtocolError(f"not a SockJS frame: {frame[:100]!r}") from None
    if isinstance(decoded, Open):
        return [("o", None)]
    if isinstance(decoded, Heartbeat):
        return [("h", None)]
    if isinstance(decoded, Messages):
        return [("m", message) for message in decoded.messages]
    assert isinstance(decoded, Close)
    return [("c", [decoded.code, decoded.reason])]


class SockJSConnection:
    """
    One SockJS session's receiving connection, and a way to send to the session.

    :ivar transport: C{websocket}, C{xhr}, C{xhr_streaming} or C{eventsource}.
    :ivar eof: Did the server close the connection (or reset it)?
    :ivar reset: Did it reset it?
    :ivar bytesReceived: Bytes read from the socket.
    """

    def __init__(
        self,
        transport: str,
        port: int,
        prefix: str,
        rcvbuf: Optional[int] = None,
        timeout: float = 10.0,
    ) -> None:
        self.transport = transport
        self.port = port
        self.base = f"{prefix}/000/{uuid.uuid4().hex}"
        self.timeout = timeout
        self.reader: Any
        if transport == "websocket":
            self.reader = _WebSocketReader(self.base + "/websocket", port, rcvbuf, timeout)
        elif transport in ("xhr", "xhr_streaming"):
            self.reader = _HTTPStreamReader(
                "POST", f"{self.base}/{transport}", port, rcvbuf, timeout
            )
        elif transport == "eventsource":
            self.reader = _HTTPStreamReader(
                "GET", self.base + "/eventsource", port, rcvbuf, timeout
            )
        else:
            raise ValueError(f"unknown transport {transport!r}")
        self.sock: socket.socket = self.reader.sock
        self.eof = False
        self.reset = False
        self.bytesReceived = 0
        self._ready: deque[Event] = deque()
        for frame in self.reader.initial():
            self._ready.extend(parseFrame(frame))

    def events(self, timeout: float) -> list[Event]:
        """
        The events already read, or what arrives in one C{recv} (waiting at most
        C{timeout} seconds); C{[]} when nothing did.
        """
        if self._ready:
            ready = list(self._ready)
            self._ready.clear()
            return ready
        if self.eof:
            return []
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(_RECV_SIZE)
        except socket.timeout:
            return []
        except ConnectionResetError:
            self.eof = self.reset = True
            return []
        if not data:
            self.eof = True
            return []
        self.bytesReceived += len(data)
        events: list[Event] = []
        for frame in self.reader.feed(data):
            events.extend(parseFrame(frame))
        return events

    def next(self, deadline: Deadline) -> Optional[Event]:
        """
        The next event, heartbeats included; C{None} at the deadline or the end of the
        connection.
        """
        for _ in range(1000000):
            if self._ready:
                return self._ready.popleft()
            if self.eof or deadline.expired:
                return None
            self._ready.extend(self.events(deadline.remaining()))
        return None

    def expect(self, deadline: Deadline, want: str, message: Optional[str] = None) -> None:
        """
        Read until event C{want} (and C{message}, for C{"m"}), skipping heartbeats.
        """
        for _ in range(1000000):
            event = self.next(deadline)
            if event is None:
                break
            kind, value = event
            if kind == "h":
                continue
            if kind == want and (message is None or value == message):
                return
            raise ProtocolError(f"expected {want} {message or ''}, got {kind} {value!r}")
        raise ProtocolError(f"no {want} {message or ''} from {self.base}/{self.transport}")

    def send(self, messages: list[str]) -> None:
        """
        Send C{messages}: a websocket frame, or a C{POST .../xhr_send}.
        """
        payload = json.dumps(messages).encode("utf-8")
        if self.transport == "websocket":
            self.sock.settimeout(self.timeout)
            self.reader.sendFrame(1, payload)
            return
        c = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            c.request("POST", self.base + "/xhr_send", body=payload)
            response = c.getresponse()
            body = response.read()
            if response.status != 204:
                raise ProtocolError(f"xhr_send: {response.status} {body[:100]!r}")
        finally:
            c.close()

    def request(self, command: str, deadline: Deadline) -> str:
        """
        Send C{command}, and return the next message (heartbeats skipped).
        """
        self.send([command])
        for _ in range(1000000):
            event = self.next(deadline)
            if event is None:
                break
            kind, value = event
            if kind == "m":
                return str(value)
            if kind != "h":
                raise ProtocolError(f"{command}: got {kind} {value!r}")
        raise ProtocolError(f"no answer to {command!r}")

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """
        The server factory's C{!stats}.
        """
        answer: dict[str, Any] = json.loads(self.request("!stats", Deadline(timeout)))
        return answer

    def close(self) -> None:
        """
        Close the socket (a FIN; no websocket close handshake).
        """
        self.sock.close()

    def abort(self) -> None:
        """
        Reset the connection.
        """
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def connect(
    transport: str,
    port: int,
    prefix: str,
    rcvbuf: Optional[int] = None,
    timeout: float = 10.0,
) -> SockJSConnection:
    """
    Open a new session on C{transport} and read its open frame.
    """
    connection = SockJSConnection(transport, port, prefix, rcvbuf, timeout)
    try:
        connection.expect(Deadline(timeout), "o")
    except BaseException:
        connection.close()
        raise
    return connection
