"""Stage 8: justice. Children criminalised for what they were exploited into; traffickers
investigated, charged and convicted.

A child exploited into crime is criminalised (arrested or charged) with
``justice.p_criminalised_if_criminal``; the record feeds public-order disqualification.
For each referral an investigation of the exploiter is opened with
``justice.p_investigation`` after an exponential delay; it leads to a charge and a completed
prosecution with the probabilities and mean delays below.

Parameters: group ``justice``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

JUSTICE_SLOTS = 7


def criminalise(model: NRMModel, child: Child) -> bool:
    """At referral: True if the child is newly found to have been criminalised."""
    if child.criminalised or "criminal" not in child.exploitation_types:
        return False
    u = model.row(Stream.JUSTICE, child)
    child.criminalised = u[0] < model.params.justice.p_criminalised_if_criminal
    return child.criminalised


def start(model: NRMModel, child: Child) -> None:
    """At referral: maybe open an investigation of the exploiter."""
    p = model.params.justice
    u = model.row(Stream.JUSTICE, child)
    if u[1] < p.p_investigation:
        model.env.process(investigation(model, child, u))


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
