"""Stage 8: justice. Children criminalised for what they were exploited into; traffickers
investigated, charged and convicted.

A child exploited into crime may already have a record when referred
(``justice.p_criminalised_if_criminal``); afterwards, while under 18, they are arrested or
charged at ``criminalisation_rate_per_year``, lowered after a positive CG by the s.45
statutory defence (``confirmed_criminalisation_hazard_ratio``) and while a guardian advocates
for them (``guardianship.criminalisation_hazard_ratio_<kind>``). A record feeds public-order
disqualification. For each referral an investigation of the exploiter is opened with
``p_investigation`` after an exponential delay; it leads to a charge and a completed
prosecution with the probabilities and mean delays below.

Parameters: group ``justice``; ``guardianship.criminalisation_hazard_ratio_*``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.hazard import HazardClock
from model.rng import Stream
from model.stages import guardianship

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

JUSTICE_SLOTS = 10  # 0 record, 1 investigation, 2-6 the case, 7 criminalisation clock


def exploited_into_crime(child: Child) -> bool:
    return "criminal" in child.exploitation_types


def criminalise(model: NRMModel, child: Child) -> bool:
    """At referral: True if the child is newly found to have been criminalised."""
    if child.criminalised or not exploited_into_crime(child):
        return False
    u = model.row(Stream.JUSTICE, child)
    child.criminalised = u[0] < model.params.justice.p_criminalised_if_criminal
    return child.criminalised


def start(model: NRMModel, child: Child) -> None:
    """At referral: maybe open an investigation of the exploiter; start the child's
    criminalisation hazard (first referral of a child exploited into crime)."""
    p = model.params.justice
    u = model.row(Stream.JUSTICE, child)
    if u[1] < p.p_investigation:
        model.env.process(investigation(model, child, u))
    if child.crime_clock is None and exploited_into_crime(child) and not child.criminalised:
        child.crime_clock = HazardClock(model.env, u[7], lambda: _fire(model, child), child.day18)


def rate(model: NRMModel, child: Child) -> float:
    """Arrests or charges a year for this child now."""
    if child.criminalised or child.adult or child.removed or model.env.now >= child.day18:
        return 0.0
    p = model.params.justice
    r = p.criminalisation_rate_per_year
    if child.confirmed:
        r *= p.confirmed_criminalisation_hazard_ratio
    return r * guardianship.active_effect(model.params, child, "criminalisation_hazard_ratio")


def update(model: NRMModel, child: Child) -> None:
    if child.crime_clock is not None:
        child.crime_clock.set_rate(rate(model, child))


def _fire(model: NRMModel, child: Child) -> None:
    child.criminalised = True
    model.record(child, Event.CRIMINALISED)


def investigation(
    model: NRMModel, child: Child, u: Sequence[float]
) -> Generator[simpy.Event, Any, None]:
    """SimPy process: investigation opened -> charged -> prosecution completed (convicted)."""
    env = model.env
    yield env.timeout(-model.params.justice.mean_days_to_investigation * math.log1p(-u[2]))
    model.record(child, Event.INVESTIGATION_OPENED)
    p = model.params.justice  # each step uses the rules in force when it happens
    if u[3] >= p.p_charged:
        return
    yield env.timeout(-p.mean_days_to_charge * math.log1p(-u[4]))
    model.record(child, Event.CHARGED)
    yield env.timeout(-model.params.justice.mean_days_charge_to_outcome * math.log1p(-u[5]))
    convicted = u[6] < model.params.justice.p_convicted
    model.record(child, Event.PROSECUTION_COMPLETED, convicted)
    if convicted:
        model.record(child, Event.CONVICTED)
