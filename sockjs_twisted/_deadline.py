"""
Timers for many sessions on one reactor.

Deadlines that move later without touching their timer: the timer fires at the old
instant and waits again for whatever is left.  Moving a deadline then costs an
assignment, where cancelling and re-arming a timer costs two heap operations (a poll
answered at once moves its session's deadline on every request).

:class:`Timers` keeps the sessions' timers (heartbeat, disconnect) of one registry in a
heap of its own behind one reactor timer.  The reactor's heap then holds one entry per
registry instead of one per session: every other ``callLater`` (the one per reactor
turn that sends the turn's writes, among them) sifts through a short heap, and Twisted
compares its timers with a Python ``__lt__`` where this heap compares tuples in C.  A
session's timer is a small slotted object, not a ``DelayedCall``.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from itertools import count
from typing import Any, Callable, Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["Timer", "Timers", "waitRest"]


def waitRest(clock: Any, deadline: float, f: Callable[[], Any]) -> Optional[Any]:
    """
    A timer for C{deadline} has fired: call C{f} again when the rest is over, or, if the
    deadline is reached, return C{None}.

    :param clock: The clock the deadline is on (an C{IReactorTime}, or L{Timers}).
    :param deadline: The instant, on C{clock}, the deadline is at now.
    :param f: What the timer calls.
    :return: The timer waiting for the rest, or C{None} if nothing is left (within a
        rounding error of the clock's arithmetic).
    """
    left = deadline - clock.seconds()
    if left > 1e-6:
        return clock.callLater(left, f)
    return None


class Timer:
    """
    One pending call of a L{Timers}: C{cancel}, C{active} and C{getTime} as an
    C{IDelayedCall} has them.
    """

    __slots__ = ("_timers", "_f", "_time")

    def __init__(self, timers: Timers, time: float, f: Callable[[], Any]) -> None:
        self._timers = timers
        self._time = time
        self._f: Optional[Callable[[], Any]] = f

    @property
    def func(self) -> Optional[Callable[[], Any]]:
        """
        What the call calls, or C{None} once it is made or cancelled.
        """
        return self._f

    def getTime(self) -> float:
        """
        :return: The instant, on the clock's C{seconds()}, the call is due.
        """
        return self._time

    def active(self) -> bool:
        """
        :return: Is the call still to be made (neither made nor cancelled)?
        """
        return self._f is not None

    def cancel(self) -> None:
        """
        Do not make the call.  Unlike C{IDelayedCall.cancel}, cancelling a call that was
        made or cancelled already does nothing.
        """
        if self._f is not None:
            self._f = None
            self._timers._cancelled()


class Timers:
    """
    Calls at instants on one clock, behind one timer of that clock that waits for the
    earliest.  Cancelled calls stay in the heap until they come first or until they are
    the larger part of it; once none is pending, the clock's timer is cancelled.

    :ivar clock: The clock.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = count()
        self._pending = 0
        self._call: Optional[IDelayedCall] = None
        self._callTime = 0.0
        self._firing = False

    def seconds(self) -> float:
        """
        :return: The clock's time now.
        """
        return self.clock.seconds()

    def callLater(self, delay: float, f: Callable[[], Any]) -> Timer:
        """
        Call C{f} with no arguments C{delay} seconds from now.

        :return: The call, to cancel it.
        """
        time = self.clock.seconds() + delay
        timer = Timer(self, time, f)
        heappush(self._heap, (time, next(self._order), timer))
        self._pending += 1
        if not self._firing:
            call = self._call
            if call is None:
                self._arm(delay, time)
            elif time < self._callTime:
                call.cancel()
                self._arm(delay, time)
        return timer

    def pending(self) -> int:
        """
        :return: How many calls are still to be made.
        """
        return self._pending

    def getDelayedCalls(self) -> list[Timer]:
        """
        :return: The calls still to be made, earliest first (as the clock's own
            C{getDelayedCalls} lists its timers, for inspection).
        """
        return [entry[2] for entry in sorted(self._heap) if entry[2]._f is not None]

    def _arm(self, delay: float, time: float) -> None:
        self._callTime = time
        self._call = self.clock.callLater(max(delay, 0.0), self._fire)

    def _cancelled(self) -> None:
        self._pending -= 1
        heap = self._heap
        if not self._pending:
            heap.clear()
            call = self._call
            if call is not None and not self._firing:
                self._call = None
                call.cancel()
        elif len(heap) > 64 and self._pending * 2 < len(heap):
            heap[:] = [entry for entry in heap if entry[2]._f is not None]
            heapify(heap)

    def _fire(self) -> None:
        """
        The clock's timer: make every call that is due, then wait for the next.
        """
        self._call = None
        self._firing = True
        heap = self._heap
        try:
            now = self.clock.seconds()
            while heap and heap[0][0] <= now:
                timer = heappop(heap)[2]
                f = timer._f
                if f is None:
                    continue
                timer._f = None
                self._pending -= 1
                try:
                    f()
                except Exception:
                    self.log.failure("A session timer's call raised")
        finally:
            self._firing = False
        while heap and heap[0][2]._f is None:
            heappop(heap)
        if heap:
            time = heap[0][0]
            self._arm(time - self.clock.seconds(), time)
