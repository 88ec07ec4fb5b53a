"""The replaceable decision rules (``model.rules``): the Reasonable Grounds decision.

Each test names the wrong implementation it would catch.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from model import rules as decision_rules
from model.common import DAYS_PER_YEAR, odds, prob_from_odds
from model.params import Params
from model.rules import RuleError
from model.runner import RunResult, RunSpec, run_many, run_one
from model.scenario import Scenario, ScenarioError, load_scenario
from model.stages.rg_decision import (
    RG_SLOTS,
    RGContext,
    at_referral,
    default_rg_decision,
    nba_logits,
    overseas_share,
    p_positive,
    servers_for,
)

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


# --------------------------------------------------------------------------- without a run
# The rule helpers and the default rule's probability called directly, for what the runs
# above do not reach. Written for the mutation job (docs/mutation.md).
def in_notebook(ctx: RGContext) -> bool:
    return True


in_notebook.__module__ = "__main__"  # as if defined in a notebook or a script


def test_only_rules_a_worker_can_import_may_go_to_workers() -> None:
    """Catches module-level rules refused for workers (or every rule refused), a rule defined
    in a notebook or script accepted (the pool would fail to unpickle it), and a callable
    without a module crashing the check instead of being refused by name."""
    overseas = operator.attrgetter("child.exploited_overseas")  # a picklable callable object
    for rule in (always_positive, default_rg_decision, overseas):
        decision_rules.check_for_workers({"rg_decision": rule})
    for rule in (in_notebook, (0.5).__gt__):  # __main__; a built-in method has no module
        with pytest.raises(RuleError, match="workers=1") as info:
            decision_rules.check_for_workers({"rg_decision": rule})
        assert decision_rules.qualified_name(rule) in str(info.value)
    assert decision_rules.qualified_name(in_notebook) == "__main__.in_notebook"


def test_a_callable_object_is_recorded_under_its_type() -> None:
    """Catches a rule without a ``__qualname__`` (a functools.partial, an attrgetter) crashing
    the manifest, or recorded under the wrong type's name."""
    for rule, name in (
        (operator.attrgetter("child.exploited_overseas"), "operator.attrgetter"),
        (functools.partial(half_chance), "functools.partial"),
    ):
        assert decision_rules.describe({"rg_decision": rule}) == {"rg_decision": name}
        assert decision_rules.label({"rg_decision": rule}) == f"rg_decision={name}"


def test_is_custom_only_for_a_rule_other_than_the_default() -> None:
    """Catches a run with the package's rule (given or not) counted as custom, or a replaced
    rule not counted."""
    assert not decision_rules.is_custom(None)
    assert not decision_rules.is_custom({})
    assert not decision_rules.is_custom({"rg_decision": default_rg_decision})
    assert decision_rules.is_custom({"rg_decision": always_positive})


def test_a_wrong_return_type_is_named_in_the_error() -> None:
    """Catches an error that misreports what the rule returned (the type a user must fix)."""
    assert decision_rules.check_decision("rg_decision", half_chance, np.bool_(True)) is True
    with pytest.raises(RuleError, match=r"returned 0\.5 \(float\)"):
        decision_rules.check_decision("rg_decision", returns_a_probability, 0.5)


def p_rg(params: Params, *, overseas: bool = False, advice: bool = False, panel: bool = False):
    """The default rule's probability of a positive RG for a child, with no model run."""
    model = SimpleNamespace(params=params, nba_logits=nba_logits(params))
    child = SimpleNamespace(exploited_overseas=overseas, legal_advice=advice)
    # stand-ins carrying only the attributes the rule reads (not an NRMModel and Child)
    return p_positive(model, child, panel)  # type: ignore[arg-type]


@pytest.mark.parametrize("regime", ["pre_nba", "nba_objective", "nba_amended"])
def test_every_rg_lever_multiplies_the_odds_of_a_positive_decision(
    baseline: Scenario, regime: str
) -> None:
    """Catches a lever applied as a probability ratio, dividing the odds, replacing the log
    odds instead of adding to them, or ignored: the revised referral form, legal advice before
    the RG and a devolved panel each multiply the odds by their ratio, alone and together, on
    top of the rate of the regime in force (the amended test: the objective test's odds times
    its ratio)."""
    p = baseline.initial_params().with_values(
        {
            "policy.decision_regime": regime,
            "rg_decision.p_positive_pre_nba": 0.55,
            "rg_decision.p_positive_nba": 0.4,
            "rg_decision.nba_amended_odds_ratio": 1.5,
            "rg_decision.nba_overseas_odds_ratio": 0.5,
            "rg_decision.referral_form_odds_ratio": 1.6,
            "legal_aid.rg_positive_odds_ratio": 2.0,
            "devolved_pilot.rg_odds_ratio": 3.0,
        }
    )
    old_form = p.with_values({"policy.referral_form_2025": False})
    new_form = p.with_values({"policy.referral_form_2025": True})
    objective = old_form.with_values({"policy.decision_regime": "nba_objective"})
    for overseas in (False, True):
        base = odds(p_rg(old_form, overseas=overseas))
        if regime == "pre_nba":
            assert prob_from_odds(base) == pytest.approx(0.55, abs=1e-12)
        elif regime == "nba_amended":
            assert base == pytest.approx(1.5 * odds(p_rg(objective, overseas=overseas)))
        form = odds(p_rg(new_form, overseas=overseas))
        advice = odds(p_rg(old_form, overseas=overseas, advice=True))
        panel = odds(p_rg(old_form, overseas=overseas, panel=True))
        every = odds(p_rg(new_form, overseas=overseas, advice=True, panel=True))
        assert (form / base, advice / base, panel / base) == pytest.approx((1.6, 2.0, 3.0))
        assert every / base == pytest.approx(1.6 * 2.0 * 3.0)


@pytest.mark.parametrize(
    ("mean", "ratio", "p_uk", "p_non_uk"),
    [
        (0.69, 0.5, 0.03, 0.6),  # the baseline
        (0.5, 0.25, 0.1, 0.9),  # corners of the declared ranges
        (0.9, 0.25, 0.0, 0.3),
        (0.9, 0.25, 0.1, 0.9),
        (0.6, 1.0, 0.05, 0.5),  # no overseas effect
    ],
)
def test_nba_rates_keep_their_mean_and_split_by_the_overseas_odds_ratio(
    baseline: Scenario, mean: float, ratio: float, p_uk: float, p_non_uk: float
) -> None:
    """Catches the Newton solve stopping early or at the wrong root, the overseas shift applied
    the wrong way, or the two rates swapped: under the NBA test the Home Office rate averaged
    over cases (overseas share ``overseas_share``) is ``p_positive_nba`` exactly, and an
    overseas case has the odds of a domestic one times ``nba_overseas_odds_ratio``."""
    p = baseline.initial_params().with_values(
        {
            "policy.decision_regime": "nba_objective",
            "policy.referral_form_2025": False,
            "rg_decision.p_positive_nba": mean,
            "rg_decision.nba_overseas_odds_ratio": ratio,
            "identification.p_exploited_overseas_uk": p_uk,
            "identification.p_exploited_overseas_non_uk": p_non_uk,
        }
    )
    w = overseas_share(p)
    domestic, overseas = p_rg(p), p_rg(p, overseas=True)
    assert (1.0 - w) * domestic + w * overseas == pytest.approx(mean, abs=1e-9)
    assert odds(overseas) / odds(domestic) == pytest.approx(ratio, rel=1e-9)


def test_decision_teams_follow_littles_law_and_none_without_capacity() -> None:
    """Catches a service with no capacity given a case worker (it would still decide cases), a
    small capacity given none (its cases would wait for ever) or two, and a team that is not
    capacity x time in service (Little's law) to the nearest whole worker."""
    assert servers_for(0.0, 30.0) == 0
    assert servers_for(0.5, 30.0) == servers_for(1.0, 30.0) == 1
    for capacity, days in ((1000.0, 30.0), (5000.0, 45.5), (DAYS_PER_YEAR * 7.4, 1.0)):
        assert abs(servers_for(capacity, days) - capacity * days / DAYS_PER_YEAR) <= 0.5


def test_legal_advice_before_the_rg_only_when_offered_and_taken_up(baseline: Scenario) -> None:
    """Catches advice given when the policy does not offer it, or to every child or to none
    when it does: a child is advised only under ``policy.legal_aid_before_rg``, and then when
    its take-up uniform is below ``legal_aid.p_take_up``."""
    p = baseline.initial_params().with_values({"legal_aid.p_take_up": 0.6})
    for offered in (False, True):
        params = p.with_values({"policy.legal_aid_before_rg": offered})
        for u in (0.05, 0.3, 0.59, 0.61, 0.95):
            model = SimpleNamespace(params=params, row=lambda stream, child, u=u: [u] * RG_SLOTS)
            child = SimpleNamespace(legal_advice=None)
            # stand-ins with only the fields at_referral reads, and fixed uniforms
            at_referral(model, child)  # type: ignore[arg-type]
            assert child.legal_advice is (offered and u < 0.6), (offered, u)
