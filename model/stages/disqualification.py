"""Stage 3: public-order disqualification (s.63 Nationality and Borders Act 2022; s.29 IMA).

Under the policy in force (``policy.pod_policy``: none, s63_original from 31 Jan 2023, paused
from 26 Jul 2023, s63_revised from 8 Jan 2024) a criminalised child whose record brings them
into the cohort (``disqualification.p_considered_if_criminalised``) is *considered* for
disqualification: such children are excluded from the devolved pilot. At a positive RG a
considered child is disqualified with the probability of the policy in force. If the Illegal
Migration Act is in force (``policy.ima_in_force``) the cohort widens to children who arrived
irregularly (``disqualification.p_ima_irregular_arrival``).

Parameters: group ``disqualification``; ``policy.pod_policy``, ``policy.ima_in_force``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

DISQUALIFICATION_SLOTS = 4  # 0 considered, 1 disqualified; 2-3 reserved
ACTIVE = ("s63_original", "s63_revised")


def considered(model: NRMModel, child: Child) -> bool:
    """Is the child being considered for disqualification under the policy in force now?"""
    if not child.criminalised or model.params.policy.pod_policy not in ACTIVE:
        return False
    u = model.row(Stream.DISQUALIFICATION, child)
    return u[0] < model.params.disqualification.p_considered_if_criminalised


def p_disqualified(model: NRMModel, child: Child) -> float:
    """Chance that a child with a positive RG is disqualified under the rules in force now: the
    policy's rate for a considered child, widened under the IMA for an irregular arrival (either
    route disqualifies)."""
    policy = model.params.policy
    p = model.params.disqualification
    prob = 0.0
    if considered(model, child):
        prob = (
            p.p_if_considered_original
            if policy.pod_policy == "s63_original"
            else (p.p_if_considered_revised)
        )
    if policy.ima_in_force and child.arrived_irregularly:
        prob = 1.0 - (1.0 - prob) * (1.0 - p.p_ima_irregular_arrival)
    return prob


def applies(model: NRMModel, child: Child) -> bool:
    """Decide and log disqualification at a positive RG; True if the child is disqualified."""
    u = model.row(Stream.DISQUALIFICATION, child)
    if u[1] < p_disqualified(model, child):
        model.record(child, Event.DISQUALIFIED, -1, model.params.policy.pod_policy)
        model.close_episode(child, "disqualified")
        return True
    return False
