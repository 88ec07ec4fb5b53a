"""Stage 5: reconsideration of a negative RG or CG decision.

A child (or their representative) who would ask for reconsideration
(``reconsideration.p_request_*``, times ``legal_aid.reconsideration_request_ratio`` with legal
advice) needs time to gather evidence (exponential, mean ``mean_days_to_prepare``). The
request counts only if it is made within the window in force on the decision date
(``policy.reconsideration_window_days``: about three months before Feb 2024, 30 days after),
so a shorter window means fewer requests. A request is decided after ``mean_days_to_decide``
days and overturns the negative decision with ``p_overturned`` under the Feb 2024 policy
(published for 2024) or ``p_overturned_pre_2024`` before it (``policy.reconsideration_policy``
on the reconsideration decision date: the published 2024 rate is a share of 2024 decisions).

Parameters: group ``reconsideration``; ``policy.reconsideration_window_days``,
``policy.reconsideration_policy``; ``legal_aid.reconsideration_request_ratio``.
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
    from model.params import Params
    from model.simulation import NRMModel

RECONSIDERATION_SLOTS = 8


def p_request(p: Params, child: Child, decision_type: str) -> float:
    r = p.reconsideration
    base = r.p_request_rg if decision_type == "rg" else r.p_request_cg
    if child.legal_advice:
        base *= p.legal_aid.reconsideration_request_ratio
    return min(base, 1.0)


def p_overturned(p: Params) -> float:
    r = p.reconsideration
    return (
        r.p_overturned
        if p.policy.reconsideration_policy == "feb_2024"
        else (r.p_overturned_pre_2024)
    )


def review(
    model: NRMModel, child: Child, decision_type: str
) -> Generator[simpy.Event, Any, bool | None]:
    """After a negative ``decision_type`` ('rg' or 'cg') decision: True if overturned,
    False if not requested or upheld, None if the case closed meanwhile."""
    p = model.params.reconsideration
    u = model.row(Stream.RECONSIDERATION, child)
    episode = child.episode
    k = 0 if decision_type == "rg" else 4
    window = model.params.policy.reconsideration_window_days
    prepare = -p.mean_days_to_prepare * math.log1p(-u[k + 1])
    if u[k] >= p_request(model.params, child, decision_type) or prepare > window:
        return False
    model.set_state(child, "awaiting_reconsideration")
    yield model.env.timeout(prepare)
    if not model.active(child, episode):
        return None
    model.record(child, Event.RECONSIDERATION_REQUESTED, -1, decision_type)
    p = model.params.reconsideration
    yield model.env.timeout(-p.mean_days_to_decide * math.log1p(-u[k + 2]))
    if not model.active(child, episode):
        return None
    # the overturn rate in force on the decision date: the published 2024 rate is a share of
    # the decisions made in 2024, whenever the request was made
    overturned = u[k + 3] < p_overturned(model.params)
    model.record(child, Event.RECONSIDERATION_DECIDED, overturned, decision_type)
    return overturned
