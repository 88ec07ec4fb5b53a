"""Stage 9: immigration leave for confirmed child victims subject to immigration control.

After a positive CG, a non-UK child (subject to immigration control) is granted victim leave
with ``leave.p_grant_confirmed_child`` (times ``legal_aid.leave_grant_ratio`` with legal
advice) after an exponential delay (mean ``mean_days_to_grant``). Leave lasts
``duration_days`` (12 months or more; five years under the five-year-leave lever). While it
is valid it acts, after 18, on re-trafficking (``retrafficking_hazard_ratio_after_18``), on
withdrawal at 18 (``dropout_at_18_odds_ratio``) and on access to support
(``msvcc_support_odds_ratio``), and it protects from removal under the IMA. All effects are
assumptions with null 1.

Parameters: group ``leave``; ``legal_aid.leave_grant_ratio``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from model.events import Event
from model.rng import Stream
from model.stages import guardianship

if TYPE_CHECKING:
    from model.agents import Child
    from model.params import Params
    from model.simulation import NRMModel

LEAVE_SLOTS = 4  # 0 granted, 1 delay; 2-3 reserved


def valid(model: NRMModel, child: Child) -> bool:
    return model.env.now < child.leave_until


def p_grant(p: Params, child: Child) -> float:
    base = p.leave.p_grant_confirmed_child
    if child.legal_advice:
        base *= p.legal_aid.leave_grant_ratio
    return min(base, 1.0)


def consider(model: NRMModel, child: Child) -> None:
    """At a positive CG: schedule a grant of leave if the child is subject to control."""
    if child.nationality_group == "uk":
        return
    p = model.params.leave
    u = model.row(Stream.LEAVE, child)
    if u[0] >= p_grant(model.params, child):
        return
    delay = -p.mean_days_to_grant * math.log1p(-u[1])
    if model.env.now + delay >= min(model.end_day, child.followup_end):
        return
    episode = child.episode  # the episode whose decision the grant follows
    model.env.timeout(delay).callbacks.append(lambda _ev: grant(model, child, episode))


def grant(model: NRMModel, child: Child, episode: int | None = None) -> None:
    """Grant leave; recorded on the episode that was confirmed, even if the child has been
    re-referred (a new episode) while the grant was pending."""
    now = model.env.now
    if child.removed or now >= child.followup_end:
        return
    days = model.params.leave.duration_days  # the rules in force on the grant date
    child.leave_until = max(child.leave_until, now + days)
    model.record(child, Event.LEAVE_GRANTED, -1, "", days, episode=episode)
    guardianship.on_leave_granted(model, child)
    model.update_hazards(child)
    if child.leave_until < model.end_day:
        model.env.timeout(child.leave_until - now).callbacks.append(
            lambda _ev: model.update_hazards(child)
        )
