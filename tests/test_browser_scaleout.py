"""
The end-to-end browser scenario of L{tests.test_browser} (the real sockjs-client 1.6.1 in
Chromium, every transport, from a page of the server's own origin) run through the
scale-out set-ups: C{twistd sockjs --workers 2} (HAProxy in front of two workers), and
nginx (the configuration of docs/deployment) in front of two servers.

Each set-up is started once for its tests, with one page server whose
C{sockjs.min.js} the servers' iframe pages load.  Every request of a session must reach
the worker holding it: the browser's own requests, and the test's sends to the browser's
session, which go through the proxy too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from functools import partial
from typing import Any, Callable

from twisted.trial.runner import TestLoader
from twisted.trial.unittest import TestSuite

from sockjs_twisted._workers import freePort, nginxConfig

from . import test_browser
from ._scaleout import (
    ServerProcess,
    Shared,
    SharedSuite,
    Supervisor,
    answers,
    startNginx,
    waitFor,
)
from .test_browser import PREFIX, TRANSPORTS, _BrowserTransportTests, _PageServer, _transportTest

_pages = Shared(lambda: _PageServer(), _PageServer.stop)


def _sockjsURL() -> str:
    pages: _PageServer = _pages.value
    return f"{pages.base}{PREFIX}/sockjs.min.js"


class _WorkersSetUp:
    """
    C{--workers 2}: the supervisor, its workers and its HAProxy.
    """

    def __init__(self) -> None:
        self.supervisor = Supervisor(2, "--sockjs-url", _sockjsURL())
        self.supervisor.waitReady("/echo/info")
        self.base = self.supervisor.base
        self.logPath = self.supervisor.logPath
        self.process = self.supervisor.process
        self.command = "python -m twisted sockjs --workers 2"

    def stop(self) -> None:
        self.supervisor.stop()


class _NginxSetUp:
    """
    nginx in front of two plain servers.
    """

    def __init__(self) -> None:
        self.servers = [ServerProcess("--sockjs-url", _sockjsURL()) for _ in range(2)]
        self.proxy: Any = None
        try:
            for server in self.servers:
                waitFor(partial(answers, server.base + "/echo/info"), 60, "a server")
            port = freePort()
            self.proxy = startNginx(
                lambda directory: nginxConfig(
                    f"127.0.0.1:{port}",
                    [f"127.0.0.1:{s.port}" for s in self.servers],
                    2,
                    pidFile=os.path.join(directory, "nginx.pid"),
                    tempDir=directory,
                ),
                port,
            )
            waitFor(lambda: answers(self.proxy.base + "/echo/info"), 30, "nginx")
        except BaseException:
            self.stop()
            raise
        self.base = self.proxy.base
        # The servers' logs, one after the other, for failure reports.
        self.logPath = os.path.join(tempfile.mkdtemp(prefix="sockjs-nginx-logs-"), "all.log")
        self.process = self.proxy.process
        self.command = "nginx in front of two python -m twisted sockjs"

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for server in self.servers:
            server.stop()

    def gatherLogs(self) -> None:
        with open(self.logPath, "w") as f:
            for server in self.servers:
                f.write(f"--- server on {server.port} ---\n{server.log()}")
            if self.proxy is not None:
                f.write(f"--- nginx ---\n{self.proxy.log()}")


_workers = Shared(_WorkersSetUp, _WorkersSetUp.stop)
_nginx = Shared(_NginxSetUp, _NginxSetUp.stop)


class _ScaleOutBrowserTests(_BrowserTransportTests):
    """
    The browser scenario against a shared set-up instead of one server per test.
    """

    sameOrigin = True
    setUp_: Shared

    def startPageServer(self, upstream: tuple[str, int] | None = None) -> _PageServer:
        if upstream is None:
            # The one page server the set-up's iframe pages load sockjs.min.js from.
            pages: _PageServer = _pages.get(self)
            return pages
        return super().startPageServer(upstream)

    def spawnServer(self, sockjsUrl: str) -> None:
        started = self.setUp_.get(self)
        self.started = started
        self.serverLogPath = test_browser.Path(started.logPath)
        self.serverProcess = started.process
        self.serverCommandLine = started.command

    def waitForServer(self) -> str:
        base: str = self.started.base
        return base

    def serverLog(self) -> str:
        gather = getattr(self.started, "gatherLogs", None)
        if gather is not None:
            gather()
        return super().serverLog()

    def record(self, transport: str, line: str) -> None:
        sys.stderr.write(f"\n[browser scale-out] {type(self).__name__} {transport:<18} {line}\n")


def _addTests(where: str) -> Callable[[type[_ScaleOutBrowserTests]], type[_ScaleOutBrowserTests]]:
    def add(cls: type[_ScaleOutBrowserTests]) -> type[_ScaleOutBrowserTests]:
        for transport in TRANSPORTS:
            test = _transportTest(transport)
            test.__doc__ = (
                f"sockjs-client's {transport} transport, {where}, opens, echoes exactly "
                f"and in order, and closes both ways."
            )
            test.__qualname__ = f"{cls.__name__}.{test.__name__}"
            setattr(cls, test.__name__, test)
        return cls

    return add


@_addTests("through --workers 2 (HAProxy)")
class WorkersBrowserTests(_ScaleOutBrowserTests):
    setUp_ = _workers


@_addTests("through nginx in front of two servers")
class NginxBrowserTests(_ScaleOutBrowserTests):
    setUp_ = _nginx


def testSuite() -> TestSuite:
    """
    This module's tests, for trial: one Chromium, one page server, one set-up each.
    """
    loader = TestLoader()
    suite = SharedSuite(
        [loader.loadClass(WorkersBrowserTests), loader.loadClass(NginxBrowserTests)],
        [_pages, _workers, _nginx],
    )
    return test_browser._OneBrowserSuite([suite])
