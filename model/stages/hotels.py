"""Stage 6b: the Home Office hotels' population as it was (July 2021 to January 2024).

Over 5,400 unaccompanied children were housed in hotels; only 17% were referred to the NRM
(``care.hotel_share_referred``). The referred ones are NRM children placed in hotels by the
care stage; this module adds the rest: children who arrive at
``care.hotel_arrivals_per_year x (1 - hotel_share_referred)`` while hotels are in use, stay
``mean_hotel_stay_days`` on average (then a local authority takes over and they leave the
model), and meanwhile go missing at the published hotel rate (front-loaded like every
placement) and are not found with ``p_unfound_hotel``. Their rows carry ``episode = -1``: they
count in hotel figures, never in NRM metrics.

Parameters: group ``care``; ``policy.hotels_in_use``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from model.agents import UnaccompaniedChild
from model.common import DAYS_PER_YEAR
from model.events import Event
from model.hazard import time_to_event_with_early_window
from model.rng import DrawTable, Stream
from model.stages.care import hotel_long_run_rate

if TYPE_CHECKING:
    from model.simulation import NRMModel

HOTEL_SLOTS = 1 + 3 * 8  # stay, then (gap, time away, not found) for up to 8 episodes


def arrival_rate_per_year(model: NRMModel) -> float:
    p = model.params
    if not p.policy.hotels_in_use:
        return 0.0
    return p.care.hotel_arrivals_per_year * (1.0 - p.care.hotel_share_referred)


def arrivals(model: NRMModel) -> Generator[simpy.Event, Any, None]:
    """SimPy process: never-referred children placed in hotels while hotels are in use."""
    env = model.env
    rng = model.streams.rng(Stream.HOTELS)
    table = DrawTable(model.streams.seed(Stream.HOTELS, 1), HOTEL_SLOTS, block=1024)
    index = 0
    while True:
        rate = arrival_rate_per_year(model)
        if rate <= 0.0:
            yield model.params_changed
            continue
        yield env.timeout(float(rng.standard_exponential()) / rate * DAYS_PER_YEAR)
        if env.now >= model.end_day:
            return
        if arrival_rate_per_year(model) <= 0.0:
            continue  # hotels closed during the gap
        child = UnaccompaniedChild(model, index)
        child.arrived = env.now
        row: Sequence[float] = table.row(index)
        if model.audit is not None:
            row = model.audit.wrap(row, "hotel", index)
        env.process(stay(model, child, row))
        index += 1


def stay(
    model: NRMModel, child: UnaccompaniedChild, u: Sequence[float]
) -> Generator[simpy.Event, Any, None]:
    """SimPy process: one hotel stay, with missing episodes, until the local authority takes
    over, the hotels close, the child is lost, or the run ends."""
    env = model.env
    model.record(child, Event.HOTEL_ARRIVED, -1, "hotel")
    until = min(env.now - model.params.care.mean_hotel_stay_days * math.log1p(-u[0]), model.end_day)
    episode = 0
    while env.now < until:
        p = model.params.care
        if episode < 8:
            gap_u, away_u, lost_u = u[1 + 3 * episode : 4 + 3 * episode]
        else:
            gap_u, away_u, lost_u = 0.5, 0.5, 1.0  # never reached in practice (8 episodes)
        early_left = max(0.0, p.early_missing_window_days - (env.now - child.arrived))
        gap = time_to_event_with_early_window(
            hotel_long_run_rate(model.params), p.early_missing_rate_ratio, early_left, gap_u
        )
        wake = env.timeout(max(0.0, min(gap, until - env.now)))
        yield wake | model.hotels_closed
        if not wake.processed or env.now >= until:
            break
        episode += 1
        model.record(child, Event.WENT_MISSING, -1, "hotel")
        if lost_u < p.p_unfound_hotel:
            model.record(child, Event.NOT_FOUND, -1, "hotel")
            break
        away = -p.mean_missing_days * math.log1p(-away_u)
        yield env.timeout(away)
        model.record(child, Event.RETURNED, -1, "hotel", away)
    model.record(child, Event.PLACEMENT_ENDED, -1, "hotel", env.now - child.arrived)
    child.remove()
