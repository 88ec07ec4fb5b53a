"""Stage 10a: transition at 18 while a decision is still awaited.

On the 18th birthday of a child whose case is open, the young person must consent to
continue as an adult. With ``transition.p_withdrawn`` they withdraw, with
``transition.p_suspended`` the case is suspended for lack of consent, otherwise it continues
(and the decision, when it comes, is still recorded). Withdrawal or suspension closes the case
and removes it from any decision queue. Birthdays are handled at the first midnight after them.

Parameters: group ``transition``.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

TRANSITION_SLOTS = 1


def schedule(model: NRMModel, child: Child) -> None:
    """At referral: file the child under the first midnight after their 18th birthday."""
    day = math.ceil(child.day18)
    if day < model.end_day:
        model.birthdays.setdefault(day, []).append((child, child.episode))


def birthdays(model: NRMModel) -> Generator[simpy.Event, Any, None]:
    """SimPy process: each midnight, handle the children who turned 18 the day before.

    One event a day instead of one per child keeps the event list short; a birthday is
    handled at most a day late.
    """
    env = model.env
    while True:
        yield env.timeout(1.0)
        for child, episode in model.birthdays.pop(round(env.now), ()):
            turn_18(model, child, episode)


def turn_18(model: NRMModel, child: Child, episode: int) -> None:
    if child.episode != episode or not child.is_open:
        return
    p = model.params.transition
    u = model.row(Stream.TRANSITION, child)
    model.record(child, Event.TURNED_18)
    if u[0] < p.p_withdrawn:
        model.record(child, Event.WITHDRAWN, -1, "at_18")
        model.close_episode(child, "withdrawn")
    elif u[0] < p.p_withdrawn + p.p_suspended:
        model.record(child, Event.SUSPENDED, -1, "no_consent_at_18")
        model.close_episode(child, "suspended")
    else:
        model.record(child, Event.CONTINUED_AS_ADULT)
