"""A referral episode: the SimPy process that carries one child through the NRM.

Order of stages (each in its own module under ``model/stages``):
identification -> RG decision (Home Office or devolved panel) -> public-order
disqualification -> reconsideration of a negative RG -> recovery period and CG decision ->
reconsideration of a negative CG -> immigration leave. Care, guardianship, justice,
transition at 18 and re-trafficking run beside it, started at referral.

Simultaneous events follow SimPy's scheduling order; nothing here depends on it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.stages import cg_decision, disqualification, leave, reconsideration, rg_decision

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel


def referral_episode(model: NRMModel, child: Child) -> Generator[simpy.Event, Any, None]:
    """From referral to the episode's last decision (or until it closes some other way)."""
    episode = child.episode
    positive = yield from rg_decision.decide(model, child)
    if positive is None:
        return
    if positive and disqualification.applies(model, child):
        return
    if not positive:
        positive = yield from reconsideration.review(model, child, "rg")
        if positive is None or not model.active(child, episode):
            return
        if not positive:
            model.close_episode(child, "not_confirmed")
            return
        if disqualification.applies(model, child):  # an overturned RG is positive too
            return
    positive = yield from cg_decision.decide(model, child)
    if positive is None:
        return
    if not positive:
        positive = yield from reconsideration.review(model, child, "cg")
        if positive is None or not model.active(child, episode):
            return
    model.close_episode(child, "confirmed" if positive else "not_confirmed")
    if positive:
        leave.consider(model, child)
