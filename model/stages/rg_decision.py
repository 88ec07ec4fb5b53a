"""Stage 2: the Reasonable Grounds (RG) decision, by the Home Office or a devolved panel.

Route: a child whose local authority is in the devolved pilot on the referral date, who is
more than ``devolved_pilot.exclusion_days_before_18`` days from 18 and not being considered
for public-order disqualification, goes to the local panel; everyone else to the Home Office
Single Competent Authority. Both are finite-capacity queues, so waits emerge.

Under the Jan-Jul 2023 "objective evidence" test a Home Office case cannot be decided until
``rg_decision.extra_days_objective_evidence`` days after referral (first responders were
asked for more evidence); it holds no decision-maker meanwhile.

The evidence standard in force on the *decision* date (``policy.decision_regime``:
``pre_nba`` before 30 Jan 2023, ``nba_objective`` to Jul 2023, ``nba_amended`` after) sets
the probability of a positive decision.

Parameters: groups ``rg_decision``, ``devolved_pilot``, ``policy.decision_regime``.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.rng import Stream
from model.stages import wait_for_decision

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

HOME_OFFICE, DEVOLVED_PILOT = 1, 2
RG_SLOTS = 4


def servers_for(capacity_per_year: float, mean_work_days: float) -> int:
    """Case workers needed for a throughput: Little's law, capacity x time in service."""
    return (
        max(1, round(capacity_per_year * mean_work_days / 365.25)) if capacity_per_year > 0 else 0
    )


def choose_route(model: NRMModel, child: Child) -> int:
    pilot = model.params.devolved_pilot
    if not model.local_authorities.in_pilot(child.local_authority, pilot.la_count):
        return HOME_OFFICE
    if child.day18 - model.env.now <= pilot.exclusion_days_before_18:
        return HOME_OFFICE
    if child.criminalised and model.params.policy.pod_policy in ("s63_original", "s63_revised"):
        return HOME_OFFICE  # children considered for disqualification are excluded
    return DEVOLVED_PILOT


def p_positive_rg(model: NRMModel, child: Child) -> float:
    """Probability of a positive RG under the regime in force now, for this route."""
    if child.route == DEVOLVED_PILOT:
        return model.params.devolved_pilot.p_rg_positive
    p = model.params.rg_decision
    regime = model.params.policy.decision_regime
    if regime == "pre_nba":
        return p.p_positive_pre_nba
    if regime == "nba_amended":
        odds = p.p_positive_nba / (1.0 - p.p_positive_nba) * p.nba_amended_odds_ratio
        return odds / (1.0 + odds)
    return p.p_positive_nba


def decide(model: NRMModel, child: Child) -> Generator[simpy.Event, Any, bool | None]:
    """Queue for a decision-maker, then decide. Returns None if the case closed meanwhile."""
    u = model.row(Stream.RG, child)
    if child.route == DEVOLVED_PILOT:
        mean_days = model.params.devolved_pilot.mean_work_days
        queue = model.pilot_queue
    else:
        p = model.params.rg_decision
        mean_days = p.mean_work_days
        queue = model.rg_queue
        if model.params.policy.decision_regime == "nba_objective":
            episode = child.episode  # waiting for evidence, not for a decision-maker
            yield model.env.timeout(p.extra_days_objective_evidence)
            if not model.active(child, episode):
                return None
    if not (yield from wait_for_decision(model, child, queue, -mean_days * math.log1p(-u[0]))):
        return None
    positive = u[1] < p_positive_rg(model, child)
    model.record(child, Event.RG_DECIDED, positive, model.params.policy.decision_regime)
    return positive
