"""Policy options share the status quo's history: simulate it once, branch at the policy date.

Every option a comparison or a sweep runs against the status quo has the same parameters, the
same seed and the same timeline up to the day its policy starts (2025-04-01 for the levers
shipped), and with common random numbers the same children and draws: its first 12 of 15
simulated years are the status quo's, event for event. So a group of runs that differ only
after some day is run as one: the first scenario runs to the earliest day where another
differs, the process forks (``os.fork``: the child is an exact copy of the paused model, SimPy
generators included), the copy goes on as the other scenario (``NRMModel.branch``) and sends
back its result, and the first scenario goes on to the next branch day and to its end.

Results are those of separate runs, byte for byte (``tests/test_branching.py``); only the
time changes. Branching needs ``os.fork`` (Linux, macOS) and is used in local runs (serial or
a process pool); elsewhere, and on Dask workers, every run is simulated from the start.
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from model.calendar import Calendar

if TYPE_CHECKING:
    from model.scenario import Scenario
    from model.simulation import NRMModel

# set NRMSIM_NO_BRANCHING=1 to simulate every run from the start (same results, slower)
ENABLED = hasattr(os, "fork") and os.environ.get("NRMSIM_NO_BRANCHING", "") in ("", "0")


def divergence_day(base: Scenario, other: Scenario) -> float | None:
    """The first simulation day on which ``other`` can differ from ``base``; ``None`` if the
    two cannot share a history (another seed, start, end or day-0 parameters, or a
    difference from the start).

    The day is that of the first timeline entry (in date order) where the two timelines
    differ; if they never differ, the end of the run (the runs are the same).
    """
    if (
        base.seed != other.seed
        or base.sim_start != other.sim_start
        or base.end != other.end
        or base.initial_params() != other.initial_params()
    ):
        return None
    a, b = base.future_timeline(), other.future_timeline()
    calendar = Calendar(base.sim_start)
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x is None or y is None or x.date != y.date or dict(x.changes) != dict(y.changes):
            day = calendar.day(min(e.date for e in (x, y) if e is not None))
            return day if day > 0.0 else None
    return calendar.day(base.end) + 1.0


def plan(scenarios: Sequence[Scenario]) -> list[tuple[int, float | None]]:
    """For each scenario after the first: (index, day it branches from the first) in the
    order of those days; ``None`` for one that shares nothing (run on its own)."""
    base = scenarios[0]
    days = [(i, divergence_day(base, s)) for i, s in enumerate(scenarios) if i > 0]
    return sorted(days, key=lambda item: (item[1] is None, item[1] or 0.0, item[0]))


def run_branched(
    model: NRMModel,
    branches: Sequence[tuple[float, Scenario, Callable[[NRMModel], Any]]],
    finish: Callable[[NRMModel], Any],
) -> list[Any]:
    """Run ``model`` to each branch's day in turn; there, fork a copy that goes on as the
    branch's scenario and returns the branch's ``finish(copy)``; then run ``model`` to its
    end. Returns the branches' results in the order given, then ``finish(model)``.

    ``branches`` must be sorted by day. A copy that fails raises here with its error.
    """
    out: list[Any] = []
    for day, scenario, finish_branch in branches:
        model.run(pause_at=day)
        t0 = time.perf_counter()
        out.append(_in_fork(functools.partial(_go_on, model, scenario, finish_branch)))
        model.branches_wall_s += time.perf_counter() - t0
    model.run()
    out.append(finish(model))
    return out


def _go_on(model: NRMModel, scenario: Scenario, finish: Callable[[NRMModel], Any]) -> Any:
    model.branched_wall_s = time.perf_counter()
    model.branch(scenario)
    model.run()
    return finish(model)


def _in_fork(fn: Callable[[], Any]) -> Any:
    """``fn()`` computed in a forked copy of this process; its result comes back pickled
    through a pipe (data this code made, never read from a file)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: compute, send, and leave without running any cleanup
        os.close(read_fd)
        status = 0
        try:
            payload = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as error:  # sent back to the parent, which raises
            payload = pickle.dumps((False, f"{type(error).__name__}: {error}"))
            status = 1
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError(f"a branched run ended without a result (wait status {status})")
    ok, value = pickle.loads(payload)
    if not ok:
        raise RuntimeError(f"a branched run failed: {value}")
    return value
