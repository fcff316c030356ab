"""
A tiny line-based command protocol, written for plain TCP (C{telnet localhost 8023}) and
knowing nothing of SockJS:

    HELP              the commands
    ECHO <text>       <text>
    ADD <n> <n> ...   the sum
    QUIT              BYE, and the connection closes
"""

from __future__ import annotations

from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver


class CommandProtocol(LineReceiver):
    """
    Answers one line per command line.  Lines end with CR LF (C{LineReceiver}'s default).
    """

    def connectionMade(self) -> None:
        self.sendLine(b"READY (HELP for help)")

    def lineReceived(self, line: bytes) -> None:
        command, _, argument = line.strip().partition(b" ")
        handler = getattr(self, "do_" + command.decode("ascii", "replace").upper(), None)
        if handler is None:
            self.sendLine(b"ERR unknown command: " + command)
        else:
            handler(argument.strip())

    def do_HELP(self, argument: bytes) -> None:
        self.sendLine(b"HELP | ECHO <text> | ADD <n> <n> ... | QUIT")

    def do_ECHO(self, argument: bytes) -> None:
        self.sendLine(argument)

    def do_ADD(self, argument: bytes) -> None:
        try:
            total = sum(int(n) for n in argument.split())
        except ValueError:
            self.sendLine(b"ERR ADD takes whole numbers")
            return
        self.sendLine(b"%d" % (total,))

    def do_QUIT(self, argument: bytes) -> None:
        self.sendLine(b"BYE")
        self.transport.loseConnection()


class CommandFactory(Factory):
    protocol = CommandProtocol
