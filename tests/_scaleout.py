"""
What the scale-out tests share: the real redis-server, haproxy, nginx and
C{twistd sockjs --workers} processes (started on free loopback ports, stopped by PID), a
test application that tells which worker serves it, and waiting helpers.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Callable, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestSuite

from sockjs_twisted._workers import freePort
from sockjs_twisted.hub import IHub, LocalHub
from sockjs_twisted.testing import SockJSClient

from ._ci import inCI
from ._processes import ROOT, childEnvironment, readLog, sockjsCommand, stopProcess

IN_CI = inCI()


def requireBinary(name: str) -> str:
    """
    The path of C{name}; a skip when it is missing, or a failure in CI.
    """
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is None:
        reason = f"{name} is not installed (apt install {name.replace('-server', '')})"
        if IN_CI:
            raise AssertionError(reason + "; CI=true: a failure, not a skip")
        raise SkipTest(reason)
    return path


def waitFor(check: Callable[[], bool], timeout: float, what: str) -> float:
    """
    Poll C{check} (blocking) until it is true; return how long it took.
    """
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def answers(url: str) -> bool:
    """
    Does C{url} answer 200?
    """
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def sleep(reactor: Any, seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def until(reactor: Any, check: Callable[[], bool], timeout: float, what: str) -> float:
    """
    Wait (on the reactor) until C{check} is true; return how long it took.
    """
    start = reactor.seconds()
    while not check():
        if reactor.seconds() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await sleep(reactor, 0.02)
    return float(reactor.seconds() - start)


class RedisServer:
    """
    A redis-server of our own on a free loopback port, persistence off.
    """

    def __init__(self) -> None:
        self.binary = requireBinary("redis-server")
        self.port = freePort()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        waitFor(self._listening, 10, "redis-server to listen")

    def _listening(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stopProcess(self.process)
            self.process = None


class _LoggedProcess:
    """
    A child listening on C{port} on loopback, its output in the file C{logPath}.
    """

    port: int
    logPath: str
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return readLog(self.logPath)

    def stop(self) -> None:
        stopProcess(self.process)


class Supervisor(_LoggedProcess):
    """
    C{python -m twisted sockjs --workers N ...} on a free loopback port, its log in a file.
    """

    _ready = re.compile(r"SockJS worker (\d+) \(pid (\d+)\) ready on port (\d+)")

    def __init__(self, workers: int, *args: str, env: Optional[dict[str, str]] = None) -> None:
        requireBinary("haproxy")
        self.directory = tempfile.mkdtemp(prefix="sockjs-workers-test-")
        self.logPath = os.path.join(self.directory, "supervisor.log")
        self.port = freePort()
        with open(self.logPath, "wb") as log:
            self.process = subprocess.Popen(
                sockjsCommand(
                    f"tcp:{self.port}:interface=127.0.0.1", "--workers", str(workers), *args
                ),
                cwd=ROOT,
                env=childEnvironment(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.count = workers

    def readyWorkers(self) -> dict[int, tuple[int, int]]:
        """
        Worker index to (pid, port), as last reported ready.
        """
        ready: dict[int, tuple[int, int]] = {}
        for match in self._ready.finditer(self.log()):
            ready[int(match.group(1))] = (int(match.group(2)), int(match.group(3)))
        return ready

    def waitReady(self, infoPath: str, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the supervisor exited:\n{self.log()}")
            return len(self.readyWorkers()) == self.count and answers(self.base + infoPath)

        try:
            waitFor(ready, timeout, "the workers and HAProxy")
        except AssertionError:
            self.stop()
            raise AssertionError(f"not ready in {timeout} s:\n{self.log()}") from None

    def stop(self) -> None:
        """
        SIGTERM (a graceful stop), then SIGKILL to the whole process group (ours) if the
        supervisor did not end its children.
        """
        stopProcess(self.process)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass


class ProxyProcess(_LoggedProcess):
    """
    haproxy or nginx with a configuration of ours.
    """

    def __init__(self, command: list[str], port: int, directory: str) -> None:
        self.port = port
        self.logPath = os.path.join(directory, "proxy.log")
        with open(self.logPath, "wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )


def startHAProxy(config: str, port: int) -> ProxyProcess:
    binary = requireBinary("haproxy")
    directory = tempfile.mkdtemp(prefix="sockjs-haproxy-test-")
    path = os.path.join(directory, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(config)
    check = subprocess.run([binary, "-c", "-f", path], capture_output=True)
    if check.returncode != 0:
        raise AssertionError(f"haproxy -c rejects the configuration:\n{check.stderr!r}")
    return ProxyProcess([binary, "-db", "-f", path], port, directory)


def startNginx(configFor: Callable[[str], str], port: int) -> ProxyProcess:
    """
    nginx in the foreground as this user: C{configFor(directory)} gives the whole
    nginx.conf, its pid file and temporary paths in C{directory}.
    """
    binary = requireBinary("nginx")
    directory = tempfile.mkdtemp(prefix="sockjs-nginx-test-")
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as f:
        f.write(configFor(directory))
    # -e stderr: nginx opens its default error log before it reads the configuration,
    # which an ordinary user may not write.
    command = [binary, "-e", "stderr", "-p", directory, "-c", path, "-g", "daemon off;"]
    check = subprocess.run(
        [binary, "-e", "stderr", "-t", "-p", directory, "-c", path], capture_output=True
    )
    if check.returncode != 0:
        raise AssertionError(f"nginx -t rejects the configuration:\n{check.stderr!r}")
    return ProxyProcess(command, port, directory)


class ServerProcess(_LoggedProcess):
    """
    One plain C{python -m twisted sockjs} server on a free loopback port (an external
    worker, as --print-haproxy-config's user runs them).
    """

    def __init__(self, *args: str) -> None:
        self.port = freePort()
        self.directory = tempfile.mkdtemp(prefix="sockjs-server-test-")
        self.logPath = os.path.join(self.directory, "server.log")
        with open(self.logPath, "wb") as log:
            self.process = subprocess.Popen(
                sockjsCommand(f"tcp:{self.port}:interface=127.0.0.1", *args),
                cwd=ROOT,
                env=childEnvironment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )


# -- SockJS sessions through the proxies ---------------------------------------------------

_opened: list[Recorder] = []


async def openSession(base: str, transport: str) -> Recorder:
    protocol = Recorder()
    await SockJSClient(reactor, base, transport).connect(protocol)
    _opened.append(protocol)
    return protocol


async def abortOpened() -> None:
    """
    End every session a test left open (one that failed half-way).
    """
    opened = list(_opened)
    _opened.clear()
    for protocol in opened:
        if protocol.lost is None and protocol.transport is not None:
            protocol.transport.abortConnection()  # type: ignore[attr-defined]
    for protocol in opened:
        await protocol.closed


async def ask(protocol: Recorder, message: bytes, timeout: float = 15) -> bytes:
    """
    Send C{message}; the first message received after it.
    """
    count = len(protocol.received)
    assert protocol.transport is not None
    protocol.transport.write(message)
    await until(
        reactor,
        lambda: len(protocol.received) > count or protocol.lost is not None,
        timeout,
        f"an answer to {message!r}",
    )
    if len(protocol.received) <= count:
        raise AssertionError(f"session lost before an answer to {message!r}: {protocol.lost}")
    return protocol.received[count]


async def pidOf(protocol: Recorder) -> int:
    answer = await ask(protocol, b"!pid")
    return int(answer.split()[1])


async def close(protocol: Recorder) -> None:
    if protocol.lost is None:
        assert protocol.transport is not None
        protocol.transport.loseConnection()
    await protocol.closed


def together(coroutines: list[Any]) -> Deferred[list[Any]]:
    return gatherResults([Deferred.fromCoroutine(c) for c in coroutines], consumeErrors=True)


# -- the application the tests serve ------------------------------------------------------


class WhoAmI(Protocol):
    """
    Echoes; C{"!pid"} is answered with the worker's pid; C{"!pub <text>"} publishes
    C{<text>} on the hub's C{"all"} channel, to which every session is subscribed.
    """

    factory: WhoAmIFactory

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.factory.hub.subscribe("all", self.transport)

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        if data == b"!pid":
            self.transport.write(b"pid %d" % os.getpid())
        elif data.startswith(b"!pub "):
            self.factory.hub.publish("all", data[5:])
        else:
            self.transport.write(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.hub.unsubscribeAll(self.transport)


class WhoAmIFactory(Factory):
    protocol = WhoAmI  # type: ignore[assignment]

    def __init__(self) -> None:
        # twistd sockjs --redis sets it to the Redis hub.
        self.hub: IHub = LocalHub()


class Recorder(Protocol):
    """
    A client protocol that records what it receives.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: Optional[Failure] = None
        self.closed: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost = reason
        self.closed.callback(None)


class Shared:
    """
    A fixture shared by the tests of a L{SharedSuite} (started by the first test that
    asks for it, stopped when the suite is done), or, for a test run alone, its own
    (stopped at its cleanup).
    """

    def __init__(self, start: Callable[[], Any], stop: Callable[[Any], None]) -> None:
        self._start = start
        self._stop = stop
        self.value: Any = None
        self.shared = False

    def get(self, testCase: Any) -> Any:
        if self.value is None:
            self.value = self._start()
        if not self.shared:
            testCase.addCleanup(self.release)
        return self.value

    def release(self) -> None:
        value = self.value
        self.value = None
        if value is not None:
            self._stop(value)


class SharedSuite(TestSuite):
    """
    Runs its tests with its L{Shared} fixtures kept between them.
    """

    def __init__(self, tests: list[Any], fixtures: list[Shared]) -> None:
        super().__init__(tests)
        self._fixtures = fixtures

    def run(self, result: Any, debug: bool = False) -> Any:
        for fixture in self._fixtures:
            fixture.shared = True
        try:
            return super().run(result, debug)
        finally:
            for fixture in self._fixtures:
                fixture.shared = False
                fixture.release()
