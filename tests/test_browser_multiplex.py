"""
End-to-end: the real ``WebSocketMultiplex`` client (npm ``websocket-multiplex`` 0.1.0,
its browser file ``multiplex_client.js``) over the real sockjs-client 1.6.1 in headless
Chromium, against ``python -m twisted sockjs``'s ``/multiplex`` service (channels
``echo``, ``ticker``, ``broadcast``).

It reuses the fixtures of :mod:`tests.test_browser` (the page server, the server
subprocess, the shared Chromium, the diagnostics on failure) by import.  The page is
that module's test page; the multiplex client is added to it with Playwright's
``add_script_tag``.

For each transport (websocket, and xhr-streaming as the HTTP transport), one connection
carries several channels at once:

1. ``echo`` and ``broadcast`` open on the same SockJS connection and echo / broadcast
   exactly, payloads with commas included, 50 messages interleaved on both in order;
2. ``ticker`` ticks on the same connection meanwhile;
3. a channel of an unknown topic gets its ``close`` event (the server answers ``uns``),
   and the other channels go on;
4. closing ``echo`` (the client sends ``uns``) leaves ``broadcast`` working; a new
   ``echo`` channel then opens on the same connection and echoes.

``SOCKJS_E2E_MULTIPLEX_JS`` names another copy of ``multiplex_client.js``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SkipTest, TestSuite

from .test_browser import (
    ASSETS,
    PREFIX,
    WAIT,
    _BrowserTransportTests,
    _OneBrowserSuite,
)

MULTIPLEX_JS = Path(
    os.environ.get(
        "SOCKJS_E2E_MULTIPLEX_JS",
        str(ASSETS / "node_modules" / "websocket-multiplex" / "multiplex_client.js"),
    )
)

# Runs in the page; resolves with what each step saw, or rejects with what it waited for.
_SCENARIO = r"""
async ([url, transport, ms]) => {
  const seen = {echo: [], broadcast: [], ticker: [], echo2: []};
  const events = [];
  function within(what, check) {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      (function poll() {
        const value = check();
        if (value) return resolve(value);
        if (Date.now() - started > ms) {
          return reject(new Error('timed out waiting for ' + what + ': ' +
                                  JSON.stringify({seen, events})));
        }
        setTimeout(poll, 5);
      })();
    });
  }
  const sock = new SockJS(url, null, {transports: [transport]});
  sock.addEventListener('close', (e) => events.push('sockjs close ' + e.code));
  const multiplexer = new WebSocketMultiplex(sock);
  const channels = {};
  function open(name, key) {
    const channel = multiplexer.channel(name);
    channels[key] = channel;
    channel.onopen = () => events.push(key + ' open');
    channel.onmessage = (e) => seen[key].push(e.data);
    channel.onclose = () => events.push(key + ' close');
    return channel;
  }
  const echo = open('echo', 'echo');
  const broadcast = open('broadcast', 'broadcast');
  open('ticker', 'ticker');
  await within('the channels to open',
               () => ['echo', 'broadcast', 'ticker'].every((k) => events.includes(k + ' open')));
  const result = {transport: sock.transport};

  echo.send('a,b,,c');
  broadcast.send('to all, with commas');
  await within('the first echo and broadcast',
               () => seen.echo.length >= 1 && seen.broadcast.length >= 1);
  result.first = {echo: seen.echo.slice(), broadcast: seen.broadcast.slice()};

  const expected = [];
  for (let i = 0; i < 50; i++) {
    echo.send('e' + i);
    broadcast.send('b' + i);
    expected.push(i);
  }
  await within('50 interleaved messages on both channels',
               () => seen.echo.length >= 51 && seen.broadcast.length >= 51);
  result.echoOrder = seen.echo.slice(1);
  result.broadcastOrder = seen.broadcast.slice(1);

  await within('a tick', () => seen.ticker.length >= 1);
  result.tick = seen.ticker[0];

  open('no such topic', 'unknown');
  await within('the unknown channel to close', () => events.includes('unknown close'));
  result.unknownClosed = true;

  echo.close();
  broadcast.send('after echo closed');
  await within('a broadcast after echo closed',
               () => seen.broadcast.includes('after echo closed'));
  const echo2 = open('echo', 'echo2');
  await within('the second echo to open', () => events.includes('echo2 open'));
  echo2.send('again, once more');
  await within('the second echo', () => seen.echo2.length >= 1);
  result.echo2 = seen.echo2.slice();
  result.echoAfterClose = seen.echo.length;
  result.events = events.filter((e) => !e.startsWith('sockjs'));
  result.sockjsEvents = events.filter((e) => e.startsWith('sockjs'));
  sock.close();
  return result;
}
"""


class MultiplexBrowserTests(_BrowserTransportTests):
    """
    The real multiplex client, from a page of another origin.
    """

    sameOrigin = False

    def runMultiplex(self, transport: str) -> None:
        if not MULTIPLEX_JS.is_file():
            self.unavailable(
                f"no websocket-multiplex client at {MULTIPLEX_JS}; run .ci/install-browser.sh"
            )
        static = self.startPageServer()
        self.pageServerLogs = [("static files", static.log)]
        self.spawnServer(f"{static.base}{PREFIX}/sockjs.min.js")
        self.page = self.startBrowser()
        serverBase = self.waitForServer()
        try:
            self.page.goto(f"{static.base}{PREFIX}/index.html")
            self.page.add_script_tag(path=str(MULTIPLEX_JS))
            result = self.js(_SCENARIO, f"{serverBase}/multiplex", transport, WAIT * 1000)
            self.check(transport, result)
        except SkipTest:
            raise
        except Exception as error:
            raise self.failureException(
                f"multiplex over {transport}: {error}{self.diagnostics()}"
            ) from error

    def check(self, transport: str, result: dict[str, Any]) -> None:
        self.assertEqual(result["transport"], transport)
        self.assertEqual(
            result["first"], {"echo": ["a,b,,c"], "broadcast": ["to all, with commas"]}
        )
        self.assertEqual(result["echoOrder"], [f"e{i}" for i in range(50)])
        self.assertEqual(result["broadcastOrder"], [f"b{i}" for i in range(50)])
        self.assertEqual(result["tick"], "tick!")
        self.assertTrue(result["unknownClosed"])
        self.assertEqual(result["echo2"], ["again, once more"])
        self.assertEqual(result["echoAfterClose"], 51)
        self.assertEqual(
            result["events"],
            [
                "echo open",
                "broadcast open",
                "ticker open",
                "unknown open",
                "unknown close",
                "echo close",
                "echo2 open",
            ],
        )
        self.assertEqual(result["sockjsEvents"], [])

    def test_websocket(self) -> None:
        """WebSocketMultiplex over sockjs-client's websocket: channels side by side, unknown topic closed, unsubscribe and resubscribe."""
        self.runMultiplex("websocket")

    def test_xhr_streaming(self) -> None:
        """WebSocketMultiplex over sockjs-client's xhr-streaming: channels side by side, unknown topic closed, unsubscribe and resubscribe."""
        self.runMultiplex("xhr-streaming")


def testSuite() -> TestSuite:
    """
    This module's tests, for trial: they share one Chromium.
    """
    return _OneBrowserSuite([TestLoader().loadClass(MultiplexBrowserTests)])
