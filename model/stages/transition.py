"""Stage 10a: turning 18, and life after 18.

Every referred child turns 18 in the model and is followed for ``transition.followup_years``
more (``followup_ended`` closes the record). On the 18th birthday of a child whose case is
open, the young person must consent to continue as an adult: they withdraw
(``p_withdrawn``) or the case is suspended for lack of consent (``p_suspended``), with the
odds of dropping out lowered by a guardian who supported them up to 18
(``guardianship.dropout_at_18_odds_ratio_<kind>``) and by valid leave
(``leave.dropout_at_18_odds_ratio``). Of those who continue, ``p_msvcc_referral`` are referred
to adult support (the MSVCC; odds raised by post-18 ICTG support and valid leave) and
``p_msvcc_supported_if_referred`` of them receive it for ``msvcc_support_days``. Under the
Illegal Migration Act, an irregular arrival without valid leave is removed at 18 with
``ima.p_removed_at_18`` and leaves the model. Birthdays and follow-up ends are handled at the
first midnight after them.

Parameters: group ``transition``; ``guardianship``, ``leave`` and ``ima`` effects.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.common import DAYS_PER_YEAR, prob_from_odds
from model.common import odds as odds_of
from model.events import Event
from model.rng import Stream
from model.stages import guardianship, leave

if TYPE_CHECKING:
    from model.agents import Child
    from model.params import Params
    from model.simulation import NRMModel

TRANSITION_SLOTS = 6  # 0 drop out, 1 withdraw or suspend, 2-3 MSVCC, 4 IMA removal


def followup_days(p: Params) -> float:
    return p.transition.followup_years * DAYS_PER_YEAR


def schedule(model: NRMModel, child: Child) -> None:
    """At first referral: file the child under the first midnight after their 18th birthday
    and after the end of their follow-up."""
    for day, bucket in ((child.day18, model.birthdays), (child.followup_end, model.followup_ends)):
        key = math.ceil(day)
        if key < model.end_day:
            bucket.setdefault(key, []).append(child)


def daily(model: NRMModel) -> Generator[simpy.Event, Any, None]:
    """SimPy process: each midnight, birthdays and follow-up ends of the day before.

    One event a day instead of one per child keeps the event list short; a birthday is
    handled at most a day late.
    """
    env = model.env
    while True:
        yield env.timeout(1.0)
        today = round(env.now)
        for child in model.birthdays.pop(today, ()):
            turn_18(model, child)
        for child in model.followup_ends.pop(today, ()):
            end_followup(model, child)


def guardian_at_18(child: Child) -> bool:
    """Was a guardian supporting the child up to the 18th birthday?"""
    return (
        child.guardian_kind in guardianship.SUFFIX
        and child.guardian_token > 0
        and (child.guardian_active or child.guardian_until >= child.day18 - 1e-9)
    )


def turn_18(model: NRMModel, child: Child) -> None:
    if child.left_model:
        return
    child.adult = True
    p = model.params
    u = model.row(Stream.TRANSITION, child)
    has_leave = leave.valid(model, child)
    if (
        p.policy.ima_in_force
        and child.arrived_irregularly
        and not has_leave
        and u[4] < p.ima.p_removed_at_18
    ):
        if child.is_open:  # turned 18 still waiting, whatever follows (here: removal)
            model.record(child, Event.TURNED_18)
        remove(model, child)
        return
    if child.is_open:
        model.record(child, Event.TURNED_18)
        t = p.transition
        odds = odds_of(min(t.p_withdrawn + t.p_suspended, 1.0 - 1e-12))
        if guardian_at_18(child):
            odds *= guardianship.effect(p, child.guardian_kind, "dropout_at_18_odds_ratio")
        if has_leave:
            odds *= p.leave.dropout_at_18_odds_ratio
        if u[0] < prob_from_odds(odds):
            share_withdrawn = t.p_withdrawn / (t.p_withdrawn + t.p_suspended)
            if u[1] < share_withdrawn:
                model.record(child, Event.WITHDRAWN, -1, "at_18")
                model.close_episode(child, "withdrawn")
            else:
                model.record(child, Event.SUSPENDED, -1, "no_consent_at_18")
                model.close_episode(child, "suspended")
        else:
            model.record(child, Event.CONTINUED_AS_ADULT)
            msvcc(model, child, u[2], u[3], has_leave)
    guardianship.at_18(model, child)
    model.update_hazards(child)


def msvcc(model: NRMModel, child: Child, u_refer: float, u_support: float, has_leave: bool) -> None:
    """Referral to adult support (MSVCC) of a young adult who stays in the NRM."""
    p = model.params
    odds = odds_of(p.transition.p_msvcc_referral)
    if guardianship.post18_support_active(child):
        odds *= p.guardianship.msvcc_referral_odds_ratio_post18
    if has_leave:
        odds *= p.leave.msvcc_support_odds_ratio
    if u_refer >= prob_from_odds(odds):
        return
    model.record(child, Event.MSVCC_REFERRED)
    if u_support >= p.transition.p_msvcc_supported_if_referred:
        return
    days = min(p.transition.msvcc_support_days, child.followup_end - model.env.now)
    model.record(child, Event.MSVCC_SUPPORTED, -1, "", days)
    child.msvcc_until = model.env.now + days
    if child.msvcc_until < model.end_day:
        model.env.timeout(days).callbacks.append(lambda _ev: model.update_hazards(child))


def remove(model: NRMModel, child: Child) -> None:
    """Illegal Migration Act: removed from the UK at 18; the child leaves the model."""
    child.removed = True
    model.record(child, Event.REMOVED_AT_18)
    if child.is_open:
        model.record(child, Event.WITHDRAWN, -1, "removed_at_18")
        model.close_episode(child, "withdrawn")
    child.followup_end = model.env.now
    end_followup(model, child)


def end_followup(model: NRMModel, child: Child) -> None:
    """The end of the child's follow-up: nothing more is recorded for them."""
    if child.left_model:
        return
    child.left_model = True
    if child.is_open:
        model.close_episode(child, "followup_ended")
    guardianship.end_now(model, child)
    model.record(child, Event.FOLLOWUP_ENDED)
    child.followup_end = min(child.followup_end, model.env.now)
    model.update_hazards(child)
