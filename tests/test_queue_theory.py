"""DecisionQueue and SlotPool against queueing theory and hand-worked schedules.

The statistical tests drive a ``DecisionQueue`` with Poisson arrivals and exponential service
(an M/M/c queue) and compare the mean wait in queue with the Erlang-C formula. Replications
are independent (one ``numpy.random.SeedSequence`` child each, no global random state); the
tolerance is four standard errors of the mean of replication means, with no extra slack.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from model.queues import DecisionQueue, SlotPool

# --------------------------------------------------------------------------- M/M/c theory


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue W_q for M/M/c: C(c, a) / (c mu - lambda), a = lambda / mu."""
    a = lam / mu
    rho = a / c
    assert rho < 1
    tail = a**c / math.factorial(c) / (1.0 - rho)
    p_wait = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    return p_wait / (c * mu - lam)


def test_erlang_c_formula_reference_values() -> None:
    # M/M/1: W_q = rho / (mu - lambda); M/M/2 with a = 1: C = 1/3, W_q = (1/3) / (2 - 1)
    assert erlang_c_wait(0.5, 1.0, 1) == pytest.approx(1.0)
    assert erlang_c_wait(1.0, 1.0, 2) == pytest.approx(1.0 / 3.0)


def replication_mean_wait(
    lam: float, mu: float, servers: int, warmup: float, horizon: float, seed: np.random.SeedSequence
) -> float:
    """Mean wait in queue of the jobs that arrive in [warmup, horizon) of one replication."""
    rng = np.random.default_rng(seed)
    n = int(lam * horizon * 1.2) + 200
    arrivals = np.cumsum(rng.exponential(1.0 / lam, n))
    assert arrivals[-1] > horizon  # enough arrivals drawn
    arrivals = arrivals[arrivals < horizon]
    services = rng.exponential(1.0 / mu, len(arrivals))
    env = simpy.Environment()
    queue = DecisionQueue(env, servers, "mmc")
    jobs = []

    def source():
        previous = 0.0
        for t, s in zip(arrivals.tolist(), services.tolist(), strict=True):
            yield env.timeout(t - previous)
            previous = t
            jobs.append(queue.submit(s))

    env.process(source())
    env.run()  # until every job has been served
    assert all(j.done.processed for j in jobs)
    assert queue.busy == 0 and len(queue) == 0
    waits = np.array([j.started_at - j.enqueued_at for j in jobs if j.enqueued_at >= warmup])
    assert (waits >= 0).all()
    return float(waits.mean())


@pytest.mark.slow
@pytest.mark.parametrize(("rho", "entropy"), [(0.5, 20240501), (0.85, 20240502)])
def test_decision_queue_matches_erlang_c_mean_wait(rho: float, entropy: int) -> None:
    servers, mu = 3, 1.0  # mean service one time unit
    lam = rho * servers * mu
    warmup, horizon, reps = 500.0, 10_500.0, 30
    seeds = np.random.SeedSequence(entropy).spawn(reps)
    means = np.array([replication_mean_wait(lam, mu, servers, warmup, horizon, s) for s in seeds])
    expected = erlang_c_wait(lam, mu, servers)
    se = means.std(ddof=1) / math.sqrt(reps)
    assert abs(means.mean() - expected) <= 4.0 * se, (
        f"rho={rho}: simulated W_q {means.mean():.4f} vs Erlang-C {expected:.4f} "
        f"(4 SE = {4 * se:.4f})"
    )


# ----------------------------------------------------------------- DecisionQueue unit tests


def test_jobs_start_immediately_while_servers_are_free_then_fifo() -> None:
    env = simpy.Environment()
    q = DecisionQueue(env, 2)
    a, b, c, d = (q.submit(s) for s in (5.0, 3.0, 4.0, 1.0))
    assert (a.started_at, b.started_at) == (0.0, 0.0)
    assert (c.started_at, d.started_at) == (-1.0, -1.0)
    assert len(q) == 2 and q.busy == 2
    env.run()
    # b frees a server at 3 -> c (FIFO) starts; a frees one at 5 -> d starts
    assert (c.started_at, d.started_at) == (3.0, 5.0)
    assert [j.done.value for j in (a, b, c, d)] == [True] * 4


def test_cancel_waiting_job_fires_done_false_and_frees_its_place() -> None:
    env = simpy.Environment()
    q = DecisionQueue(env, 1)
    q.submit(10.0)  # occupies the only server
    b = q.submit(5.0)
    c = q.submit(5.0)
    seen: dict[str, object] = {}

    def waiter():
        seen["value"] = yield b.done
        seen["at"] = env.now

    env.process(waiter())
    env.run(until=2.0)
    assert len(q) == 2
    q.cancel(b)
    assert b.done.triggered and b.done.value is False and b.cancelled
    assert len(q) == 1
    env.run()
    assert seen == {"value": False, "at": 2.0}
    assert b.started_at == -1.0  # never served
    assert c.started_at == 10.0  # took b's place, right after a
    assert c.done.value is True and env.now == 15.0
    q.cancel(b)  # cancelling twice is harmless
    assert len(q) == 0 and q.busy == 0


def test_cancel_job_in_service_finishes_its_work_first() -> None:
    env = simpy.Environment()
    q = DecisionQueue(env, 1)
    a = q.submit(10.0)
    b = q.submit(1.0)
    env.run(until=4.0)
    q.cancel(a)
    assert not a.done.processed  # documented: not pre-empted
    finished: dict[str, object] = {}

    def waiter():
        finished["value"] = yield a.done
        finished["at"] = env.now

    env.process(waiter())
    env.run()
    assert finished == {"value": True, "at": 10.0}
    assert b.started_at == 10.0


def test_set_servers_increase_starts_waiting_jobs_at_once() -> None:
    env = simpy.Environment()
    q = DecisionQueue(env, 1)
    jobs = [q.submit(10.0) for _ in range(4)]
    env.run(until=2.0)
    q.set_servers(3)
    assert [j.started_at for j in jobs] == [0.0, 2.0, 2.0, -1.0]
    assert q.busy == 3 and len(q) == 1
    env.run()
    assert jobs[3].started_at == 10.0


def test_set_servers_decrease_takes_effect_as_servers_finish() -> None:
    env = simpy.Environment()
    q = DecisionQueue(env, 3)
    first = [q.submit(d) for d in (1.0, 2.0, 3.0)]
    later = [q.submit(1.0), q.submit(1.0)]
    q.set_servers(1)
    assert q.busy == 3  # nothing pre-empted
    env.run()
    assert [j.done.value for j in first] == [True] * 3
    # servers drop to one: the waiting jobs start only once all three have finished
    assert [j.started_at for j in later] == [3.0, 4.0]


def test_zero_servers_hold_everything_until_staffed() -> None:
    env = simpy.Environment()
    q = DecisionQueue(env, 0)
    a = q.submit(1.0)
    env.run(until=50.0)
    assert a.started_at == -1.0 and not a.done.triggered
    q.set_servers(1)
    env.run()
    assert a.started_at == 50.0 and env.now == 51.0


def test_a_job_waiting_holds_no_server_and_jobs_start_in_order() -> None:
    env = simpy.Environment()
    q = DecisionQueue(env, 1)
    env.run(until=3.0)
    a = q.submit(2.0)
    b = q.submit(1.0)
    assert q.busy == 1 and len(q) == 1
    env.run()
    assert a.started_at == 3.0 and b.started_at == 5.0 and env.now == 6.0
    assert q.busy == 0


# --------------------------------------------------------------------------- SlotPool unit tests


def test_slot_pool_take_and_give_back_fifo() -> None:
    env = simpy.Environment()
    pool = SlotPool(env, 1)
    first = pool.take()
    assert first.triggered and first.value is True and pool.in_use == 1
    order: list[str] = []

    def wait(name: str):
        yield pool.take()
        order.append(name)

    for name in ("a", "b", "c"):
        env.process(wait(name))
    env.run()
    assert order == [] and len(pool.waiting) == 3
    for _ in range(3):
        pool.give_back()
        env.run()
    assert order == ["a", "b", "c"]
    assert pool.in_use == 1


def test_slot_pool_skips_waiters_no_longer_wanting_a_place() -> None:
    env = simpy.Environment()
    pool = SlotPool(env, 1)
    assert pool.try_take()
    gone = pool.take(lambda: False)
    kept = pool.take(lambda: True)
    pool.give_back()
    assert gone.triggered and gone.value is False
    assert kept.triggered and kept.value is True
    assert pool.in_use == 1


def test_slot_pool_try_take_respects_capacity_and_set_capacity_serves_waiters() -> None:
    env = simpy.Environment()
    pool = SlotPool(env, 2)
    assert pool.try_take() and pool.try_take()
    assert not pool.try_take()
    waiter = pool.take()
    assert not waiter.triggered
    pool.set_capacity(3)
    assert waiter.triggered and pool.in_use == 3
    pool.set_capacity(0)
    assert not pool.try_take()
    late = pool.take()
    for _ in range(3):
        pool.give_back()
    assert not late.triggered and pool.in_use == 0
