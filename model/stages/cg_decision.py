"""Stage 4: recovery period and the Conclusive Grounds (CG) decision.

After a positive RG comes the recovery period (``cg_decision.min_recovery_days``), then the
case joins the CG queue. Home Office CG capacity
(``cg_decision.capacity_per_year``, decisions a year for child cases, changed on the timeline)
is finite, so waiting times and the backlog emerge from the queue. In the devolved pilot the
panel often decides CG at the same meeting as RG (``devolved_pilot.p_cg_same_meeting``).

Parameters: groups ``cg_decision``, ``devolved_pilot``; ``policy.decision_regime``.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.rng import Stream
from model.stages import wait_for_decision
from model.stages.rg_decision import DEVOLVED_PILOT

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

CG_SLOTS = 3


def p_positive_cg(model: NRMModel, child: Child) -> float:
    if child.route == DEVOLVED_PILOT:
        return model.params.devolved_pilot.p_cg_positive
    p = model.params.cg_decision
    return (
        p.p_positive_pre_nba
        if model.params.policy.decision_regime == "pre_nba"
        else p.p_positive_nba
    )


def decide(model: NRMModel, child: Child) -> Generator[simpy.Event, Any, bool | None]:
    """Recovery period, queue, decision. Returns None if the case closed meanwhile."""
    u = model.row(Stream.CG, child)
    pilot = child.route == DEVOLVED_PILOT
    if pilot and u[2] < model.params.devolved_pilot.p_cg_same_meeting:
        positive = u[1] < p_positive_cg(model, child)
        model.record(child, Event.CG_DECIDED, positive, model.params.policy.decision_regime)
        return positive
    model.set_state(child, "awaiting_cg")  # includes the recovery period
    episode = child.episode
    yield model.env.timeout(model.params.cg_decision.min_recovery_days)  # holds no decision-maker
    if not model.active(child, episode):
        return None
    if pilot:
        mean_days, queue = model.params.devolved_pilot.mean_work_days, model.pilot_queue
    else:
        mean_days, queue = model.params.cg_decision.mean_work_days, model.cg_queue
    if not (yield from wait_for_decision(model, child, queue, -mean_days * math.log1p(-u[0]))):
        return None
    positive = u[1] < p_positive_cg(model, child)
    model.record(child, Event.CG_DECIDED, positive, model.params.policy.decision_regime)
    return positive
