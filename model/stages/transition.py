"""Stage 10a: transition at 18 while a decision is still awaited.

On the 18th birthday of a child whose case is open, the young person must consent to
continue as an adult. With ``transition.p_withdrawn`` they withdraw, with
``transition.p_suspended`` the case is suspended for lack of consent, otherwise it continues
(and the decision, when it comes, is still recorded). Withdrawal or suspension closes the case
and removes it from any decision queue.

Parameters: group ``transition``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.events import Event
from model.rng import Stream

if TYPE_CHECKING:
    from model.agents import Child
    from model.simulation import NRMModel

TRANSITION_SLOTS = 1


def schedule(model: NRMModel, child: Child) -> None:
    """At referral: call ``turn_18`` on the birthday if it falls inside the run."""
    if child.day18 >= model.end_day:
        return
    episode = child.episode
    model.env.timeout(max(0.0, child.day18 - model.env.now)).callbacks.append(
        lambda _ev: turn_18(model, child, episode))


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
