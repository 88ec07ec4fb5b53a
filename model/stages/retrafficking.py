"""Stage 10b: re-trafficking and repeat referral.

A child can be re-trafficked (i) while missing from care (see ``care``), (ii) in the
community while their case is open and they are not looked after
(``retrafficking.rate_per_year_open_case``), or (iii) after the case closes without
protection: negative, withdrawn, suspended or disqualified
(``retrafficking.rate_per_year_after_exit``); confirmed victims face
``retrafficking.rate_per_year_confirmed``. A re-trafficked child is identified and referred
again with ``retrafficking.p_re_referred`` after an exponential delay, if still under 18:
that is a repeat referral, a new episode; an open earlier case is closed as superseded.

Parameters: group ``retrafficking``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from model.calendar import DAYS_PER_YEAR
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

RETRAFFICKING_SLOTS = 4


def _schedule(model: NRMModel, child: Child, rate_per_year: float, u: float, where: str) -> None:
    if rate_per_year <= 0:
        return
    t = -math.log1p(-u) / rate_per_year * DAYS_PER_YEAR
    if model.env.now + t >= min(child.day18, model.end_day):
        return
    r, episode = child.r, child.episode

    def fire(_ev: object) -> None:
        if child.episode != episode or child.r != r:
            return  # already referred again
        if where == "community" and (not child.is_open or child.in_care):
            return
        model.re_trafficked(child, where)

    model.env.timeout(t).callbacks.append(fire)


def start_open_case(model: NRMModel, child: Child) -> None:
    """At referral: community re-trafficking hazard while the case is open."""
    u = model.row(Stream.RETRAFFICKING, child)
    _schedule(model, child, model.params.retrafficking.rate_per_year_open_case, u[0], "community")


def after_close(model: NRMModel, child: Child) -> None:
    """When a case closes: hazard for the rest of childhood, by outcome."""
    p = model.params.retrafficking
    rate = p.rate_per_year_confirmed if child.state == "confirmed" else p.rate_per_year_after_exit
    u = model.row(Stream.RETRAFFICKING, child)
    _schedule(model, child, rate, u[1], "after_exit")


def maybe_re_refer(model: NRMModel, child: Child) -> None:
    """After re-trafficking: schedule a repeat referral if identified while still a child."""
    p = model.params.retrafficking
    u = model.row(Stream.RETRAFFICKING, child)
    if u[2] >= p.p_re_referred:
        return
    delay = -p.mean_days_to_re_referral * math.log1p(-u[3])
    when = model.env.now + delay
    if when >= min(child.day18, model.end_day):
        return
    episode = child.episode
    model.env.timeout(delay).callbacks.append(
        lambda _ev: model.repeat_referral(child) if child.episode == episode else None
    )
