"""Stage 5: reconsideration of a negative RG or CG decision.

A child (or their representative) who would ask for reconsideration
(``reconsideration.p_request_*``) needs time to gather evidence
(exponential, mean ``reconsideration.mean_days_to_prepare``). The request counts only if it
is made within the window in force on the decision date (``policy.reconsideration_window_days``:
about three months before Feb 2024, 30 days after), so a shorter window means fewer requests.
A request is decided after ``reconsideration.mean_days_to_decide`` days and overturns the
negative decision with ``reconsideration.p_overturned``.

Parameters: group ``reconsideration``; ``policy.reconsideration_window_days``.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

RECONSIDERATION_SLOTS = 8


def review(
    model: NRMModel, child: Child, decision_type: str
) -> Generator[simpy.Event, Any, bool | None]:
    """After a negative ``decision_type`` ('rg' or 'cg') decision: True if overturned,
    False if not requested or upheld, None if the case closed meanwhile."""
    p = model.params.reconsideration
    u = model.row(Stream.RECONSIDERATION, child)
    episode = child.episode
    k = 0 if decision_type == "rg" else 4
    p_request = p.p_request_rg if decision_type == "rg" else p.p_request_cg
    window = model.params.policy.reconsideration_window_days
    prepare = -p.mean_days_to_prepare * math.log1p(-u[k + 1])
    if u[k] >= p_request or prepare > window:
        return False
    model.set_state(child, "awaiting_reconsideration")
    yield model.env.timeout(prepare)
    if not model.active(child, episode):
        return None
    model.record(child, Event.RECONSIDERATION_REQUESTED, -1, decision_type)
    p = model.params.reconsideration  # the rules in force on the request date
    yield model.env.timeout(-p.mean_days_to_decide * math.log1p(-u[k + 2]))
    if not model.active(child, episode):
        return None
    overturned = u[k + 3] < model.params.reconsideration.p_overturned
    model.record(child, Event.RECONSIDERATION_DECIDED, overturned, decision_type)
    return overturned
