"""Stage 6: local-authority care, placement moves, going missing, and Home Office hotels.

A child with no one holding parental responsibility is looked after
(``care.p_placed_separated``); a child with a parent or carer sometimes is
(``p_placed_with_parental_responsibility``). The placement type depends on age and policy:
Home Office hotels for separated non-UK children while ``policy.hotels_in_use`` (Jul 2021 to
Jan 2024; a stay of ``mean_hotel_stay_days``, then a local-authority placement); supported
accommodation for 16-17s only while ``policy.unregulated_accommodation``; under the Illegal
Migration Act a share of separated irregular arrivals is housed by the Home Office outside
care (``ima.p_home_office_accommodation``; hotel rates). Places are finite (``capacity_*``):
a full type overflows to the next in ``OVERFLOW``; if none is free the child waits.

Going missing is a hazard that is front-loaded: ``early_missing_rate_ratio`` times the
long-run rate for the first ``early_missing_window_days`` of each placement or move (many go
within 48 hours), then the long-run rate: ``missing_rate_foster`` times the placement type's
ratio, times ``missing_prone_rate_ratio`` for the missing-prone minority (which is what makes
7.2 episodes per missing child), times the guardian's effect while supported. Hotels have
their published rate. An episode lasts ``mean_missing_days`` on average; with
``p_unfound_per_episode`` (hotels: ``p_unfound_hotel``) the child is not found: long-term
missing, exploited again (a ``re_trafficked`` event, reason ``missing``), and may be
identified and referred again later. Moves happen at ``moves_per_year`` and restart the early
hazard. Parameters are read again at each step, so timeline changes apply to children already
placed; a guardian starting or ending mid-gap takes effect from the next step.

Parameters: group ``care``; ``policy.hotels_in_use``, ``policy.unregulated_accommodation``,
``policy.ima_in_force``; ``ima.p_home_office_accommodation``;
``guardianship.missing_hazard_ratio_*``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from model.calendar import DAYS_PER_YEAR
from model.events import Event
from model.hazard import time_to_event_with_early_window
from model.params import PLACEMENT_TYPES, Share
from model.rng import Stream
from model.stages import age_dispute, guardianship

if TYPE_CHECKING:
    from model.agents import Child
    from model.params import Params
    from model.simulation import NRMModel

OVERFLOW = ("foster", "childrens_home", "supported_accommodation")
CARE_SLOTS = 8  # 0 placed, 1 hotel, 2 type, 3 stay with a parent, 4 prone, 5 IMA, 6 hotel stay
PRONE_SLOT = 4  # read once per child, at the first referral (a trait, not a per-stay draw)
STEP_DRAWS = 5  # per step of a stay: missing gap, time away, not found, move gap, new type
MISSING_SLOTS = 20 * STEP_DRAWS  # the first 20 steps of a stay; later steps: a private stream
__all__ = ["MISSING_SLOTS", "PLACEMENT_TYPES", "draw_traits", "give_up_waiting", "start"]


def draw_traits(model: NRMModel, child: Child) -> None:
    """At the first referral: the child's missing-prone uniform. Being in the missing-prone
    minority belongs to the child, so every stay (whichever referral starts it) compares the
    same draw with ``missing_prone_share`` in force."""
    child.missing_prone_u = model.row(Stream.CARE, child)[PRONE_SLOT]


def start(model: NRMModel, child: Child) -> None:
    """At referral: decide whether the child is (already) looked after and start the stay."""
    if child.in_care or child.seeking_placement or model.env.now >= child.day18:
        return
    if child.in_adult_settings:  # age-disputed: looked after only once found to be a child
        return
    p = model.params.care
    u = model.row(Stream.CARE, child)
    p_placed = (
        p.p_placed_with_parental_responsibility
        if child.has_parental_responsibility
        else p.p_placed_separated
    )
    if u[0] >= p_placed:
        return
    child.seeking_placement = True
    child.care_wait = object()  # this stay's wait (see give_up_waiting)
    missing = model.row(Stream.MISSING, child)
    model.env.process(placement(model, child, u, missing, child.n_referrals))


def give_up_waiting(child: Child) -> None:
    """A child waiting for a place who is re-trafficked is not there to be placed: the wait
    ends (a place that frees later goes to the next child waiting), and a later referral
    starts a stay of its own, with its own draws."""
    child.seeking_placement = False
    child.care_wait = None


def age_mix(p: Params, age: float) -> Share:
    """Placement types by age in force; no supported accommodation when it is not allowed."""
    mix = p.care.type_16_17 if age >= 16 else p.care.type_under_16
    if p.policy.unregulated_accommodation or mix["supported_accommodation"] == 0.0:
        return mix
    kept = {k: v for k, v in mix.as_dict().items() if k != "supported_accommodation"}
    kept["supported_accommodation"] = 0.0
    return Share.of(kept)


def home_office_accommodation(model: NRMModel, child: Child, u: Sequence[float]) -> bool:
    """IMA: a separated irregular arrival housed by the Home Office outside care."""
    p = model.params
    return (
        p.policy.ima_in_force
        and child.arrived_irregularly
        and not child.has_parental_responsibility
        and u[5] < p.ima.p_home_office_accommodation
    )


def choose_type(model: NRMModel, child: Child, u: Sequence[float]) -> str:
    p = model.params
    separated_non_uk = not child.has_parental_responsibility and child.nationality_group != "uk"
    if p.policy.hotels_in_use and separated_non_uk and u[1] < p.care.p_hotel_if_separated_non_uk:
        return "hotel"
    return age_mix(p, child.age_at(model.env.now)).pick(u[2])


def missing_rate(model: NRMModel, child: Child, kind: str, prone: bool) -> float:
    """Long-run missing episodes a year in this placement (before the early multiplier)."""
    p = model.params.care
    if kind == "hotel":
        rate = hotel_long_run_rate(model.params)
    else:
        rate = p.missing_rate_foster * (p.missing_prone_rate_ratio if prone else 1.0)
        if kind != "foster":
            rate *= getattr(p, f"missing_rate_ratio_{kind}")
    if child.guardian_active:
        rate *= guardianship.effect(model.params, child.guardian_kind, "missing_hazard_ratio")
    return rate


def hotel_long_run_rate(p: Params) -> float:
    """The long-run hotel missing rate such that, with the early window, the average over a
    mean hotel stay is the published ``missing_rate_hotel``."""
    c = p.care
    stay = c.mean_hotel_stay_days
    boost = stay + min(c.early_missing_window_days, stay) * (c.early_missing_rate_ratio - 1.0)
    return c.missing_rate_hotel * stay / boost


def placement(
    model: NRMModel,
    child: Child,
    u: Sequence[float],
    draws: Sequence[float],
    referral: int,
) -> Generator[simpy.Event, Any, None]:
    """SimPy process: one stay in care from its start to its end (18, return home, or lost
    while missing), with moves and missing episodes on the way. ``u`` (care) and ``draws``
    (missing episodes, ``STEP_DRAWS`` a step) are the uniforms of the referral (number
    ``referral`` of the child) that started the stay."""
    env = model.env
    ho = home_office_accommodation(model, child, u)
    wait = child.care_wait
    kind = yield from _take_place(model, child, u, ho)
    if child.care_wait is wait:  # not given up (a later referral's wait is not this one)
        child.seeking_placement, child.care_wait = False, None
    if not kind:
        return
    end = min(child.day18, model.end_day, age_dispute.placement_end(child))
    if child.has_parental_responsibility:
        stay = model.params.care.mean_stay_days_with_parental_responsibility
        end = min(end, env.now - stay * math.log1p(-u[3]))
    child.in_care, child.placement_type = True, kind
    model.counts["in_care"] += 1
    model.record(child, Event.PLACED, -1, kind)
    model.update_hazards(child)
    prone = child.missing_prone_u < model.params.care.missing_prone_share
    started = placed_at = env.now
    hotel_until = math.inf
    if kind == "hotel" and not ho:
        hotel_until = env.now - model.params.care.mean_hotel_stay_days * math.log1p(-u[6])
    step = 0
    lost = False
    while env.now < end:
        p = model.params.care
        in_hotel = kind == "hotel" and not ho
        if in_hotel and (not model.params.policy.hotels_in_use or env.now >= hotel_until):
            kind = _move(model, child, kind, u[2], True, ho, env.now - placed_at)
            placed_at = env.now
            started, hotel_until, in_hotel = env.now, math.inf, False
        if step < MISSING_SLOTS // STEP_DRAWS:
            m: Sequence[float] = draws[STEP_DRAWS * step : STEP_DRAWS * (step + 1)]
        else:  # rare: a long stay with many episodes; fresh draws for (child, stay, step)
            m = model.fresh(Stream.MISSING, STEP_DRAWS, 3, child.index, referral, step)
        step += 1
        rate = missing_rate(model, child, kind, prone)
        early_left = max(0.0, p.early_missing_window_days - (env.now - started))
        gap = time_to_event_with_early_window(rate, p.early_missing_rate_ratio, early_left, m[0])
        move_gap = math.inf
        if kind != "hotel" and p.moves_per_year > 0:
            move_gap = -math.log1p(-m[3]) / p.moves_per_year * DAYS_PER_YEAR
        limit = min(end, hotel_until) - env.now
        first = min(gap, move_gap, limit)
        wake = env.timeout(max(0.0, first))
        if in_hotel:
            yield wake | model.hotels_closed
            if not wake.processed:
                continue  # hotels closed: move at the top of the loop
        else:
            yield wake
        if first == limit:
            continue  # the stay or the hotel stay is over (the loop checks which)
        if first == move_gap:
            kind = _move(model, child, kind, m[4], False, ho, env.now - placed_at)
            placed_at = env.now
            started = env.now
            continue
        model.record(child, Event.WENT_MISSING, -1, kind)
        if m[2] < (p.p_unfound_hotel if kind == "hotel" else p.p_unfound_per_episode):
            model.record(child, Event.NOT_FOUND, -1, kind)
            lost = True
            break
        child.missing = True
        # an episode of going missing *from care* ends when care does (at 18 at the latest)
        away = min(-p.mean_missing_days * math.log1p(-m[1]), max(0.0, end - env.now))
        yield env.timeout(away)
        child.missing = False
        model.record(child, Event.RETURNED, -1, kind, away)
    _leave(model, child, kind, ho, env.now - placed_at, lost)


def _take_place(
    model: NRMModel, child: Child, u: Sequence[float], ho: bool
) -> Generator[simpy.Event, Any, str]:
    """SimPy sub-process: the stay's placement type once the child has a place: a hotel for
    Home Office accommodation (``ho``: outside local-authority care and capacity), else the
    type wanted, a free overflow type, or the type wanted after waiting for a place; '' if
    the child turned 18 still waiting."""
    if ho:
        model.counts["home_office_accommodation"] += 1
        return "hotel"
    wanted = choose_type(model, child, u)
    kind = wanted if model.placements[wanted].try_take() else _overflow(model, child)
    if kind:
        return kind
    wait = child.care_wait

    def still_wanted() -> bool:  # under 18 and not given up (re-trafficked meanwhile)
        return model.env.now < child.day18 and child.care_wait is wait

    if wanted == "hotel":
        open_ = [True]  # the hotel wait, until hotels close
        taken = model.placements["hotel"].take(lambda: open_[0] and still_wanted())
        yield taken | model.hotels_closed
        if taken.triggered:
            return "hotel" if taken.value else ""
        open_[0] = False
        if not still_wanted():
            return ""
        # hotels closed while the child waited: a local-authority placement by age instead
        wanted = age_mix(model.params, child.age_at(model.env.now)).pick(u[2])
        kind = wanted if model.placements[wanted].try_take() else _overflow(model, child)
        if kind:
            return kind
    got = yield model.placements[wanted].take(still_wanted)
    return wanted if got else ""


def _leave(model: NRMModel, child: Child, kind: str, ho: bool, stayed: float, lost: bool) -> None:
    """End a stay of ``stayed`` days in ``kind``: free the place, record the end, and if the
    child was lost while missing, mark them long-term missing and exploited again."""
    if ho:
        model.counts["home_office_accommodation"] -= 1
    else:
        model.placements[kind].give_back()
    model.counts["in_care"] -= 1
    child.in_care = False
    model.record(child, Event.PLACEMENT_ENDED, -1, kind, stayed)
    if lost:
        child.missing_long_term = True
        model.re_trafficked(child, "missing")
    else:
        model.update_hazards(child)


def _overflow(model: NRMModel, child: Child, exclude: str = "") -> str:
    """A free place in the overflow order (supported accommodation only from 16, and only
    while it is allowed), or ''."""
    age = child.age_at(model.env.now)
    allowed = model.params.policy.unregulated_accommodation
    for alt in OVERFLOW:
        if alt == exclude:
            continue
        if alt == "supported_accommodation" and (age < 16 or not allowed):
            continue
        if model.placements[alt].try_take():
            return alt
    return ""


def _move(
    model: NRMModel, child: Child, kind: str, u: float, forced: bool, ho: bool, days: float
) -> str:
    """Move to another placement chosen by age. A forced move (out of a hotel) is placed over
    capacity if every type is full (an emergency placement); an unforced move with no free
    place is a move to another placement of the same type."""
    wanted = age_mix(model.params, child.age_at(model.env.now)).pick(u)
    if wanted == "hotel":
        wanted = "foster"
    old = kind
    if wanted == old:
        new = old  # same type, another carer or home: the place count is unchanged
    elif model.placements[wanted].try_take():
        new = wanted
    else:
        new = _overflow(model, child, exclude=old)
        if not new:
            if forced:
                new = wanted
                model.placements[new].in_use += 1  # over capacity
            else:
                new = old
    if new != old and not ho:
        model.placements[old].give_back()
    model.record(child, Event.PLACEMENT_ENDED, -1, old, days)
    model.record(child, Event.PLACEMENT_MOVED, -1, new)
    model.record(child, Event.PLACED, -1, new)
    child.placement_type = new
    return new
