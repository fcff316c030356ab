"""
Interfaces: what a user's protocol sees as its transport, and what a session needs from
whatever carries its frames to the browser.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IConsumer, ITransport
from zope.interface import Attribute, Interface

__all__ = ["ISessionSink", "ISockJSTransport"]


class ISockJSTransport(ITransport, IConsumer):
    """
    The transport of a protocol served over SockJS: one SockJS session.

    C{write} sends one message (UTF-8 bytes); C{loseConnection} closes the session with
    C{3000 "Go away!"}.  The attributes mirror sockjs-node's connection properties.
    """

    sessionId = Attribute("The SockJS session id (str), or None for raw websockets.")
    readyState = Attribute("0 connecting, 1 open, 2 closing, 3 closed.")
    connected = Attribute("True while the session is open.")
    disconnecting = Attribute(
        "True once the session is closing or closed (read by LineReceiver and friends)."
    )
    protocol = Attribute(
        "The name of the transport the browser uses now, e.g. 'websocket', 'xhr-streaming'."
    )
    prefix = Attribute("The endpoint's prefix option.")
    url = Attribute("The URL (path and query) of the last receiving request.")
    pathname = Attribute("The path of C{url}.")
    remoteAddress = Attribute("The client's IP address (str), or None.")
    remotePort = Attribute("The client's port (int), or None.")
    headers = Attribute(
        "Selected headers of the last receiving request, lower-case names; never cookies."
    )

    def close(code: int = 3000, reason: str = "Go away!") -> None:
        """
        Close the session with a SockJS close frame carrying C{code} and C{reason}.
        """


class ISessionSink(Interface):
    """
    Something that carries frames of one session to the browser: an HTTP response of one
    of the HTTP transports, or a websocket.
    """

    protocolName = Attribute("The transport's name, as ISockJSTransport.protocol reports it.")
    sinkPaused = Attribute("True while the connection below cannot take more data.")

    def bindSession(session: Any) -> None:
        """
        The sink now carries the frames of C{session}; it calls the session's C{detach}
        when it ends.
        """

    def writeFrame(frame: str) -> None:
        """
        Send one SockJS frame (C{o}, C{h}, C{a[...]}, C{c[...]}).  A sink may finish
        itself after it (polling, or a streaming response past its limit), and then
        detaches itself from the session.
        """

    def writeMessages(quoted: list[str]) -> None:
        """
        Send messages (as L{sockjs_twisted._framing.quoteMessage} quoted them for framed
        sinks, plain text for raw websockets).
        """

    def finishSink(code: int, reason: str) -> None:
        """
        End the response or close the websocket.  Does not call back into the session.
        """
