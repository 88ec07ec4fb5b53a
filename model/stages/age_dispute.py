"""Stage 6b: age-disputed children, treated as adults on arrival until a local authority
assesses their age.

At a child's first referral, a separated, irregularly arrived non-UK child aged 15-17 is
age-disputed with ``age_dispute.p_disputed`` (an assumption: no count of age-disputed NRM
referrals is published). The local authority assesses them an exponential
``mean_days_in_adult_settings`` days later and finds a child with ``p_found_child`` (FOI
figures: 63% in 2022, 57% in early 2023; the Home Office says half).

Until the assessment the child is housed as an adult (adult asylum accommodation or
detention): not looked after (``care.start`` waits for the assessment), excluded from the
devolved pilot (its guidance excludes age-disputed young people), and re-trafficked at the
community hazard times ``retrafficking_hazard_ratio_adult_settings`` (an assumption, null 1).
A child found to be a child is then looked after as any other; one found to be an adult stays
in adult settings until 18. Missing episodes from adult accommodation are not modelled (they
are not missing from care).

Under ``policy.age_benefit_of_doubt`` (the ``age_assessment_safeguards`` lever) a disputed
child is placed in care pending the assessment; one found to be an adult leaves care at the
assessment for adult settings until 18. The assessment itself (its timing and outcome) is the
same draw either way.

Events: ``age_disputed`` (detail: ``adult_settings`` or ``care_pending_assessment``),
``age_assessed`` (positive: found to be a child; value: days since the referral),
``adult_settings_entered`` and ``adult_settings_left``.

Parameters: group ``age_dispute``; ``policy.age_benefit_of_doubt``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

AGE_DISPUTE_SLOTS = 4  # 0 disputed, 1 days to assessment, 2 found a child; 3 reserved
MIN_AGE_YEARS = 15.0  # disputes concern young people close to 18 (the 15-17 band)


def draw(model: NRMModel, child: Child) -> None:
    """At the first referral, before the route is chosen: is the child's age disputed?"""
    p = model.params.age_dispute
    eligible = (
        child.arrived_irregularly
        and not child.has_parental_responsibility
        and child.nationality_group != "uk"
        and child.age_years >= MIN_AGE_YEARS
    )
    if not eligible or p.p_disputed <= 0.0:
        return
    u = model.row(Stream.AGE_DISPUTE, child)
    if u[0] >= p.p_disputed:
        return
    child.age_disputed = True
    child.age_assessed_at = model.env.now - p.mean_days_in_adult_settings * math.log1p(-u[1])
    child.found_child = u[2] < p.p_found_child
    child.in_adult_settings = not model.params.policy.age_benefit_of_doubt


def start(model: NRMModel, child: Child) -> None:
    """After the referral is recorded: log the dispute and schedule the assessment."""
    if not child.age_disputed:
        return
    where = "adult_settings" if child.in_adult_settings else "care_pending_assessment"
    model.record(child, Event.AGE_DISPUTED, -1, where)
    if child.in_adult_settings:
        model.record(child, Event.ADULT_SETTINGS_ENTERED)
    if child.age_assessed_at < min(model.end_day, child.day18):
        delay = child.age_assessed_at - model.env.now
        model.env.timeout(delay).callbacks.append(lambda _ev: assess(model, child))
    elif child.in_adult_settings and child.day18 < model.end_day:
        leave_at_18(model, child)


def assess(model: NRMModel, child: Child) -> None:
    """The local authority's age assessment."""
    if child.left_model or child.removed:
        return
    model.record(
        child, Event.AGE_ASSESSED, child.found_child, "", model.env.now - child.episode_starts[0]
    )
    if child.found_child:
        if child.in_adult_settings:
            child.in_adult_settings = False
            model.record(child, Event.ADULT_SETTINGS_LEFT, -1, "found_child")
            model.update_hazards(child)
            if not child.exploited:  # a child re-exploited meanwhile is not there to place
                from model.stages import care

                care.start(model, child)
        return
    if not child.in_adult_settings:  # placed pending assessment: the placement ends now
        child.in_adult_settings = True
        model.record(child, Event.ADULT_SETTINGS_ENTERED, -1, "found_adult")
        model.update_hazards(child)
    if child.day18 < model.end_day:
        leave_at_18(model, child)


def leave_at_18(model: NRMModel, child: Child) -> None:
    """A young person housed as an adult is an adult at 18: the adult-settings spell ends."""

    def end(_ev: object) -> None:
        if child.in_adult_settings and not child.left_model:
            child.in_adult_settings = False
            model.record(child, Event.ADULT_SETTINGS_LEFT, -1, "turned_18")
            model.update_hazards(child)

    model.env.timeout(max(0.0, child.day18 - model.env.now)).callbacks.append(end)


def placement_end(child: Child) -> float:
    """Day a placement made pending assessment must end (the child found to be an adult), or
    infinity."""
    if child.age_disputed and not child.found_child:
        return child.age_assessed_at
    return math.inf


def hazard_ratio(model: NRMModel, child: Child) -> float:
    """Re-trafficking hazard multiplier of a child housed as an adult (1 otherwise)."""
    if child.in_adult_settings and not child.adult:
        return model.params.age_dispute.retrafficking_hazard_ratio_adult_settings
    return 1.0
