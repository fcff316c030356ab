"""Raw Autobahn WebSocket server on Twisted, no SockJS framing: the floor for bench/run.

Any path starting with /broadcast relays each message to every open connection; one
starting with /close is closed (3000) as it opens; any other path echoes.  Usage: python autobahn_raw.py PORT
"""

from __future__ import annotations

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor


class FloorProtocol(WebSocketServerProtocol):
    everyone: set = set()
    relays = False
    closes = False

    def onConnect(self, request):  # type: ignore[no-untyped-def]
        self.relays = request.path.startswith("/broadcast")
        self.closes = request.path.startswith("/close")

    def onOpen(self) -> None:
        if self.closes:
            self.sendClose(3000, "Go away!")
        if self.relays:
            self.everyone.add(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.relays:
            for other in self.everyone:
                other.sendMessage(payload, isBinary)
        else:
            self.sendMessage(payload, isBinary)

    def onClose(self, wasClean: bool, code: object, reason: object) -> None:
        self.everyone.discard(self)


def main(port: int) -> None:
    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = FloorProtocol
    # A client that has not answered a close within Autobahn's default second is reset,
    # which on a busy machine loses the handshake answer still unread (scenario G): give
    # it the 5 s ours gives.
    factory.setProtocolOptions(autoPingInterval=0, closeHandshakeTimeout=5)
    reactor.listenTCP(port, factory, backlog=1024, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
