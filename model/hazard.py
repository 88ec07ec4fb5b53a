"""Time-varying hazards on the SimPy clock.

A :class:`HazardClock` fires once the hazard integrated since it started reaches an Exp(1)
budget drawn from the child's uniforms. The rate can change at any time (a guardian starts,
a decision is made, the child turns 18): ``set_rate`` spends the budget used so far and
reschedules. This is the exact way to sample a first event time under a piecewise-constant
hazard, so every mechanism that multiplies a hazard acts on the event time it should.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from model.calendar import DAYS_PER_YEAR

if TYPE_CHECKING:
    import simpy


class HazardClock:
    """Fires ``fire()`` when the integrated rate (per year) reaches ``-log(1 - u)``.

    ``horizon`` (a simulation day) bounds the scheduling: a firing time past it is not put on
    the event list at all (the rate would have to change before then for the clock to fire).
    """

    __slots__ = ("_env", "_fire", "_pending", "_since", "budget", "horizon", "rate")

    def __init__(
        self, env: simpy.Environment, u: float, fire: Callable[[], None], horizon: float
    ) -> None:
        self._env = env
        self._fire = fire
        self.budget = -math.log1p(-u)
        self.rate = 0.0
        self._since = env.now
        self._pending: object | None = None  # identity of the live timeout
        self.horizon = horizon

    def reset(self, u: float) -> None:
        """Start a fresh budget (after the clock fired and the child is safe again)."""
        self.budget = -math.log1p(-u)
        self._since = self._env.now
        self._pending = None
        self.set_rate(self.rate, force=True)

    def set_rate(self, rate_per_year: float, force: bool = False) -> None:
        """Change the rate from now on; spend the budget used at the old rate."""
        now = self._env.now
        if rate_per_year == self.rate and not force:
            return
        if self.rate > 0.0:
            self.budget -= self.rate * (now - self._since) / DAYS_PER_YEAR
            self.budget = max(self.budget, 0.0)
        self._since = now
        self.rate = rate_per_year
        self._pending = None
        if rate_per_year <= 0.0:
            return
        delay = self.budget / rate_per_year * DAYS_PER_YEAR
        if now + delay >= self.horizon:
            return
        timeout = self._env.timeout(delay)
        self._pending = timeout
        timeout.callbacks.append(self._on_timeout)

    def stop(self) -> None:
        """Never fire again (until ``reset``)."""
        self.rate = 0.0
        self._pending = None

    def _on_timeout(self, event: object) -> None:
        if event is not self._pending:
            return  # superseded by a later rate change
        self._pending = None
        self.budget = 0.0
        self._since = self._env.now
        self.rate = 0.0
        self._fire()


def time_to_event_with_early_window(
    rate_per_year: float, early_ratio: float, window_days: float, u: float
) -> float:
    """Days until an event whose hazard is ``rate * early_ratio`` for the first
    ``window_days`` and ``rate`` afterwards (inverse of the piecewise cumulative hazard).

    Returns ``inf`` for a zero rate.
    """
    if rate_per_year <= 0.0:
        return math.inf
    budget = -math.log1p(-u)
    per_day = rate_per_year / DAYS_PER_YEAR
    early = per_day * early_ratio * window_days
    if budget <= early:
        return budget / (per_day * early_ratio)
    return window_days + (budget - early) / per_day
