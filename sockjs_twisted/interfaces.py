"""
Interfaces: what a user's protocol sees as its transport, and what a session needs from
whatever carries its frames to the browser.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport
from zope.interface import Attribute, Interface

__all__ = ["ISessionSink", "ISockJSTransport"]


class ISockJSTransport(ITransport, IConsumer, IPushProducer):
    """
    The transport of a protocol served over SockJS: one SockJS session.

    C{write} sends one message (UTF-8 bytes); C{loseConnection} closes the session with
    C{3000 "Go away!"} once what was written is delivered; C{abortConnection} closes it
    at once.  As on a TCP transport, C{pauseProducing} and C{resumeProducing} stop and
    restart the delivery of what the client sends.  The attributes mirror sockjs-node's
    connection properties (its C{protocol} is our C{transportName}: in Twisted,
    C{transport.protocol} is the protocol object).
    """

    sessionId = Attribute("The SockJS session id (str), or None for raw websockets.")
    readyState = Attribute(
        "CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3), exported by sockjs_twisted."
    )
    connected = Attribute("True while the session is open.")
    disconnecting = Attribute(
        "True once the session is closing or closed (read by LineReceiver and friends)."
    )
    transportName = Attribute(
        "The name of the transport the browser uses now, e.g. 'websocket', 'xhr-streaming' "
        "(sockjs-node's connection.protocol)."
    )
    protocol = Attribute(
        "The protocol this transport carries, as on Twisted's transports; None once it "
        "has had its connectionLost."
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
        Close the session with a SockJS close frame carrying C{code} and C{reason}, once
        what was written is delivered.
        """

    def abortConnection() -> None:
        """
        Close the session at once: drop what is queued, send the close frame where a
        receiving connection is attached, and give the protocol C{connectionLost} with
        C{ConnectionAborted}.
        """


class ISessionSink(Interface):
    """
    Something that carries frames of one session to the browser: an HTTP response of one
    of the HTTP transports, or a websocket.
    """

    protocolName = Attribute("The transport's name, as ISockJSTransport.transportName reports it.")
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
        Send messages: for framed sinks, strings of one or more messages, each quoted by
        L{sockjs_twisted._framing.quoteMessage} and joined by commas (the session joins
        many small messages to save memory), to go into one C{a[...]} frame; for raw
        websockets, one plain-text message per string.
        """

    def finishSink(code: int, reason: str) -> None:
        """
        End the response or close the websocket.  Does not call back into the session.
        """
