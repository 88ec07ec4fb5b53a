"""Stage 4: recovery period and the Conclusive Grounds (CG) decision.

After a positive RG comes the recovery period (``cg_decision.min_recovery_days``: 45 days
until 12 Dec 2022, 30 from 13 Dec 2022; ``min_recovery_days_scotland`` for Scottish cases),
then the case joins the CG queue. Home Office capacity for child cases is finite
(``capacity_per_year`` from the published series, or ``capacity_after_2025`` once
``after_published_years`` is set, times ``capacity_multiplier`` and ``1 +
added_capacity_share``; while the series is an assumption rather than a published count,
before 2021, also times ``capacity_scale_unpublished``, fitted to the published waits), so
waits and the backlog emerge from the queue.

The CG standard in force on the decision date (``policy.cg_regime``) sets the probability of
a positive decision; it is kept apart from the RG test because the cause of the 2023 fall in
CG positives is not published. A devolved panel often takes the CG with the RG
(``devolved_pilot.p_cg_same_meeting``): decided ``mean_days_to_panel_cg`` days on average
after the RG (exponential: the police and local-authority reports, the next monthly meeting;
an assumption ranging from 0, the CG at the RG meeting itself, to six months), otherwise
after the recovery period in the panel queue; it decides with the Home Office probability
times ``devolved_pilot.cg_odds_ratio`` on the odds.

Parameters: groups ``cg_decision``, ``devolved_pilot``; ``policy.cg_regime``.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.rng import Stream
from model.stages import wait_for_decision
from model.stages.rg_decision import DEVOLVED_PILOT, expit, logit, panel_work_days, servers_for

if TYPE_CHECKING:
    from model.agents import Child
    from model.params import Params
    from model.simulation import NRMModel

CG_SLOTS = 6  # 0 work time, 1 decision, 2 same meeting, 3 second work draw, 4 panel delay


def capacity_per_year(p: Params) -> float:
    """Home Office CG decisions a year available for child cases."""
    c = p.cg_decision
    base = c.capacity_after_2025 if c.after_published_years else c.capacity_per_year
    if not c.capacity_published:
        base *= c.capacity_scale_unpublished
    return base * c.capacity_multiplier * (1.0 + c.added_capacity_share)


def servers_for_cg(capacity: float, p: Params) -> int:
    return servers_for(capacity, p.cg_decision.mean_work_days)


def recovery_days(p: Params, child: Child) -> float:
    c = p.cg_decision
    return c.min_recovery_days_scotland if child.nation == "scotland" else c.min_recovery_days


def p_positive(p: Params, panel: bool) -> float:
    c = p.cg_decision
    base = c.p_positive_pre_nba if p.policy.cg_regime == "pre_nba" else c.p_positive_nba
    if not panel:
        return base
    return expit(logit(base) + math.log(p.devolved_pilot.cg_odds_ratio))


def decide(model: NRMModel, child: Child) -> Generator[simpy.Event, Any, bool | None]:
    """Recovery period, queue, decision. Returns None if the case closed meanwhile."""
    u = model.row(Stream.CG, child)
    panel = child.route == DEVOLVED_PILOT
    episode = child.episode
    if panel and u[2] < model.params.devolved_pilot.p_cg_same_meeting:
        # taken with the RG: decided once the reports are in and the panel meets again
        delay = -model.params.devolved_pilot.mean_days_to_panel_cg * math.log1p(-u[4])
        if delay > 0.0:
            model.set_state(child, "awaiting_cg")
            yield model.env.timeout(delay)  # holds no decision-maker
            if not model.active(child, episode):
                return None
        positive = u[1] < p_positive(model.params, True)
        model.record(child, Event.CG_DECIDED, positive, model.params.policy.cg_regime)
        return positive
    model.set_state(child, "awaiting_cg")  # includes the recovery period
    yield model.env.timeout(recovery_days(model.params, child))  # holds no decision-maker
    if not model.active(child, episode):
        return None
    if panel:
        work, queue = panel_work_days(model, u[0], u[3]), model.pilot_queue
    else:
        work = -model.params.cg_decision.mean_work_days * math.log1p(-u[0])
        queue = model.cg_queue
    if not (yield from wait_for_decision(model, child, queue, work)):
        return None
    positive = u[1] < p_positive(model.params, panel)
    model.record(child, Event.CG_DECIDED, positive, model.params.policy.cg_regime)
    return positive
