"""nrmsim: agent-based discrete-event simulation of the UK National Referral Mechanism for
trafficked children.

Notebook entry points::

    from model import load_scenario, simulate, run_scenario
    scenario = load_scenario("historical")
    model = simulate(scenario, replicate=0)          # a Mesa model you can inspect
    results = run_scenario("historical", reps=4)     # summaries, one per replicate
    folder = run_folder("historical", reps=4)        # what `nrmsim run` writes, as a result
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from model.running import RunFolderResult, run_folder
from model.scenario import Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    from model.runner import RunResult
    from model.simulation import NRMModel

__all__ = [
    "RunFolderResult",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "run_folder",
    "run_scenario",
    "simulate",
]


def simulate(
    scenario: Scenario | str, replicate: int = 0, rules: Mapping[str, Any] | None = None
) -> NRMModel:
    """Run one replicate and return the Mesa model (agents, event log, data collector).
    ``rules`` replaces decision rules (``model.rules``)."""
    from model.runner import simulate as _simulate

    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    return _simulate(sc, replicate, rules)


def run_scenario(
    scenario: Scenario | str,
    reps: int | None = None,
    workers: int = 1,
    events: bool = False,
    rules: Mapping[str, Any] | None = None,
    **run: Any,
) -> list[RunResult]:
    """Run replicates of a scenario (``run`` may set start, end, seed). ``rules`` replaces
    decision rules (``model.rules``; with ``workers`` > 1 they must be importable)."""
    from model.runner import RunSpec, run_many

    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    sc = sc.with_run(**run) if run else sc
    specs = [RunSpec(sc, r, keep_events=events, rules=rules) for r in range(reps or sc.replicates)]
    return run_many(specs, workers=workers)
