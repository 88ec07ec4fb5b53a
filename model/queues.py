"""Finite-capacity services with O(1) queues.

``simpy.Resource`` keeps its users and waiting line in Python lists, so a release with
thousands of holders costs O(n). Decision teams here hold thousands of cases at once, so these
classes keep a ``deque`` of waiting jobs and a busy counter instead; both are driven by SimPy
events and callbacks on the model's ``simpy.Environment``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import simpy


class Job:
    """One case in a :class:`DecisionQueue`. ``done`` fires when it is decided or cancelled."""

    __slots__ = ("cancelled", "done", "enqueued_at", "queue", "service_days", "started_at")

    def __init__(self, env: simpy.Environment, service_days: float, queue: DecisionQueue) -> None:
        self.queue = queue
        self.done = simpy.Event(env)
        self.service_days = service_days
        self.enqueued_at = env.now
        self.started_at = -1.0
        self.cancelled = False


class DecisionQueue:
    """``servers`` case workers, first come first served (an M/G/c queue).

    A job waits for a free server, then occupies it for its own ``service_days``. The number
    of servers can change at any time (a timeline entry); a reduction takes effect as servers
    finish their current case.

    Assumptions:
        Work is not pre-empted; a cancelled job that is waiting leaves the queue at once
        (its ``done`` fires with ``False``); one already in service finishes its work first.
    """

    def __init__(self, env: simpy.Environment, servers: int, name: str = "") -> None:
        self.env, self.name = env, name
        self.servers = max(0, int(servers))
        self.busy = 0
        self.waiting: deque[Job] = deque()
        self._n_cancelled_waiting = 0

    def __len__(self) -> int:
        """Jobs waiting (not yet started), excluding cancelled ones."""
        return len(self.waiting) - self._n_cancelled_waiting

    def submit(self, service_days: float) -> Job:
        job = Job(self.env, service_days, self)
        if self.busy < self.servers and not self.waiting:
            self._start(job)
        else:
            self.waiting.append(job)
        return job

    def cancel(self, job: Job) -> None:
        """Withdraw a job; its ``done`` event fires now with value ``False``."""
        if job.cancelled or job.done.triggered:
            return
        job.cancelled = True
        if job.started_at < 0:
            self._n_cancelled_waiting += 1
            job.done.succeed(False)
        # a job already in service keeps its server until the work ends

    def set_servers(self, servers: int) -> None:
        self.servers = max(0, int(servers))
        self._fill()

    def _start(self, job: Job) -> None:
        """Occupy a server; ``done`` itself is scheduled for the end of the work, so one
        SimPy event covers the whole service (like ``simpy.Timeout``)."""
        self.busy += 1
        job.started_at = self.env.now
        done = job.done
        done._ok, done._value = True, True
        done.callbacks.append(self._finish)
        self.env.schedule(done, delay=job.service_days)

    def _finish(self, _done: simpy.Event) -> None:
        self.busy -= 1
        self._fill()

    def _fill(self) -> None:
        waiting = self.waiting
        while waiting and self.busy < self.servers:
            job = waiting.popleft()
            if job.cancelled:
                self._n_cancelled_waiting -= 1
                continue
            self._start(job)


class SlotPool:
    """A pool of ``capacity`` places (beds, guardian caseload) held for a while, FIFO waiters.

    ``try_take`` never waits (used with overflow to another placement type); ``take`` returns
    an event that fires when a place is free.
    """

    def __init__(self, env: simpy.Environment, capacity: int, name: str = "") -> None:
        self.env, self.name = env, name
        self.capacity = max(0, int(capacity))
        self.in_use = 0
        self.waiting: deque[tuple[simpy.Event, Callable[[], bool]]] = deque()

    def try_take(self) -> bool:
        if self.in_use < self.capacity:
            self.in_use += 1
            return True
        return False

    def take(self, still_wanted: Callable[[], bool] = lambda: True) -> simpy.Event:
        """Event that fires (value True) when a place is taken for the caller."""
        event = simpy.Event(self.env)
        if self.in_use < self.capacity and not self.waiting:
            self.in_use += 1
            event.succeed(True)
        else:
            self.waiting.append((event, still_wanted))
        return event

    def give_back(self) -> None:
        self.in_use -= 1
        self._fill()

    def set_capacity(self, capacity: int) -> None:
        self.capacity = max(0, int(capacity))
        self._fill()

    def _fill(self) -> None:
        while self.waiting and self.in_use < self.capacity:
            event, still_wanted = self.waiting.popleft()
            if still_wanted():
                self.in_use += 1
                event.succeed(True)
            else:
                event.succeed(False)
