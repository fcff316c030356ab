"""
Deadlines that move later without touching their timer: the timer fires at the old
instant and waits again for whatever is left.  Moving a deadline then costs an
assignment, where cancelling and re-arming a timer costs two heap operations (a poll
answered at once moves its session's deadline on every request).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["waitRest"]


def waitRest(clock: IReactorTime, deadline: float, f: Callable[[], Any]) -> Optional[IDelayedCall]:
    """
    A timer for C{deadline} has fired: call C{f} again when the rest is over, or, if the
    deadline is reached, return C{None}.

    :param clock: The clock the deadline is on.
    :param deadline: The instant, on C{clock}, the deadline is at now.
    :param f: What the timer calls.
    :return: The timer waiting for the rest, or C{None} if nothing is left (within a
        rounding error of the clock's arithmetic).
    """
    left = deadline - clock.seconds()
    if left > 1e-6:
        return clock.callLater(left, f)
    return None
