"""
A SockJS client for Twisted: runs an ordinary protocol factory over SockJS, the mirror of
the server side, against any SockJS server (sockjs-node, Spring, sockjs-go, ours).

It speaks the websocket, xhr-streaming and xhr-polling transports, falling back from one
to the next as sockjs-client does, over http and https (ws and wss)::

    from sockjs_twisted.client import connectSockJS

    protocol = await connectSockJS(reactor, "http://127.0.0.1:8081/echo", factory)
    protocol.transport.write(b"hello")
"""

from ._connect import TRANSPORTS, SockJSClient, connectSockJS
from ._frames import Close, FrameError, Heartbeat, Messages, Open, decodeFrame
from ._transport import (
    CLOSED,
    CLOSING,
    CONNECTING,
    OPEN,
    NoProtocol,
    SessionRefused,
    SockJSClientTransport,
)

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "Close",
    "OPEN",
    "TRANSPORTS",
    "FrameError",
    "Heartbeat",
    "Messages",
    "NoProtocol",
    "Open",
    "SessionRefused",
    "SockJSClient",
    "SockJSClientTransport",
    "connectSockJS",
    "decodeFrame",
]
