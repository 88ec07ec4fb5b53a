"""Stage 9: immigration leave for confirmed child victims subject to immigration control.

After a positive CG, a non-UK child is granted victim leave with
``leave.p_grant_confirmed_child`` after an exponential delay (mean ``leave.mean_days_to_grant``).
The five-year-leave lever raises the probability.

Parameters: group ``leave``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

LEAVE_SLOTS = 2


def consider(model: NRMModel, child: Child) -> None:
    """At a positive CG: schedule a grant of leave if the child is subject to control."""
    if child.nationality_group == "uk":
        return
    p = model.params.leave
    u = model.row(Stream.LEAVE, child)
    if u[0] >= p.p_grant_confirmed_child:
        return
    delay = -p.mean_days_to_grant * math.log1p(-u[1])
    if model.env.now + delay >= model.end_day:
        return
    episode = child.episode
    model.env.timeout(delay).callbacks.append(
        lambda _ev: model.record(child, Event.LEAVE_GRANTED, -1, "", math.nan, episode)
    )
