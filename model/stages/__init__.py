"""One module per pathway stage. Each reads its parameter group and writes events."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from model.agents import Child
    from model.queues import DecisionQueue
    from model.simulation import NRMModel


def wait_for_decision(
    model: NRMModel, child: Child, queue: DecisionQueue, service_days: float
) -> Generator[simpy.Event, Any, bool]:
    """Put the child's case in ``queue`` and wait until a decision-maker has worked it.

    Returns True if the case is still open (in the same episode) when the work ends, False if
    it was cancelled or closed meanwhile (withdrawn at 18, superseded by a repeat referral).
    """
    episode = child.episode
    job = child.job = queue.submit(service_days)
    done = yield job.done
    if child.job is job:  # a repeat referral may have queued a newer case meanwhile
        child.job = None
    return bool(done) and model.active(child, episode)
