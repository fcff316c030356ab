"""
Tests for L{sockjs_twisted._deadline}: the sessions' timers behind one reactor timer.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from sockjs_twisted._deadline import Timers, waitRest


class TimersTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.timers = Timers(self.clock)
        self.made: list[str] = []

    def call(self, delay: float, name: str) -> object:
        return self.timers.callLater(delay, lambda: self.made.append(name))

    def test_madeAtTheirInstantsInTimeOrder(self) -> None:
        """Calls added in any order are made at their instants, earliest first."""
        self.call(3, "c")
        self.call(1, "a")
        self.call(2, "b")
        self.clock.advance(0.999)
        self.assertEqual(self.made, [])
        self.clock.advance(0.001)
        self.assertEqual(self.made, ["a"])
        self.clock.advance(5)
        self.assertEqual(self.made, ["a", "b", "c"])

    def test_sameInstantInOrderAdded(self) -> None:
        """Calls due at the same instant are made in the order they were added."""
        for name in "xyz":
            self.call(1, name)
        self.clock.advance(1)
        self.assertEqual(self.made, ["x", "y", "z"])

    def test_oneClockTimer(self) -> None:
        """However many calls wait, the clock holds one timer, at the earliest instant."""
        for i in range(100):
            self.call(10 + i, str(i))
        self.call(5, "first")
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [5])

    def test_noClockTimerWhenNothingPending(self) -> None:
        """Once every call is made or cancelled, the clock holds no timer."""
        made = self.call(1, "a")
        cancelled = self.call(2, "b")
        self.clock.advance(1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        cancelled.cancel()  # type: ignore[attr-defined]
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.timers.pending(), 0)
        self.assertFalse(made.active())  # type: ignore[attr-defined]

    def test_cancelled(self) -> None:
        """A cancelled call is not made; the others are, and cancelling twice is harmless."""
        timer = self.call(1, "a")
        self.call(1, "b")
        self.assertTrue(timer.active())  # type: ignore[attr-defined]
        timer.cancel()  # type: ignore[attr-defined]
        timer.cancel()  # type: ignore[attr-defined]
        self.assertFalse(timer.active())  # type: ignore[attr-defined]
        self.clock.advance(1)
        self.assertEqual(self.made, ["b"])
        self.assertEqual(self.timers.pending(), 0)

    def test_getDelayedCalls(self) -> None:
        """getDelayedCalls lists the calls still to be made, earliest first."""
        first = self.call(1, "a")
        second = self.call(2, "b")
        self.call(3, "c").cancel()  # type: ignore[attr-defined]
        self.assertEqual(self.timers.getDelayedCalls(), [first, second])
        self.clock.advance(1)
        self.assertEqual(self.timers.getDelayedCalls(), [second])
        self.assertIsNone(first.func)  # type: ignore[attr-defined]

    def test_getTime(self) -> None:
        """getTime is the instant on the clock the call is due."""
        self.clock.advance(7)
        self.assertEqual(self.call(2.5, "a").getTime(), 9.5)  # type: ignore[attr-defined]

    def test_addedDuringACall(self) -> None:
        """A call that adds another (a heartbeat re-arming) gets it made at its instant."""

        def beat() -> None:
            self.made.append(f"beat {self.clock.seconds():g}")
            if len(self.made) < 3:
                self.timers.callLater(2, beat)

        self.timers.callLater(2, beat)
        self.clock.advance(2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(2)
        self.clock.advance(2)
        self.assertEqual(self.made, ["beat 2", "beat 4", "beat 6"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancelledDuringACall(self) -> None:
        """A call that cancels a later one due at the same instant stops it."""
        later: list[object] = []
        self.timers.callLater(1, lambda: later[0].cancel())  # type: ignore[attr-defined]
        later.append(self.call(1, "later"))
        self.call(2, "after")
        self.clock.advance(1)
        self.assertEqual(self.made, [])
        self.clock.advance(1)
        self.assertEqual(self.made, ["after"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_earlierCallRearms(self) -> None:
        """A call due before the one the clock waits for moves the clock's timer sooner."""
        self.call(10, "late")
        self.call(1, "early")
        self.clock.advance(1)
        self.assertEqual(self.made, ["early"])
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [10])

    def test_raisingCallLogged(self) -> None:
        """A call that raises is logged, and the other calls due are still made."""
        self.timers.callLater(1, lambda: 1 // 0)
        self.call(1, "b")
        self.clock.advance(1)
        self.assertEqual(self.made, ["b"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_cancelledDoNotAccumulate(self) -> None:
        """Cancelled calls are dropped once they outnumber the pending ones: memory stays bounded."""
        keep = self.call(1000, "kept")
        for _ in range(10):
            for timer in [self.call(500, "x") for _ in range(1000)]:
                timer.cancel()  # type: ignore[attr-defined]
            self.assertLessEqual(len(self.timers._heap), 65)
        self.assertTrue(keep.active())  # type: ignore[attr-defined]
        self.clock.advance(1000)
        self.assertEqual(self.made, ["kept"])

    def test_waitRest(self) -> None:
        """waitRest on the timers waits what is left of a deadline that moved later."""
        fired: list[float] = []

        def expire() -> None:
            if waitRest(self.timers, deadline[0], expire) is None:
                fired.append(self.clock.seconds())

        deadline = [5.0]
        self.timers.callLater(5, expire)
        self.clock.advance(3)
        deadline[0] = 8.0
        self.clock.advance(2)
        self.assertEqual(fired, [])
        self.clock.advance(3)
        self.assertEqual(fired, [8.0])
        self.assertEqual(self.clock.getDelayedCalls(), [])
