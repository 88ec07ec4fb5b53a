"""Stage 10b: re-trafficking, before and after 18, and repeat referral.

A child can be re-trafficked (i) while missing from care and not found (see ``care``), or
(ii) in the community when not in care, at a hazard that depends on the child's situation
now: ``retrafficking.rate_per_year_child`` under 18 and ``rate_per_year_after_18`` in the
follow-up after 18, times ``female_hazard_ratio`` for girls, ``confirmed_hazard_ratio`` after
a positive CG (what the decision does beyond the channels modelled elsewhere), the guardian's
``retrafficking_hazard_ratio_<kind>`` while supported, and after 18 valid leave
(``leave.retrafficking_hazard_ratio_after_18``) and MSVCC support (``msvcc_hazard_ratio``).
The hazard is a clock (``model.hazard.HazardClock``) re-read whenever the situation changes.

A child re-trafficked before 18 is exploited again; with ``p_re_referred`` they are identified
and referred again after an exponential delay, if still under 18: with a case open the new
instance is recorded on it (``referred`` with ``linked``; the case keeps its referral date),
otherwise a new episode opens. Separately, a referral is followed by a second referral about
the same instance with ``p_duplicate_referral`` (another first responder): it joins the case
with no new decision. Re-trafficking after 18 is counted (``re_trafficked_after_18``), not
referred (adult referrals are outside the model).

Parameters: group ``retrafficking``; ``guardianship``, ``leave`` effects.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from model.hazard import HazardClock
from model.rng import Stream
from model.stages import age_dispute, guardianship, leave

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

RETRAFFICKING_SLOTS = 8  # 0 clock budget, 1 re-referred, 2 delay, 3 duplicate, 4 its delay


def start(model: NRMModel, child: Child, first: bool) -> None:
    """At a referral that opens a case: the re-trafficking clock (first referral) and a
    possible duplicate referral."""
    u = model.row(Stream.RETRAFFICKING, child)
    if first:
        child.retraffic_clock = HazardClock(
            model.env, u[0], lambda: _fire(model, child), child.followup_end
        )
    p = model.params.retrafficking
    if u[3] < p.p_duplicate_referral:
        delay = -p.mean_days_to_duplicate * math.log1p(-u[4])
        episode = child.episode
        if model.env.now + delay < min(child.day18, model.end_day):
            model.env.timeout(delay).callbacks.append(
                lambda _ev: model.duplicate_referral(child, episode)
            )


def rate(model: NRMModel, child: Child) -> float:
    """Re-trafficking events a year for this child now (0 while in care, exploited, or out
    of the model)."""
    # state flags, not clock comparisons: 18 and the end of follow-up take effect at the
    # midnight tick that handles them, whichever other update happens to come first
    now = model.env.now
    if child.exploited or child.in_care or child.removed or child.left_model:
        return 0.0
    p = model.params.retrafficking
    sex = p.female_hazard_ratio if child.sex == "female" else 1.0
    r = sex * guardianship.active_effect(model.params, child, "retrafficking_hazard_ratio")
    if child.confirmed:
        r *= p.confirmed_hazard_ratio
    if not child.adult:
        return r * p.rate_per_year_child * age_dispute.hazard_ratio(model, child)
    if child.retrafficked_as_adult:
        return 0.0
    r *= p.rate_per_year_after_18
    if leave.valid(model, child):
        r *= model.params.leave.retrafficking_hazard_ratio_after_18
    if now < child.msvcc_until:
        r *= p.msvcc_hazard_ratio
    return r


def update(model: NRMModel, child: Child) -> None:
    if child.retraffic_clock is not None:
        child.retraffic_clock.set_rate(rate(model, child))


def restart_clock(model: NRMModel, child: Child) -> None:
    """A fresh hazard budget once a re-trafficked child is identified again."""
    if child.retraffic_clock is None:
        return
    child.n_clock_resets += 1
    u = model.fresh(Stream.CLOCK_RESETS, 1, child.index, child.n_clock_resets)
    child.retraffic_clock.reset(u[0])


def _fire(model: NRMModel, child: Child) -> None:
    if not child.adult:
        model.re_trafficked(child, "community")
    else:
        child.retrafficked_as_adult = True
        model.re_trafficked(child, "after_18")


def maybe_re_refer(model: NRMModel, child: Child) -> None:
    """After re-trafficking: schedule a repeat referral if identified while still a child."""
    p = model.params.retrafficking
    if child.n_clock_resets:  # identified again since the case's row was drawn: fresh draws
        u = model.fresh(Stream.CLOCK_RESETS, 2, child.index, child.n_clock_resets, 1)
        u_refer, u_delay = u[0], u[1]
    else:
        u = model.row(Stream.RETRAFFICKING, child)
        u_refer, u_delay = u[1], u[2]
    if u_refer >= p.p_re_referred:
        return
    delay = -p.mean_days_to_re_referral * math.log1p(-u_delay)
    if model.env.now + delay >= min(child.day18, model.end_day):
        return
    episode = child.episode
    model.env.timeout(delay).callbacks.append(
        lambda _ev: model.repeat_referral(child) if child.episode == episode else None
    )
