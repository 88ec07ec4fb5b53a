"""The replaceable decision rules (``model.rules``): the Reasonable Grounds decision.

Each test names the wrong implementation it would catch.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from model import rules as decision_rules
from model.rules import RuleError
from model.runner import RunResult, RunSpec, run_many, run_one
from model.scenario import Scenario, ScenarioError, load_scenario
from model.stages.rg_decision import RGContext, default_rg_decision

CALLS: list[float] = []


def counting_default(ctx: RGContext) -> bool:
    """The default rule, called through the replacement path, counting its calls."""
    CALLS.append(ctx.day)
    return default_rg_decision(ctx)


def always_positive(ctx: RGContext) -> bool:
    return True


def half_chance(ctx: RGContext) -> bool:
    return ctx.u < 0.5


def returns_a_probability(ctx: RGContext) -> float:
    return ctx.p_positive


@pytest.fixture(scope="module")
def short(small: Scenario) -> Scenario:
    """``small`` cut to three months: about 150 referrals, over 100 RG decisions."""
    return small.with_run(end=dt.date(2024, 3, 31))


@pytest.fixture(scope="module")
def plain(short: Scenario) -> RunResult:
    return run_one(RunSpec(short, 0, keep_events=True))


def rg_decisions(result: RunResult) -> pd.DataFrame:
    assert result.events is not None
    return result.events[result.events["event"] == "rg_decided"]


def test_default_rule_passed_explicitly_gives_byte_identical_results(
    short: Scenario, plain: RunResult
) -> None:
    """Catches a replacement path that hands the rule the wrong uniform, probability or date,
    draws an extra uniform, or is never called at all."""
    CALLS.clear()
    explicit = run_one(RunSpec(short, 0, keep_events=True, rules={"rg_decision": counting_default}))
    assert len(CALLS) == len(rg_decisions(plain)) > 100  # the rule decided every RG
    assert explicit.events is not None and plain.events is not None
    pd.testing.assert_frame_equal(explicit.events, plain.events)
    pd.testing.assert_frame_equal(explicit.children, plain.children)
    # a wrapper around the default is still a custom rule: the summary says so ...
    assert set(explicit.summary["rules"]) == {f"rg_decision={__name__}.counting_default"}
    pd.testing.assert_frame_equal(explicit.summary.drop(columns="rules"), plain.summary)
    # ... while the default itself, passed explicitly, leaves the summary as it was
    same = run_one(RunSpec(short, 0, rules={"rg_decision": default_rg_decision}))
    pd.testing.assert_frame_equal(same.summary, plain.summary)


def test_always_positive_rule_makes_every_rg_decision_positive(
    short: Scenario, plain: RunResult
) -> None:
    """Catches a rule that is accepted but not applied (the default still deciding), or
    applied to only one route."""
    assert rg_decisions(plain)["positive"].mean() < 0.95  # the default is not all positive
    custom = run_one(RunSpec(short, 0, keep_events=True, rules={"rg_decision": always_positive}))
    decided = rg_decisions(custom)
    assert len(decided) > 100
    assert decided["positive"].astype(bool).all()
    assert (custom.summary["rules"] == f"rg_decision={__name__}.always_positive").all()


def test_a_rule_using_its_uniform_is_reproducible_with_the_same_seed(short: Scenario) -> None:
    """Catches a context whose uniform is not the child's own (a fresh or shared draw)."""
    first, second = (
        run_one(RunSpec(short, 0, keep_events=True, rules={"rg_decision": half_chance}))
        for _ in range(2)
    )
    assert first.events is not None and second.events is not None
    pd.testing.assert_frame_equal(first.events, second.events)
    share = rg_decisions(first)["positive"].astype(bool).mean()
    assert 0.3 < share < 0.7  # decided by u < 0.5, not by the default probability (about 0.75)


def test_a_rule_returning_the_wrong_type_fails_with_a_clear_error(short: Scenario) -> None:
    """Catches a rule whose float is silently read as truthy (every decision positive)."""
    with pytest.raises(RuleError, match=r"'rg_decision'.*returns_a_probability.*True or False"):
        run_one(RunSpec(short, 0, rules={"rg_decision": returns_a_probability}))


def test_unknown_or_uncallable_rules_are_rejected_before_running(short: Scenario) -> None:
    """Catches a misspelt rule name that would silently run the default."""
    with pytest.raises(RuleError, match="no replaceable rule 'rg_decisions'"):
        run_one(RunSpec(short, 0, rules={"rg_decisions": always_positive}))
    with pytest.raises(RuleError, match="must be a function"):
        run_one(RunSpec(short, 0, rules={"rg_decision": True}))  # type: ignore[dict-item]


def test_a_lambda_with_workers_fails_before_any_run(short: Scenario) -> None:
    """Catches a pool that would fail (or hang) on a rule a worker cannot import."""
    specs = [RunSpec(short, r, rules={"rg_decision": lambda ctx: True}) for r in range(2)]
    with pytest.raises(RuleError, match="workers=1"):
        run_many(specs, workers=2)


def test_a_module_level_rule_gives_the_same_results_in_worker_processes(short: Scenario) -> None:
    """Catches a rule lost on the way to a worker (the worker deciding with the default)."""
    specs = [RunSpec(short, r, rules={"rg_decision": always_positive}) for r in range(2)]
    serial, pooled = run_many(specs, workers=1), run_many(specs, workers=2)
    for a, b in zip(serial, pooled, strict=True):
        pd.testing.assert_frame_equal(a.summary, b.summary)


def test_describe_names_only_rules_that_differ_from_the_default() -> None:
    """Catches a manifest that marks a run with the package's own rule as custom."""
    assert decision_rules.describe({"rg_decision": default_rg_decision}) == {}
    assert decision_rules.describe({"rg_decision": always_positive}) == {
        "rg_decision": f"{__name__}.always_positive"
    }


def test_a_scenario_file_cannot_set_a_rule(tmp_path: Path) -> None:
    """Catches a scenario file (data) that could name code to run."""
    path = tmp_path / "with_rule.toml"
    path.write_text(
        '[meta]\nname = "with_rule"\nextends = "status_quo_2027"\ndescription = "x"\n\n'
        '[rules]\nrg_decision = "tests.test_extension_point.always_positive"\n'
    )
    with pytest.raises(ScenarioError, match="rules: unknown key"):
        load_scenario(path)
