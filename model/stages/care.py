"""Stage 6: local-authority care placement, going missing, and return.

A child with no one holding parental responsibility is looked after
(``care.p_placed_separated``); a child with a parent or carer sometimes is
(``care.p_placed_with_parental_responsibility``). The placement type depends on age and on
whether Home Office hotels are in use (``policy.hotels_in_use``, Jul 2021 to Jan 2024, for
separated non-UK children). Places are finite (``care.capacity_*``): a full type overflows
to the next in ``OVERFLOW``; if none is free the child waits for the chosen type.

While placed, a child goes missing at a rate per year that depends on the placement type,
on a missing-prone propensity (a minority account for most episodes) and on direct ICTG
support. A missing child may be re-trafficked; otherwise they return.

Parameters: group ``care``; ``policy.hotels_in_use``; ``guardianship.missing_hazard_ratio_direct``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from model.calendar import DAYS_PER_YEAR
from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

PLACEMENT_TYPES = ("foster", "childrens_home", "supported_accommodation", "secure", "hotel")
OVERFLOW = ("foster", "childrens_home", "supported_accommodation")
CARE_SLOTS = 6
MISSING_SLOTS = 48  # three draws for each of the first 16 missing episodes


def start(model: NRMModel, child: Child) -> None:
    """At referral: decide whether the child is (already) looked after and start the stay."""
    if child.in_care or child.seeking_placement:
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
    model.env.process(placement(model, child, u))


def choose_type(model: NRMModel, child: Child, u: Sequence[float]) -> str:
    p = model.params.care
    separated_non_uk = not child.has_parental_responsibility and child.nationality_group != "uk"
    if (
        model.params.policy.hotels_in_use
        and separated_non_uk
        and u[1] < p.p_hotel_if_separated_non_uk
    ):
        return "hotel"
    age = 18.0 - (child.day18 - model.env.now) / DAYS_PER_YEAR
    mix = p.type_16_17 if age >= 16 else p.type_under_16
    return mix.pick(u[2])


def placement(
    model: NRMModel, child: Child, u: Sequence[float]
) -> Generator[simpy.Event, Any, None]:
    """SimPy process: one placement from start to its end (18, return home, or lost).

    Parameters are read again at each step, so timeline changes apply to children already
    placed. When Home Office hotels close, children in them move to another placement.
    """
    env = model.env
    wanted = choose_type(model, child, u)
    kind = wanted if model.placements[wanted].try_take() else _overflow(model, child)
    if not kind:
        got = yield model.placements[wanted].take(lambda: env.now < child.day18)
        if not got:
            child.seeking_placement = False
            return
        kind = wanted
    child.seeking_placement = False
    end = child.day18
    if child.has_parental_responsibility:
        stay = model.params.care.mean_stay_days_with_parental_responsibility
        end = min(end, env.now - stay * math.log1p(-u[3]))
    end = min(end, model.end_day)
    child.in_care, child.placement_type = True, kind
    model.counts["in_care"] += 1
    model.record(child, Event.PLACED, -1, kind)
    started = env.now
    prone = u[4] < model.params.care.missing_prone_share
    episode = 0
    extra: np.random.Generator | None = None
    episode_draws = model.row(Stream.MISSING, child)
    while True:
        p = model.params.care
        if kind == "hotel" and not model.params.policy.hotels_in_use:
            model.placements[kind].give_back()
            model.record(child, Event.PLACEMENT_ENDED, -1, kind, env.now - started)
            kind = _move_out_of_hotel(model, child, u)
            child.placement_type, started = kind, env.now
            model.record(child, Event.PLACED, -1, kind)
        rate = getattr(p, f"missing_rate_{kind}") * (p.missing_prone_rate_ratio if prone else 1.0)
        if child.ictg_active:
            rate *= model.params.guardianship.missing_hazard_ratio_direct
        if episode < MISSING_SLOTS // 3:
            m = episode_draws[3 * episode : 3 * episode + 3]
        else:  # rare: more than 16 episodes; a private stream for this child
            if extra is None:
                extra = np.random.default_rng(
                    model.streams.seed(Stream.MISSING, child.r, child.episode)
                )
            m = extra.random(3).tolist()
        gap = -math.log1p(-m[0]) / (rate / DAYS_PER_YEAR) if rate > 0 else math.inf
        away = -p.mean_missing_days * math.log1p(-m[1])
        if kind == "hotel":  # wake early if hotels close
            until = env.timeout(max(0.0, min(gap, end - env.now)))
            yield until | model.hotels_closed
            if not until.processed:
                continue  # hotels closed: move at the top of the loop
            if env.now >= end:
                break
            went_at = env.now
            yield env.timeout(away)
        else:
            if env.now + gap >= end:
                yield env.timeout(max(0.0, end - env.now))
                break
            # one SimPy event per episode: wake on return and log the start retrospectively,
            # with the referral episode current when the child went missing
            went_at = env.now + gap
            yield env.timeout(gap + away)
        episode += 1
        model.record_at(
            went_at, child, Event.WENT_MISSING, -1, kind, episode=child.episode_at(went_at)
        )
        if m[2] < p.p_re_trafficked_per_missing_episode:
            model.re_trafficked(child, "missing")  # not found: the placement ends
            break
        model.record(child, Event.RETURNED, -1, kind, away)
        if env.now >= end:
            break
    model.placements[kind].give_back()
    model.counts["in_care"] -= 1
    child.in_care = False
    model.record(child, Event.PLACEMENT_ENDED, -1, kind, env.now - started)


def _overflow(model: NRMModel, child: Child) -> str:
    """A free place in the overflow order (supported accommodation only from 16), or ''."""
    age = 18.0 - (child.day18 - model.env.now) / DAYS_PER_YEAR
    for alt in OVERFLOW:
        if alt == "supported_accommodation" and age < 16:
            continue
        if model.placements[alt].try_take():
            return alt
    return ""


def _move_out_of_hotel(model: NRMModel, child: Child, u: Sequence[float]) -> str:
    """Hotels closed: the local authority places the child by age; if every type is full the
    child is placed over capacity in the age-based choice (an emergency placement)."""
    age = 18.0 - (child.day18 - model.env.now) / DAYS_PER_YEAR
    p = model.params.care
    wanted = (p.type_16_17 if age >= 16 else p.type_under_16).pick(u[2])
    if wanted == "hotel":
        wanted = "foster"
    if model.placements[wanted].try_take():
        return wanted
    kind = _overflow(model, child)
    if not kind:
        kind = wanted
        model.placements[kind].in_use += 1  # over capacity
    return kind
