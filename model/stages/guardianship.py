"""Stage 7: guardianship: ICTGs (direct and indirect), Guardianship Scotland, the Northern
Ireland Independent Guardian Service.

England and Wales: Independent Child Trafficking Guardians in covered local authorities
(``guardianship.ictg_coverage_share``: the share of England-and-Wales child referrals living in
covered LAs, which join in a fixed rollout order). A
child with no one holding parental responsibility, referred to the service
(``p_referred_to_ictg``; everyone separated under ``ictg_all_separated``), gets a Direct
Worker when a caseload place is free (``ictg_direct_caseload``: children at once, first come
first served, so waits emerge when demand outruns guardians); a child with a parent or carer
gets indirect support (``ictg_indirect_support``, from Oct 2018) until 18. Before the
Regional Practice Coordinator role, the original model gave every referred child in the early
sites one-to-one (direct) support (RR111, Feb 2017 - Jan 2019). Scotland: every
separated child, until three months after a CG decision once over 18 (or after leave).
Northern Ireland: separated children (from April 2018), until 18 or the end of the case.

First contact comes ``mean_days_to_first_contact`` after allocation (the 24-hour standard);
``guardian_allocated`` records the days from request to first contact. Direct support lasts
to 18 plus ``post18_support_days`` (the Post-18 worker), capped at ``max_support_days``.

While a guardian is active, each kind of guardian acts through named effects (all
assumptions with null 1): ``missing_hazard_ratio_<kind>`` (care),
``retrafficking_hazard_ratio_<kind>`` (re-trafficking), ``dropout_at_18_odds_ratio_<kind>``
(transition), ``criminalisation_hazard_ratio_<kind>`` (justice); post-18 direct support also
``msvcc_referral_odds_ratio_post18``.

Parameters: group ``guardianship``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from model.agents import Child
from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.params import Params
    from model.simulation import NRMModel

GUARDIANSHIP_SLOTS = 4  # 0 referred, 1 first-contact delay; 2-3 reserved
SUFFIX = {
    "ictg_direct": "direct",
    "ictg_indirect": "indirect",
    "scottish_guardianship": "scotland",
    "ni_independent_guardian": "ni",
}


def effect(p: Params, kind: str, name: str) -> float:
    """The effect ``name`` (e.g. ``missing_hazard_ratio``) of a guardian of this kind."""
    return float(getattr(p.guardianship, f"{name}_{SUFFIX[kind]}"))


def active_effect(p: Params, child: Child, name: str) -> float:
    """The effect of the child's guardian if one is active now, else 1 (no effect)."""
    return effect(p, child.guardian_kind, name) if child.guardian_active else 1.0


def start(model: NRMModel, child: Child, u: Sequence[float] | None = None) -> None:
    """At referral: refer to the guardian service that covers the child, if any (``u``: the
    occasion's uniforms, 0 referred and 1 first-contact delay; default the referral's)."""
    if child.guardian_active or child.guardian_kind.startswith("awaiting") or child.adult:
        return
    p = model.params.guardianship
    if u is None:
        u = model.row(Stream.GUARDIANSHIP, child)
    separated = not child.has_parental_responsibility
    contact = -p.mean_days_to_first_contact * math.log1p(-u[1])
    if child.nation in ("england", "wales"):
        if not model.local_authorities.ictg_covered(child.local_authority, p.ictg_coverage_share):
            return
        # before the Regional Practice Coordinator role (Oct 2018) the original model gave
        # one-to-one support to every child referred in the early sites
        direct = separated or not p.ictg_indirect_support
        if direct and (p.ictg_all_separated or u[0] < p.p_referred_to_ictg):
            model.record(child, Event.GUARDIAN_REQUESTED, -1, "ictg_direct")
            child.guardian_kind = "awaiting_ictg_direct"  # until a caseload place is free
            model.env.process(direct_ictg(model, child, contact))
        elif not direct and u[0] < p.p_referred_to_ictg:
            model.record(child, Event.GUARDIAN_REQUESTED, -1, "ictg_indirect")
            _after(model, child, contact, "ictg_indirect", child.day18)
    elif separated and child.nation == "scotland" and p.scotland_service:
        model.record(child, Event.GUARDIAN_REQUESTED, -1, "scottish_guardianship")
        _after(model, child, contact, "scottish_guardianship", math.inf)
    elif separated and child.nation == "northern_ireland" and p.northern_ireland_service:
        model.record(child, Event.GUARDIAN_REQUESTED, -1, "ni_independent_guardian")
        _after(model, child, contact, "ni_independent_guardian", math.inf)


def on_expansion(model: NRMModel, before: Params) -> None:
    """A timeline change that widens ICTG reach (more of England and Wales covered, or every
    separated child eligible) reaches children whose case is already open: each one newly
    within reach is referred with ``rollout_share_existing_referred``, after an exponential
    delay of mean ``rollout_mean_days_to_refer_existing`` from the change, if the case is
    still open and the child still under 18 without a guardian; the usual referral gate and
    caseload then apply. Post-18 support made longer extends the support of young people
    already supported (``extend_post18``)."""
    p, b = model.params.guardianship, before.guardianship
    if p.post18_support_days > b.post18_support_days:
        extend_post18(model)
    newly_all = p.ictg_all_separated and not b.ictg_all_separated
    if p.ictg_coverage_share <= b.ictg_coverage_share and not newly_all:
        return
    model.n_expansions += 1
    las = model.local_authorities
    for child in model.agents_by_type.get(Child, ()):
        if not child.is_open or child.adult or child.nation not in ("england", "wales"):
            continue
        if child.guardian_active or child.guardian_kind.startswith("awaiting"):
            continue
        covered = las.ictg_covered(child.local_authority, p.ictg_coverage_share)
        if not covered:
            continue
        was_covered = las.ictg_covered(child.local_authority, b.ictg_coverage_share)
        separated = not child.has_parental_responsibility
        if was_covered and not (newly_all and separated):
            continue  # offered at referral under the same rules
        u = model.fresh(Stream.GUARDIANSHIP, 4, 9, child.index, model.n_expansions)
        if u[0] >= p.rollout_share_existing_referred:
            continue
        delay = -p.rollout_mean_days_to_refer_existing * math.log1p(-u[1])
        _refer_existing(model, child, delay, u[2:4])


def _refer_existing(model: NRMModel, child: Child, delay: float, u: Sequence[float]) -> None:
    """In ``delay`` days: refer the open case, if still open and the child still a child."""
    episode = child.episode

    def refer(_ev: object) -> None:
        if model.active(child, episode) and not child.adult and model.env.now < child.day18:
            start(model, child, u)

    model.env.timeout(delay).callbacks.append(refer)


def extend_post18(model: NRMModel) -> None:
    """Direct support of children and young people already supported runs to the new
    post-18 end (capped at ``max_support_days`` from allocation), not the one set when it
    started."""
    p = model.params.guardianship
    for child in model.agents_by_type.get(Child, ()):
        if not (child.guardian_active and child.guardian_kind == "ictg_direct"):
            continue
        until = min(child.day18 + p.post18_support_days, child.guardian_since + p.max_support_days)
        if until > child.guardian_until:
            child.guardian_token += 1  # the old end-of-support callback is now stale
            end_at(model, child, until)


def _after(model: NRMModel, child: Child, delay: float, kind: str, until: float) -> None:
    """Allocate after the first-contact delay (the child is marked as awaiting meanwhile)."""
    child.guardian_kind = "awaiting_contact"

    def allocate(_ev: object) -> None:
        if not _allocate(model, child, kind, delay, until):
            child.guardian_kind = ""

    model.env.timeout(delay).callbacks.append(allocate)


def direct_ictg(model: NRMModel, child: Child, contact: float) -> Generator[simpy.Event, Any, None]:
    """SimPy process: wait for a place on a direct caseload, make first contact, support."""
    env = model.env
    asked = env.now
    got = yield model.ictg_direct.take(lambda: env.now < child.day18 and not child.removed)
    if not got:
        child.guardian_kind = ""  # turned 18 before a place was free
        return
    model.counts["ictg_direct"] += 1
    yield env.timeout(contact)
    p = model.params.guardianship  # the rules in force when support starts
    until = min(child.day18 + p.post18_support_days, env.now + p.max_support_days)
    if not _allocate(model, child, "ictg_direct", env.now - asked, until):
        model.counts["ictg_direct"] -= 1
        model.ictg_direct.give_back()
        child.guardian_kind = ""


def _allocate(model: NRMModel, child: Child, kind: str, waited: float, until: float) -> bool:
    now = model.env.now
    if child.removed or now >= child.followup_end or now >= until:
        return False
    if kind != "ictg_direct" and child.adult:
        return False
    child.guardian_kind = kind
    child.guardian_active = True
    child.guardian_since = now
    child.guardian_token += 1
    model.record(child, Event.GUARDIAN_ALLOCATED, -1, kind, waited)
    end_at(model, child, until)
    model.update_hazards(child)
    return True


def end_at(model: NRMModel, child: Child, day: float) -> None:
    """Schedule the end of the current support on ``day`` (replacing an earlier plan)."""
    child.guardian_until = day
    if day >= model.end_day:
        return
    token = child.guardian_token
    delay = max(0.0, day - model.env.now)
    model.env.timeout(delay).callbacks.append(lambda _ev: _end(model, child, token))


def _end(model: NRMModel, child: Child, token: int) -> None:
    if token != child.guardian_token or not child.guardian_active:
        return
    child.guardian_active = False
    model.record(child, Event.GUARDIAN_ENDED, -1, child.guardian_kind)
    if child.guardian_kind == "ictg_direct":
        model.counts["ictg_direct"] -= 1
        model.ictg_direct.give_back()
    model.update_hazards(child)


def end_now(model: NRMModel, child: Child) -> None:
    """Support ends today (the child leaves the model)."""
    if child.guardian_active:
        _end(model, child, child.guardian_token)


def at_18(model: NRMModel, child: Child) -> None:
    """Scottish and NI support after 18 follows the case: three months after a CG decision
    (Scotland), or the end of the case (NI)."""
    if not child.guardian_active:
        return
    if child.guardian_kind == "scottish_guardianship" and not child.is_open:
        gap = model.params.guardianship.scotland_support_days_after_decision
        end_at(model, child, model.env.now + gap)
    elif child.guardian_kind == "ni_independent_guardian" and not child.is_open:
        end_now(model, child)


def on_case_closed(model: NRMModel, child: Child) -> None:
    """A case closed after 18: Scottish support ends three months later, NI support now."""
    if not (child.guardian_active and child.adult):
        return
    if child.guardian_kind == "scottish_guardianship":
        gap = model.params.guardianship.scotland_support_days_after_decision
        end_at(model, child, min(child.guardian_until, model.env.now + gap))
    elif child.guardian_kind == "ni_independent_guardian":
        end_now(model, child)


def on_leave_granted(model: NRMModel, child: Child) -> None:
    """Scottish support ends three months after leave is granted to a young adult."""
    if child.guardian_active and child.adult and child.guardian_kind == "scottish_guardianship":
        gap = model.params.guardianship.scotland_support_days_after_decision
        end_at(model, child, min(child.guardian_until, model.env.now + gap))


def post18_support_active(child: Child) -> bool:
    """A Direct Worker still supporting a young adult (the Post-18 worker)."""
    return child.guardian_active and child.guardian_kind == "ictg_direct" and child.adult
