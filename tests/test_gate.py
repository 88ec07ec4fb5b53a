"""The calibration gate rejects wrong models (issue 8 section 4).

Each variant below changes one parameter of the calibrated historical scenario to a value
inside its plausible range that a reviewer would call wrong; ``nrmsim check --scenario
VARIANT`` must fail (exit 1) for each, naming at least one failing fit target. The calibrated
scenario itself must pass at three different seeds (not only the seed it was fitted at).

Each check runs the 2013-2025 historical scenario four times, so this file takes a few
minutes; it is part of the suite because a gate that cannot fail is worth nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.cli import main
from model.scenario import SCENARIO_DIR, load_scenario

HISTORICAL = (SCENARIO_DIR / "historical.toml").resolve().as_posix()


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["check", "--json", "--workers", "2", *args])
    return code, json.loads(capsys.readouterr().out)


def variant(tmp_path: Path, name: str, key: str, value: float) -> Path:
    group, param = key.split(".")
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[meta]\nname = "{name}"\nextends = "{HISTORICAL}"\n\n'
        f'[params.{group}]\n{param} = {{ value = {value!r}, source = "assumption" }}\n',
        encoding="utf-8",
    )
    return path


def fitted(key: str) -> float:
    return float(load_scenario("baseline").entries[key].value)


def within_range(key: str, value: float) -> float:
    lo, hi = load_scenario("baseline").entries[key].range or (value, value)
    return min(max(value, lo), hi)


# name -> (parameter, wrong value as a function of the fitted one, minimum relative change)
VARIANTS = {
    # the first review: a model with half the decision capacity passed the gate
    "half_cg_capacity": ("cg_decision.capacity_multiplier", lambda v: v / 2),
    "double_cg_capacity": ("cg_decision.capacity_multiplier", lambda v: v * 2),
    # guardians asked for half as often: ICTG referrals by year are outcome targets
    "ictg_referrals_halved": ("guardianship.p_referred_to_ictg", lambda v: v / 2),
    # Not here: the ICTG effect on going missing inverted (0.85 -> 1.18). It moves every fit
    # target by less than 0.2 tolerance units (checked 2026-11-30 at seed 20240601): no
    # published figure measures going missing among guardian-supported children, so the gate
    # cannot see it. tests/test_child_outcomes.py catches it at the mechanism level
    # (test_a_direct_guardian_lowers_its_outcome_for_the_children_it_supports).
    # the NBA did nothing to RG decisions
    "no_nba_effect_on_rg": ("rg_decision.p_positive_nba", lambda v: 0.9),
    # no missing-prone minority: every child in care equally likely to go missing
    "no_missing_heterogeneity": ("care.missing_prone_rate_ratio", lambda v: 5.0),
    # re-trafficking three times as common
    "triple_re_trafficking": ("retrafficking.rate_per_year_child", lambda v: 3 * v),
}


# CI time (each check is four 2013-2025 runs, about 70 CPU-seconds): doubled capacity moves the
# same parameter as halved capacity, so it runs with the long profile (`-m scale`) only
ON_DEMAND = {"double_cg_capacity"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.scale) if n in ON_DEMAND else n for n in sorted(VARIANTS)],
)
def test_the_gate_rejects_a_wrong_variant(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, wrong = VARIANTS[name]
    value = within_range(key, wrong(fitted(key)))
    assert abs(value - fitted(key)) > 0.15 * abs(fitted(key)), "the variant must be wrong"
    code, result = check(capsys, "--scenario", str(variant(tmp_path, name, key, value)))
    failing = [t["id"] for t in result["targets"] if t["use"] == "fit" and not t["pass"]]
    assert code == 1, f"{name} ({key} = {value:.4g}) passed the gate"
    assert failing


# the fit's own seed, 20240601, is what `nrmsim check` runs by default: CI runs that command
# after the tests (.ci/run), so the tests check another seed, and a third under `-m scale`
@pytest.mark.parametrize("seed", [7, pytest.param(20261130, marks=pytest.mark.scale)])
def test_the_calibrated_historical_scenario_passes_at_several_seeds(
    seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches a fit that only holds at the seed it was fitted at (over-fitting to noise)."""
    code, result = check(capsys, "--seed", str(seed))
    failing = [
        (t["id"], round(t["distance"], 2))
        for t in result["targets"]
        if t["use"] == "fit" and not t["pass"]
    ]
    assert code == 0, f"seed {seed}: failing fit targets {failing}"
    counts = result["counts"]
    assert counts["fit/outcome"]["targets"] >= 25
    assert counts["fit/outcome"]["inside"] == counts["fit/outcome"]["targets"]
    assert counts["fit/input-check"]["inside"] == counts["fit/input-check"]["targets"]


def test_ensemble_membership_allows_monte_carlo_error_and_nothing_more() -> None:
    """Catches an ensemble test that ignores the tolerance (accepts anything with a large
    standard error of zero distance) or that is stricter or looser than the implausibility
    |sim - obs| / sqrt(tol^2 + se^2) <= 1."""
    import pandas as pd

    from model.calibration import not_implausible

    def table(distance: float, se: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"distance": [0.2, distance], "tolerance": [10.0, 10.0], "mc_se": [1.0, se]}
        )

    assert not_implausible(table(0.99, 0.0))
    assert not not_implausible(table(1.01, 0.0))
    # 12 off with tolerance 10 and se 7: 12 / sqrt(149) = 0.98 -> plausible; se 6 -> 1.03
    assert not_implausible(table(1.2, 7.0))
    assert not not_implausible(table(1.2, 6.0))
    assert not not_implausible(table(float("nan"), 1.0))
    assert not_implausible(table(-1.2, 7.0))
