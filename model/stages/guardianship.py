"""Stage 7: guardianship.

England and Wales: Independent Child Trafficking Guardians (ICTGs) in covered local
authorities (``guardianship.ictg_coverage_share`` of England-and-Wales LAs, in a fixed
rollout order). A child with no one holding parental responsibility gets a direct ICTG,
limited by the direct caseload (``guardianship.ictg_direct_caseload``: children at once,
first come first served); a child with a parent or carer gets indirect support from a
Regional Practice Coordinator (``guardianship.ictg_indirect_support``, from Oct 2018).
Scotland: Guardianship Scotland for separated children;
Northern Ireland: the Independent Guardian Service for separated children.

Direct support lasts to 18 plus ``guardianship.post18_support_days`` (the Post-18 worker),
capped at ``guardianship.max_support_days`` (18 months before May 2021).

Parameters: group ``guardianship``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

GUARDIANSHIP_SLOTS = 2


def start(model: NRMModel, child: Child) -> None:
    """At referral: refer to the guardian service that covers the child, if any."""
    if child.guardian_kind:
        return  # already has a guardian from an earlier episode
    p = model.params.guardianship
    u = model.row(Stream.GUARDIANSHIP, child)
    separated = not child.has_parental_responsibility
    if child.nation in ("england", "wales"):
        if not model.local_authorities.ictg_covered(child.local_authority, p.ictg_coverage_share):
            return
        if u[0] >= p.p_referred_to_ictg:
            return
        if separated:
            child.guardian_kind = "awaiting_ictg_direct"  # until a caseload place is free
            model.env.process(direct_ictg(model, child))
        elif p.ictg_indirect_support:
            child.guardian_kind = "ictg_indirect"
            model.record(child, Event.GUARDIAN_ALLOCATED, -1, "ictg_indirect", 0.0)
    elif separated and child.nation == "scotland" and p.scotland_service:
        child.guardian_kind = "scottish_guardianship"
        model.record(child, Event.GUARDIAN_ALLOCATED, -1, "scottish_guardianship", 0.0)
    elif separated and child.nation == "northern_ireland" and p.northern_ireland_service:
        child.guardian_kind = "ni_independent_guardian"
        model.record(child, Event.GUARDIAN_ALLOCATED, -1, "ni_independent_guardian", 0.0)


def direct_ictg(model: NRMModel, child: Child) -> Generator[simpy.Event, Any, None]:
    """SimPy process: wait for a place on a direct caseload, support, then release it."""
    env = model.env
    asked = env.now
    got = yield model.ictg_direct.take(lambda: env.now < child.day18)
    if not got:
        child.guardian_kind = ""  # turned 18 before a place was free
        return
    child.guardian_kind = "ictg_direct"
    child.ictg_active = True
    model.counts["ictg_direct"] += 1
    model.record(child, Event.GUARDIAN_ALLOCATED, -1, "ictg_direct", env.now - asked)
    p = model.params.guardianship  # the rules in force when support starts
    until = min(child.day18 + p.post18_support_days, env.now + p.max_support_days)
    yield env.timeout(max(0.0, until - env.now))
    child.ictg_active = False
    model.record(child, Event.GUARDIAN_ENDED, -1, "ictg_direct", env.now - asked)
    model.counts["ictg_direct"] -= 1
    model.ictg_direct.give_back()
