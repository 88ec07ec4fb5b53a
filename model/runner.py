"""Run replicates: ``run_one`` is a pure function of (scenario, replicate); ``run_many``
runs a list of them serially, in a local process pool, or on a Dask cluster, and returns
results in replicate order whatever the number of workers. ``execute`` is the one executor
under it, and under ``nrmsim sweep``: it maps a picklable function over work items in any
of those three ways, yielding results as they finish.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from typing import Any

import pandas as pd

from model import branching
from model import rules as decision_rules
from model.results import GROUP_BYS, Analysis, summary
from model.scenario import Scenario
from model.simulation import NRMModel, children_frame


@dataclass(frozen=True)
class RunSpec:
    """One replicate of one scenario. The scenario carries its own seed."""

    scenario: Scenario
    replicate: int
    keep_events: bool = False
    group_bys: tuple[str, ...] = GROUP_BYS
    metrics: tuple[str, ...] | None = None  # None: every metric; else only these rows
    # optional: a table derived from (events, children, scenario) in the process that ran the
    # replicate, so callers get what they need from the event log without shipping the log
    derive: Callable[[pd.DataFrame, pd.DataFrame, Scenario], pd.DataFrame] | None = None
    # replacement decision rules (``model.rules``): code, so set here, never in a scenario file
    rules: Mapping[str, decision_rules.Rule] | None = None


@dataclass
class RunResult:
    scenario: str
    replicate: int
    summary: pd.DataFrame
    periods: pd.DataFrame
    events: pd.DataFrame | None = None
    children: pd.DataFrame | None = None
    timing: dict[str, float] = field(default_factory=dict)
    derived: pd.DataFrame | None = None  # RunSpec.derive's table, if asked for


# imported once by the fork server, so that its workers start without importing the engine
FORKSERVER_PRELOAD = ["model.runner", "model.calibration", "model.sweeps.execute"]


def pool_context() -> BaseContext:
    """Process start method for the local pools: fork, unless this process runs threads.

    Forking a process that runs other threads (a progress bar's refresh thread, a Dask
    client's event loop, pytest-xdist's I/O) can deadlock the child, and Python warns about it
    (DeprecationWarning; 3.14 stops forking by default). Then the pool uses a fork server: a
    single-threaded process started once, with the engine preloaded, that forks the workers.
    Otherwise plain fork, which needs no ``if __name__ == "__main__"`` guard, so it works
    from notebooks, scripts and standard input. A script that calls ``run_many`` with workers
    while threads run needs the guard (the fork server's workers import the main script again,
    as with spawn), and a ``RunSpec.derive`` must then be importable (defined in a module, not
    in ``__main__``); the ``nrmsim`` command, ``python -m model`` and pytest need nothing.
    Off Linux, spawn. Runs are pure functions of their spec, so the start method does not
    change results.
    """
    methods = get_all_start_methods()
    if not sys.platform.startswith("linux"):
        return get_context("spawn")
    if threading.active_count() <= 1 and "fork" in methods:
        return get_context("fork")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Freeze set-up objects and keep the cyclic collector off while a run allocates heavily.

    SimPy runs allocate many short-lived events, freed by reference counting; what stays
    alive (agents, the event log) is not garbage, so a collection walks it for nothing. With
    a threshold of a million objects, the historical replicate still paid two young-generation
    collections of about 0.7 s each that found 30 objects between them (one of them on leaving
    this block); so the collector is off for the run, and back on, as it was, afterwards.
    """
    old = gc.get_threshold()
    enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        # freeze what the run allocated first: it resets the young generation's count, so
        # turning the collector back on does not start a collection of the whole run at once;
        # unfreezing then hands everything to the oldest generation
        gc.freeze()
        if enabled:
            gc.enable()
        gc.set_threshold(*old)
        gc.unfreeze()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the collector off the objects alive now (the finished model: its agents, SimPy
    objects and the event log) while the analysis allocates. Without it, each full collection
    the analysis triggers walks the whole model again (the children table alone took about
    five times longer). No collection is run first; the objects are unfrozen afterwards."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def simulate(
    scenario: Scenario, replicate: int, rules: Mapping[str, decision_rules.Rule] | None = None
) -> NRMModel:
    """Build and run the model for one replicate; return it for inspection (notebooks).
    ``rules`` replaces decision rules (``model.rules``)."""
    with fewer_collections():
        model = NRMModel(scenario, replicate, rules=rules)
        model.run()
    return model


def analyse(model: NRMModel) -> tuple[Analysis, pd.DataFrame, pd.DataFrame]:
    events = model.log.to_frame()
    children = children_frame(model)
    return Analysis(events, children, model.end_day), events, children


def run_one(spec: RunSpec) -> RunResult:
    """Same spec in, same result out, in any process on any machine."""
    t0 = time.perf_counter()
    model = simulate(spec.scenario, spec.replicate, spec.rules)
    return _result(spec, model, time.perf_counter() - t0)


def _result(spec: RunSpec, model: NRMModel, simulate_s: float) -> RunResult:
    """The result of a finished run: its summary, the periods and what the spec asks for."""
    t1 = time.perf_counter()
    with frozen_heap():
        analysis, events, children = analyse(model)
        sc = spec.scenario
        table = summary(analysis, sc.sim_start, sc.start, sc.end, spec.group_bys, spec.metrics)
        table.insert(0, "replicate", spec.replicate)
        table.insert(0, "scenario", sc.name)
        custom = decision_rules.label(spec.rules)
        if custom:  # a run with a replacement rule says so in every row
            table.insert(2, "rules", custom)
        periods = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        t2 = time.perf_counter()
        n_referrals = float((events["event"] == "referred").sum())
        derived = spec.derive(events, children, sc) if spec.derive is not None else None
    if spec.keep_events:
        start = pd.Timestamp(sc.sim_start)
        days = pd.to_timedelta(events["t_days"].to_numpy() // 1, unit="D")
        events.insert(1, "date", (start + days).date)
        events.insert(0, "replicate", spec.replicate)
        children.insert(0, "replicate", spec.replicate)
    return RunResult(
        spec.scenario.name,
        spec.replicate,
        table,
        periods,
        events if spec.keep_events else None,
        children if spec.keep_events else None,
        {
            "simulate_s": simulate_s,
            "analyse_s": t2 - t1,
            "referrals": n_referrals,
        },
        derived,
    )


def run_group(specs: Sequence[RunSpec]) -> list[RunResult]:
    """Runs of one replicate, with the history they share simulated once: the first spec
    runs from the start and each other spec branches from it on the day its scenario first
    differs (``model.branching``); a spec that shares nothing runs on its own. Results equal
    ``[run_one(s) for s in specs]``, byte for byte, in that order. In a process that runs
    threads (which must not fork), every spec runs on its own; ``run_many`` avoids that by
    running groups in a pool."""
    if len(specs) == 1 or not branching.ENABLED or threading.active_count() > 1:
        return [run_one(s) for s in specs]
    plan = branching.plan([s.scenario for s in specs])
    alone = [i for i, day in plan if day is None]
    shared = [(i, day) for i, day in plan if day is not None]
    results: dict[int, RunResult] = {i: run_one(specs[i]) for i in alone}
    if shared:
        t0 = time.perf_counter()

        def finish(i: int) -> Callable[[NRMModel], RunResult]:
            # the branch's own simulation time: from the branch day to its end
            return lambda m: _result(specs[i], m, time.perf_counter() - m.branched_wall_s)

        with fewer_collections():
            model = NRMModel(specs[0].scenario, specs[0].replicate, rules=specs[0].rules)
            branches = [(day, specs[i].scenario, finish(i)) for i, day in shared]
            done = branching.run_branched(
                model,
                branches,
                lambda m: _result(specs[0], m, time.perf_counter() - t0 - m.branches_wall_s),
            )
        for (i, day), result in zip(shared, done, strict=False):
            result.timing["branched_at_day"] = day
            results[i] = result
        results[0] = done[-1]
    return [results[i] for i in range(len(specs))]


def groups_of(specs: Sequence[RunSpec]) -> list[list[int]]:
    """Indices of ``specs`` in groups that can share a history (same replicate, the
    package's own rules, scenarios that differ only after some day), each in the order given;
    one group per spec when branching is off."""
    if not branching.ENABLED:
        return [[i] for i in range(len(specs))]
    groups: list[list[int]] = []
    for i, spec in enumerate(specs):
        for group in groups:
            first = specs[group[0]]
            if (
                first.replicate == spec.replicate
                and first.rules is None  # a replaced rule may live only in this process
                and spec.rules is None
                and branching.divergence_day(first.scenario, spec.scenario) is not None
            ):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def execute[T, R](
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    mode: str = "serial",
    workers: int = 1,
    scheduler: str | None = None,
) -> Iterator[tuple[int, R]]:
    """Apply ``fn`` to each item; yield (position of the item, result) as each finishes.

    The package's one executor: ``run_many`` and ``nrmsim sweep`` both map their work
    through it. Items are drawn lazily, at most two per worker ahead of the results handled,
    so a caller may change what the next item holds from the results seen (the sweep's
    adaptive chunks). Results arrive in completion order; callers that need the given order
    put them back by position. ``fn`` and the items must pickle for the pools.

    Args:
        mode: "serial" (in this process, in order), "processes" (a local pool of
            ``workers``, even for one: see ``pool_context``) or "dask" (dask.distributed).
        workers: pool processes, or Dask workers of the local cluster started when
            ``scheduler`` is None.
        scheduler: address of a running Dask scheduler (mode "dask").
    """
    numbered = enumerate(items)
    if mode == "serial":
        for i, item in numbered:
            yield i, fn(item)
    elif mode == "processes":
        yield from _execute_pool(fn, numbered, max(1, workers))
    elif mode == "dask":
        yield from _execute_dask(fn, numbered, workers, scheduler)
    else:
        raise ValueError(f"unknown mode {mode!r}: serial, processes or dask")


def _execute_pool[T, R](
    fn: Callable[[T], R], numbered: Iterator[tuple[int, T]], workers: int
) -> Iterator[tuple[int, R]]:
    """``execute`` on a local process pool, keeping ``2 * workers`` items submitted."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
        pending: dict[Future[R], int] = {}
        try:
            for i, item in numbered:
                pending[pool.submit(fn, item)] = i
                while len(pending) >= 2 * workers:
                    yield from _finished(pending)
            while pending:
                yield from _finished(pending)
        except BaseException:  # an error, Ctrl-C or a caller that stopped: drop queued items
            for future in pending:
                future.cancel()
            raise


def _finished[R](pending: dict[Future[R], int]) -> Iterator[tuple[int, R]]:
    """Wait for at least one pending future; remove and yield the finished ones."""
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        yield pending.pop(future), future.result()


def _execute_dask[T, R](
    fn: Callable[[T], R],
    numbered: Iterator[tuple[int, T]],
    workers: int,
    scheduler: str | None,
) -> Iterator[tuple[int, R]]:
    """``execute`` on a Dask cluster (a local one of ``workers`` processes when no
    ``scheduler``), keeping two items submitted per worker thread."""
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(scheduler or cluster, set_as_default=False)
    try:
        window = 2 * max(1, sum(client.nthreads().values()))
        position: dict[Any, int] = {}  # by future key

        def submit(i: int, item: T) -> Any:
            future = client.submit(fn, item, pure=False)
            position[future.key] = i
            return future

        queue = dask_completed(
            [submit(i, item) for i, item in islice(numbered, window)], loop=client.loop
        )
        for future in queue:
            result = future.result()
            future.release()
            yield position.pop(future.key), result
            for i, item in islice(numbered, 1):  # drawn after the caller saw the result
                queue.add(submit(i, item))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_many(
    specs: Sequence[RunSpec],
    workers: int = 1,
    backend: str = "processes",
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[RunResult]:
    """Run specs and return results in the order given.

    Args:
        workers: processes (local pool) or Dask workers (local cluster); 1 = in this process.
        backend: "processes" (local pool, the default) or "dask" (dask.distributed).
        scheduler: address of a running Dask scheduler; None starts a local cluster.
        progress: called with the number of finished runs after each one.
    """
    tick = progress or (lambda _n: None)
    if (backend == "dask" or (workers > 1 and len(specs) > 1)) and specs:
        for spec in specs:  # fail before any run if a rule cannot reach a worker
            decision_rules.check_for_workers(spec.rules)
    if backend == "dask":  # Dask workers run threads, so they never branch: one spec a group
        groups, mode = [[i] for i in range(len(specs))], "dask"
    else:
        groups = groups_of(specs)
        shares = any(len(g) > 1 for g in groups)
        # a pool when asked for, and in a process running threads even for one worker: a run
        # that branches forks, and only a single-threaded process may
        serial = (workers <= 1 or len(groups) <= 1) and not (
            shares and threading.active_count() > 1
        )
        mode = "serial" if serial else "processes"
    results: dict[int, RunResult] = {}
    work = ([specs[i] for i in g] for g in groups)
    for g, done in execute(run_group, work, mode=mode, workers=workers, scheduler=scheduler):
        for i, result in zip(groups[g], done, strict=True):
            results[i] = result
        tick(len(results))
    return [results[i] for i in range(len(specs))]


def run_with_progress(
    specs: Sequence[RunSpec],
    *,
    label: str,
    workers: int = 1,
    quiet: bool = False,
    backend: str = "processes",
    scheduler: str | None = None,
) -> list[RunResult]:
    """``run_many`` with a progress bar (runs done) on standard error, titled ``label``; no
    bar when ``quiet`` or for a single run."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: worker processes are forked after this
    bar = tqdm(
        total=len(specs),
        desc=label,
        unit="run",
        disable=quiet or len(specs) == 1,
        file=sys.stderr,
    )
    results = run_many(
        specs,
        workers=workers,
        backend=backend,
        scheduler=scheduler,
        progress=lambda n: bar.update(n - bar.n),
    )
    bar.close()
    return results
