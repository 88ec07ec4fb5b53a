"""Stage 3: public-order disqualification (s.63 Nationality and Borders Act 2022).

Applied when an RG decision is positive. Under the policy in force on that date
(``policy.pod_policy``: none, s63_original from 31 Jan 2023, paused from 26 Jul 2023,
s63_revised from 8 Jan 2024) a child with a criminal record for an exploitation-related
offence may be disqualified from protection. If ``policy.ima_in_force`` (Illegal Migration
Act 2023 s.29, not commenced in the historical run), the cohort widens to children who
arrived irregularly.

Parameters: group ``disqualification``; ``policy.pod_policy``, ``policy.ima_in_force``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel


def applies(model: NRMModel, child: Child) -> bool:
    """Decide and log disqualification at a positive RG; True if the child is disqualified."""
    policy = model.params.policy
    p = model.params.disqualification
    u = model.row(Stream.DISQUALIFICATION, child)
    prob = 0.0
    if child.criminalised and policy.pod_policy == "s63_original":
        prob = p.p_if_criminalised_original
    elif child.criminalised and policy.pod_policy == "s63_revised":
        prob = p.p_if_criminalised_revised
    if policy.ima_in_force and child.nationality_group != "uk" and child.exploited_overseas:
        prob = 1.0 - (1.0 - prob) * (1.0 - p.p_ima_irregular_arrival)
    if u[0] < prob:
        model.record(child, Event.DISQUALIFIED, -1, policy.pod_policy)
        model.close_episode(child, "disqualified")
        return True
    return False
