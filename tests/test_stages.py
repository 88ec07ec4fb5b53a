"""One or more tests per pathway stage, each showing that the stage's levers act.

Every test changes parameters with ``Scenario.with_values`` on the ``small`` fixture (baseline
policy, Jan-Jun 2024) and reads the event log. A test that checks for the absence of something
also checks that it happens when the lever is not pulled, so it cannot pass on a model that
never produces it. Statistical checks allow four standard errors of a proportion.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from model.agents import OPEN_STATES, Child
from model.calendar import DAYS_PER_YEAR
from model.rng import Stream
from model.runner import simulate
from model.scenario import Scenario
from model.simulation import NRMModel, children_frame

BIG = 20_000.0  # referrals a year for statistical checks: ~8,700 children in six months
Z = 4.0  # standard errors allowed in statistical checks


# --------------------------------------------------------------------------- helpers
def run(scenario: Scenario, replicate: int = 0) -> tuple[NRMModel, pd.DataFrame, pd.DataFrame]:
    model = simulate(scenario, replicate)
    return model, model.log.to_frame(), children_frame(model)


def of(ev: pd.DataFrame, *names: str) -> pd.DataFrame:
    return ev[ev["event"].isin(names)]


def positive(frame: pd.DataFrame) -> pd.Series:
    return frame["positive"].fillna(False).astype(bool)


def referrals(ev: pd.DataFrame) -> pd.DataFrame:
    """Referrals that opened a case (not the linked or duplicate ones)."""
    ref = of(ev, "referred")
    ref = ref[ref["referral_kind"].isin(["new", "repeat"])][
        ["child_id", "episode", "t_days", "route"]
    ]
    return ref.rename(columns={"t_days": "t_ref"}).reset_index(drop=True)


def assert_share(k: int, n: int, p: float, what: str) -> None:
    assert n > 0, f"{what}: no observations"
    se = math.sqrt(p * (1.0 - p) / n) if 0 < p < 1 else 0.0
    assert abs(k / n - p) <= Z * se + 1e-12, (
        f"{what}: {k}/{n} = {k / n:.4f}, expected {p} (SE {se:.4f})"
    )


def age_at(children: pd.DataFrame, child_ids: pd.Series, t_days: pd.Series) -> np.ndarray:
    day18 = children.set_index("child_id")["day18"].reindex(child_ids).to_numpy()
    return 18.0 - (day18 - t_days.to_numpy()) / DAYS_PER_YEAR


def criminalised_by(ev: pd.DataFrame) -> dict[int, float]:
    """child -> time the child was first criminalised (at referral or later)."""
    crim = of(ev, "criminalised")
    return crim.groupby("child_id")["t_days"].min().to_dict()


def last_rg_positive_before(ev: pd.DataFrame) -> pd.DataFrame:
    """Per (child, episode): time of the (last) positive RG-type decision: a positive RG or an
    RG reconsideration that overturned a negative one."""
    rg = ev[
        ((ev["event"] == "rg_decided") & positive(ev))
        | (
            (ev["event"] == "reconsideration_decided")
            & (ev["decision_type"] == "rg")
            & positive(ev)
        )
    ]
    return (
        rg.groupby(["child_id", "episode"], as_index=False)["t_days"]
        .max()
        .rename(columns={"t_days": "t_rg"})
    )


# =========================================================================== 1 identification
def first_referral_times(ev: pd.DataFrame) -> np.ndarray:
    first = of(ev, "referred")
    return first[first["referral_kind"] == "new"].sort_values("child_id")["t_days"].to_numpy()


def new_child_rate(sc: Scenario) -> float:
    """New children a year at the observed identification rate: referrals x (1 - expected
    repeat share). (A faster identification rate acts through the unidentified pool; see
    test_child_outcomes.)"""
    e = sc.entries
    return e["identification.child_referrals_per_year"].value * (
        1.0 - e["identification.repeat_share_of_referrals"].value
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("identification.child_referrals_per_year", 2100.0),
        ("identification.repeat_share_of_referrals", 0.6),
    ],
)
def test_arrival_rate_levers_scale_new_referral_times(
    small: Scenario, key: str, value: float
) -> None:
    """Arrivals are a Poisson process with common random numbers: scaling the rate of new
    children by f divides every arrival time by f (volume, 1 - repeat share)."""
    changed = small.with_values({key: value})
    rate_factor = new_child_rate(changed) / new_child_rate(small)
    assert abs(rate_factor - 1.0) > 0.3
    _, base, _ = run(small)
    _, scaled, _ = run(changed)
    t0, t1 = first_referral_times(base), first_referral_times(scaled)
    n = min(len(t0), len(t1))
    assert n > 100
    np.testing.assert_allclose(t1[:n], t0[:n] / rate_factor, rtol=1e-9, atol=1e-9)
    assert len(t1) / len(t0) == pytest.approx(rate_factor, rel=0.25)


@pytest.mark.parametrize("volume", [700.0, 7000.0, BIG])
def test_new_children_count_is_poisson_with_the_declared_rate(
    small: Scenario, volume: float
) -> None:
    sc = small.with_values({"identification.child_referrals_per_year": volume})
    m, ev, children = run(sc)
    mean = new_child_rate(sc) / DAYS_PER_YEAR * m.end_day
    n = len(first_referral_times(ev))
    assert n == len(children)
    assert abs(n - mean) <= Z * math.sqrt(mean), f"{n} new children, Poisson mean {mean:.1f}"


MIX = {
    "identification.child_referrals_per_year": BIG,
    "identification.sex": {"female": 0.6, "male": 0.4},
    "identification.age_band": {"0-11": 0.2, "12-14": 0.3, "15-17": 0.5},
    "identification.youngest_age_years": 4.0,
    "identification.nationality": {
        "uk": 0.3,
        "albania": 0.2,
        "vietnam": 0.1,
        "eritrea": 0.1,
        "sudan": 0.1,
        "afghanistan": 0.1,
        "other": 0.1,
    },
    "identification.nation": {
        "england": 0.4,
        "wales": 0.2,
        "scotland": 0.25,
        "northern_ireland": 0.15,
    },
    "identification.exploitation_male": {
        "criminal": 0.1,
        "sexual": 0.3,
        "labour": 0.3,
        "domestic_servitude": 0.1,
        "mixed": 0.2,
    },
    "identification.p_parental_responsibility_uk": 0.5,
    "identification.p_parental_responsibility_non_uk": 0.1,
    "identification.p_exploited_overseas_uk": 0.25,
}


@pytest.fixture(scope="module")
def mix_children(small: Scenario) -> pd.DataFrame:
    return run(small.with_values(MIX))[2]


@pytest.mark.parametrize("column", ["sex", "nationality_group", "nation"])
def test_attribute_mix_follows_its_share(mix_children: pd.DataFrame, column: str) -> None:
    key = {
        "sex": "identification.sex",
        "nationality_group": "identification.nationality",
        "nation": "identification.nation",
    }[column]
    counts = mix_children[column].value_counts()
    n = len(mix_children)
    assert set(counts.index) <= set(MIX[key])
    for category, p in MIX[key].items():
        assert_share(int(counts.get(category, 0)), n, p, f"{column}={category}")


def test_age_bands_and_youngest_age_follow_the_levers(mix_children: pd.DataFrame) -> None:
    age = mix_children["age_years_at_first_referral"]
    assert age.min() >= 4.0 and age.max() < 18.0
    n = len(age)
    bands = {"0-11": (4.0, 12.0), "12-14": (12.0, 15.0), "15-17": (15.0, 18.0)}
    for band, (lo, hi) in bands.items():
        inside = (age >= lo) & (age < hi)
        assert_share(int(inside.sum()), n, MIX["identification.age_band"][band], f"age {band}")
        # uniform within the band: half below the midpoint
        assert_share(
            int((age[inside] < (lo + hi) / 2).sum()),
            int(inside.sum()),
            0.5,
            f"uniform within {band}",
        )


def test_exploitation_mix_follows_sex_specific_share(mix_children: pd.DataFrame) -> None:
    boys = mix_children[mix_children["sex"] == "male"]
    counts = boys["exploitation_type"].value_counts()
    for category, p in MIX["identification.exploitation_male"].items():
        assert_share(int(counts.get(category, 0)), len(boys), p, f"boys {category}")
    mixed = mix_children[mix_children["exploitation_type"] == "mixed"]["exploitation_types"]
    parts = mixed.str.split("+")
    assert (parts.str.len() == 2).all() and (parts.str[0] != parts.str[1]).all()
    single = mix_children[mix_children["exploitation_type"] != "mixed"]
    assert (single["exploitation_types"] == single["exploitation_type"]).all()


def test_parental_responsibility_and_overseas_follow_nationality(
    mix_children: pd.DataFrame,
) -> None:
    uk = mix_children["nationality_group"] == "uk"
    for mask, p, what in [(uk, 0.5, "PR uk"), (~uk, 0.1, "PR non-uk")]:
        sub = mix_children[mask]
        assert_share(int(sub["has_parental_responsibility"].sum()), len(sub), p, what)
    sub = mix_children[uk]
    assert_share(int(sub["exploited_overseas"].sum()), len(sub), 0.25, "overseas uk")


# =========================================================================== 2 RG decision
def test_no_devolved_pilot_route_without_pilot_local_authorities(small: Scenario) -> None:
    _, with_pilot, _ = run(small)
    assert (referrals(with_pilot)["route"] == "devolved_pilot").any()
    _, ev, _ = run(small.with_values({"devolved_pilot.la_count": 0}))
    assert (ev.loc[ev["child_id"] >= 0, "route"] == "home_office").all()


def test_route_follows_pilot_area_age_and_disqualification_rules(small: Scenario) -> None:
    la_count, exclusion = 120, 400.0
    m, ev, children = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "devolved_pilot.la_count": la_count,
                "devolved_pilot.exclusion_days_before_18": exclusion,
                "disqualification.p_considered_if_criminalised": 1.0,
            }
        )
    )
    assert m.params.policy.pod_policy == "s63_revised"
    ref = referrals(ev).merge(
        children[["child_id", "local_authority", "day18", "nation", "age_disputed"]],
        on="child_id",
    )
    crim = criminalised_by(ev)
    in_area = ref["local_authority"].map(lambda la: m.local_authorities.in_pilot(la, la_count))
    far_from_18 = (ref["day18"] - ref["t_ref"]) > exclusion
    # considered for disqualification: criminalised by the time of the referral
    considered_for_pod = [
        crim.get(c, math.inf) <= t for c, t in zip(ref["child_id"], ref["t_ref"], strict=True)
    ]
    # age-disputed at the first referral: excluded until assessed (a first referral always is)
    disputed = ref["age_disputed"].astype(bool) & (ref["episode"] == 0)
    expected = in_area & far_from_18 & ~pd.Series(considered_for_pod, index=ref.index) & ~disputed
    actual = ref["route"] == "devolved_pilot"
    pd.testing.assert_series_equal(actual, expected, check_names=False)
    # every branch of the rule is exercised
    assert expected.sum() > 50
    assert (in_area & ~far_from_18).sum() > 50
    assert (in_area & far_from_18 & ~expected).sum() > 0
    assert not actual[ref["nation"] == "northern_ireland"].any()


def amended(p: float, odds_ratio: float) -> float:
    odds = p / (1.0 - p) * odds_ratio
    return odds / (1.0 + odds)


@pytest.mark.parametrize(
    ("regime", "expected"),
    [
        ("pre_nba", 0.55),  # p_positive_pre_nba
        ("nba_objective", 0.35),  # p_positive_nba
        ("nba_amended", amended(0.35, 3.0)),  # p_positive_nba with the amended odds ratio
    ],
)
def test_rg_positive_rate_follows_the_regime_in_force(
    small: Scenario, regime: str, expected: float
) -> None:
    _, ev, _ = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": BIG,
                "devolved_pilot.la_count": 0,
                "policy.decision_regime": regime,
                "rg_decision.capacity_ratio_to_referrals": 3.0,
                "rg_decision.p_positive_pre_nba": 0.55,
                "rg_decision.p_positive_nba": 0.35,
                "rg_decision.nba_amended_odds_ratio": 3.0,
                "rg_decision.nba_overseas_odds_ratio": 1.0,
            }
        )
    )
    rg = of(ev, "rg_decided")
    assert (rg["regime"] == regime).all()
    assert_share(int(positive(rg).sum()), len(rg), expected, f"RG positive under {regime}")


@pytest.mark.parametrize("regime", ["pre_nba", "nba_amended"])
def test_panels_decide_under_the_law_in_force_times_their_odds_ratio(
    small: Scenario, regime: str
) -> None:
    """Issue 6 section 1: a panel's positive rate is the Home Office rate of the same regime
    times an odds ratio. Catches: fixed panel rates that ignore the regime (the old 0.9), an
    odds ratio applied to the Home Office route, or one applied as a probability ratio."""
    _, ev, _ = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": BIG,
                "devolved_pilot.la_count": 200,
                "devolved_pilot.exclusion_days_before_18": 0.0,
                "devolved_pilot.rg_odds_ratio": 3.0,
                "devolved_pilot.capacity_per_year_per_la": 1000.0,
                "policy.decision_regime": regime,
                "rg_decision.p_positive_pre_nba": 0.6,
                "rg_decision.p_positive_nba": 0.4,
                "rg_decision.nba_amended_odds_ratio": 1.5,
                "rg_decision.nba_overseas_odds_ratio": 1.0,
            }
        )
    )
    # the Home Office rate of the regime in force: the July 2023 amendment is an odds ratio
    home_rate = 0.6 if regime == "pre_nba" else amended(0.4, 1.5)
    rg = of(ev, "rg_decided")
    pilot = rg[rg["route"] == "devolved_pilot"]
    home = rg[rg["route"] == "home_office"]
    assert_share(int(positive(pilot).sum()), len(pilot), amended(home_rate, 3.0), "pilot RG")
    assert_share(int(positive(home).sum()), len(home), home_rate, "home office RG")


def rg_waits(ev: pd.DataFrame) -> pd.Series:
    ref = referrals(ev)
    ref = ref[(ref["episode"] == 0) & (ref["route"] == "home_office")]
    rg = of(ev, "rg_decided")[["child_id", "episode", "t_days"]]
    both = ref.merge(rg, on=["child_id", "episode"])
    return pd.Series((both["t_days"] - both["t_ref"]).to_numpy(), index=both["child_id"])


@pytest.mark.parametrize(("regime", "shift"), [("nba_objective", 25.0), ("nba_amended", 0.0)])
def test_objective_evidence_regime_delays_rg_by_the_extra_days(
    small: Scenario, regime: str, shift: float
) -> None:
    """With ample decision-makers, each Home Office RG under the objective-evidence test comes
    exactly ``extra_days_objective_evidence`` later than it would without the extra days (same
    random numbers); under the amended test the lever does nothing."""
    base = small.with_values(
        {
            "identification.child_referrals_per_year": 2000.0,
            "devolved_pilot.la_count": 0,
            "policy.decision_regime": regime,
            "rg_decision.capacity_ratio_to_referrals": 50.0,
        }
    )
    w0 = rg_waits(run(base.with_values({"rg_decision.extra_days_objective_evidence": 0.0}))[1])
    w1 = rg_waits(run(base.with_values({"rg_decision.extra_days_objective_evidence": 25.0}))[1])
    common = w0.index.intersection(w1.index)
    assert len(common) > 500
    np.testing.assert_allclose((w1[common] - w0[common]).to_numpy(), shift, atol=1e-6)
    assert (w1 >= shift - 1e-9).all()


# =========================================================================== 3 disqualification
CRIMINAL_HEAVY = {
    "identification.child_referrals_per_year": 7000.0,
    "justice.p_criminalised_if_criminal": 0.8,
    "disqualification.p_considered_if_criminalised": 1.0,
    "policy.ima_in_force": False,
}


def rg_became_positive(ev: pd.DataFrame) -> pd.DataFrame:
    """Moments an RG became positive: a positive RG decision, or a negative one overturned on
    reconsideration (public-order disqualification is considered at both)."""
    rg = of(ev, "rg_decided")
    overturned = of(ev, "reconsideration_decided")
    overturned = overturned[positive(overturned) & (overturned["decision_type"] == "rg").to_numpy()]
    return pd.concat([rg[positive(rg)], overturned])


def positive_rg_episodes_of_criminalised(ev: pd.DataFrame) -> pd.DataFrame:
    """Positive RGs of children criminalised by then (they are considered for POD)."""
    rg = rg_became_positive(ev)
    crim = criminalised_by(ev)
    mask = [crim.get(c, math.inf) <= t for c, t in zip(rg["child_id"], rg["t_days"], strict=True)]
    return rg[mask]


@pytest.mark.parametrize("pod_policy", ["none", "paused"])
def test_no_disqualification_when_pod_policy_not_in_force(small: Scenario, pod_policy: str) -> None:
    _, ev, _ = run(
        small.with_values(
            {
                **CRIMINAL_HEAVY,
                "policy.pod_policy": pod_policy,
                "disqualification.p_if_considered_original": 1.0,
                "disqualification.p_if_considered_revised": 1.0,
            }
        )
    )
    assert len(positive_rg_episodes_of_criminalised(ev)) > 100
    assert len(of(ev, "disqualified")) == 0


@pytest.mark.parametrize(
    ("ima", "pod_policy", "criminalised", "u_considered", "irregular", "expected"),
    [
        (True, "s63_revised", True, 0.1, True, 1 - 0.8 * 0.9),  # both routes
        (True, "s63_original", True, 0.1, True, 1 - 0.5 * 0.9),
        (True, "s63_revised", True, 0.9, True, 0.1),  # criminalised, not in the cohort
        (True, "s63_revised", False, 0.1, True, 0.1),  # the Act's route only
        (True, "none", True, 0.1, True, 0.1),
        (True, "s63_revised", True, 0.1, False, 0.2),  # the policy's route only
        (False, "s63_revised", False, 0.1, True, 0.0),
        (False, "paused", True, 0.1, True, 0.0),
    ],
)
def test_the_act_widens_disqualification_to_irregular_arrivals_as_a_second_route(
    small: Scenario,
    ima: bool,
    pod_policy: str,
    criminalised: bool,
    u_considered: float,
    irregular: bool,
    expected: float,
) -> None:
    """The chance of disqualification at a positive RG: the policy's rate for a child in the
    cohort, and under the Illegal Migration Act a second, independent route for an irregular
    arrival (p_ima_irregular_arrival = 0.1 here). Catches: the Act's rate replacing the
    policy's or adding to it without the overlap, the Act disqualifying every irregular
    arrival (two surviving mutants of ``applies`` gave 1 + ... and 2 - ...), acting on regular
    arrivals or while not in force, or the policy's rate for children outside the cohort."""
    from types import SimpleNamespace

    from model.stages import disqualification

    sc = small.with_values(
        {
            "policy.ima_in_force": ima,
            "policy.pod_policy": pod_policy,
            "disqualification.p_considered_if_criminalised": 0.15,
            "disqualification.p_if_considered_original": 0.5,
            "disqualification.p_if_considered_revised": 0.2,
            "disqualification.p_ima_irregular_arrival": 0.1,
        }
    )
    model = SimpleNamespace(
        params=sc.initial_params(), row=lambda _stream, _child: (u_considered, 0.5, 0.0, 0.0)
    )
    child = SimpleNamespace(criminalised=criminalised, arrived_irregularly=irregular)
    assert disqualification.p_disqualified(model, child) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pod_policy", "key", "other"),
    [
        ("s63_original", "p_if_considered_original", "p_if_considered_revised"),
        ("s63_revised", "p_if_considered_revised", "p_if_considered_original"),
    ],
)
def test_certain_disqualification_of_criminalised_children(
    small: Scenario, pod_policy: str, key: str, other: str
) -> None:
    sc = small.with_values({**CRIMINAL_HEAVY, "policy.pod_policy": pod_policy})
    # the other policy's probability is not used
    _, ev_none, _ = run(
        sc.with_values({f"disqualification.{key}": 0.0, f"disqualification.{other}": 1.0})
    )
    assert len(of(ev_none, "disqualified")) == 0
    _, ev, children = run(
        sc.with_values({f"disqualification.{key}": 1.0, f"disqualification.{other}": 0.0})
    )
    dq = of(ev, "disqualified")
    target = positive_rg_episodes_of_criminalised(ev)
    assert len(target) > 100
    # every criminalised child with a positive RG is disqualified at that moment, and nobody else
    got = set(zip(dq["child_id"], dq["episode"], dq["t_days"], strict=False))
    want = set(zip(target["child_id"], target["episode"], target["t_days"], strict=False))
    assert got == want
    assert children.set_index("child_id").loc[dq["child_id"].unique(), "criminalised"].all()
    assert (dq["regime"] == pod_policy).all()
    # a disqualified episode ends: no CG decision or reconsideration after it
    later = of(ev, "cg_decided", "reconsideration_requested").merge(
        dq[["child_id", "episode", "t_days"]], on=["child_id", "episode"], suffixes=("", "_dq")
    )
    assert (later["t_days"] < later["t_days_dq"]).all()


def test_disqualification_probability_among_criminalised(small: Scenario) -> None:
    p = 0.3
    _, ev, _ = run(
        small.with_values(
            {
                **CRIMINAL_HEAVY,
                "identification.child_referrals_per_year": BIG,
                "disqualification.p_if_considered_revised": p,
            }
        )
    )
    target = positive_rg_episodes_of_criminalised(ev)
    dq = of(ev, "disqualified")
    assert set(zip(dq["child_id"], dq["episode"], strict=False)) <= set(
        zip(target["child_id"], target["episode"], strict=False)
    )
    assert_share(len(dq), len(target), p, "disqualified among criminalised positive RG")


def test_illegal_migration_act_lever_widens_disqualification(small: Scenario) -> None:
    _, ev, children = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "policy.pod_policy": "none",
                "policy.ima_in_force": True,
                "disqualification.p_ima_irregular_arrival": 1.0,
            }
        )
    )
    rg = rg_became_positive(ev).merge(
        children[["child_id", "nationality_group", "arrived_irregularly"]], on="child_id"
    )
    cohort = rg[rg["arrived_irregularly"]]
    assert (rg.loc[rg["arrived_irregularly"], "nationality_group"] != "uk").all()
    dq = of(ev, "disqualified")
    assert len(cohort) > 100
    assert set(zip(dq["child_id"], dq["episode"], strict=False)) == set(
        zip(cohort["child_id"], cohort["episode"], strict=False)
    )


# =========================================================================== 4 CG decision
def cg_after_rg(ev: pd.DataFrame, route: str = "home_office") -> pd.DataFrame:
    cg = of(ev, "cg_decided")
    cg = cg[cg["route"] == route][["child_id", "episode", "t_days"]]
    return cg.merge(last_rg_positive_before(ev), on=["child_id", "episode"])


def test_no_cg_before_the_recovery_period(small: Scenario) -> None:
    recovery = 75.0
    _, ev, _ = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 3000.0,
                "cg_decision.min_recovery_days": recovery,
                "cg_decision.capacity_multiplier": 100.0,
            }
        )
    )
    both = cg_after_rg(ev)
    assert len(both) > 100
    gap = both["t_days"] - both["t_rg"]
    assert (gap >= recovery - 1e-9).all()
    assert gap.min() < recovery + 2.0  # the recovery period, not something longer, binds


def test_cg_wait_is_recovery_plus_service_when_capacity_is_ample(small: Scenario) -> None:
    """No queue: each CG comes exactly min_recovery_days + the child's own work time after RG."""
    m, ev, _ = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 3000.0,
                "devolved_pilot.la_count": 0,
                "cg_decision.capacity_multiplier": 100.0,
                "cg_decision.min_recovery_days_scotland": 30.0,
            }
        )
    )
    p = m.params.cg_decision
    rg = of(ev, "rg_decided")
    rg = rg[positive(rg) & (rg["episode"] == 0)][["child_id", "t_days"]].rename(
        columns={"t_days": "t_rg"}
    )
    cg = of(ev, "cg_decided")
    cg = cg[cg["episode"] == 0][["child_id", "t_days"]]
    both = cg.merge(rg, on="child_id")
    assert len(both) > 300
    kids = {c.unique_id: c for c in m.agents_by_type[Child]}
    a, _ = m.draws.offsets[Stream.CG]
    work = np.array(
        [-p.mean_work_days * math.log1p(-m.draws.row(kids[c].index)[a]) for c in both["child_id"]]
    )
    np.testing.assert_allclose(both["t_days"] - both["t_rg"], p.min_recovery_days + work, atol=1e-6)


def referral_to_cg(ev: pd.DataFrame) -> pd.DataFrame:
    cg = of(ev, "cg_decided")
    cg = cg[cg["route"] == "home_office"][["child_id", "episode", "t_days"]]
    both = cg.merge(referrals(ev), on=["child_id", "episode"])
    return both.assign(wait=both["t_days"] - both["t_ref"])


def test_lower_cg_capacity_lengthens_referral_to_cg(baseline: Scenario) -> None:
    """Waits emerge from the queue: less capacity, longer waits (one year, 3,500 referrals)."""
    sc = baseline.with_values(
        {"identification.child_referrals_per_year": 3500.0, "cg_decision.capacity_per_year": 3450.0}
    )
    low = referral_to_cg(run(sc.with_values({"cg_decision.capacity_multiplier": 0.4}))[1])
    high = referral_to_cg(run(sc.with_values({"cg_decision.capacity_multiplier": 1.0}))[1])
    assert low["wait"].median() > high["wait"].median() + 20.0
    assert len(low) < len(high)  # fewer decisions made in the year
    paired = low.merge(high, on=["child_id", "episode"], suffixes=("_low", "_high"))
    assert (paired["wait_low"] > paired["wait_high"] + 1.0).mean() > 0.5


# =========================================================================== 5 reconsideration
RECON = {
    "identification.child_referrals_per_year": 7000.0,
    "reconsideration.p_request_rg": 1.0,
    "reconsideration.p_request_cg": 1.0,
    "rg_decision.p_positive_nba": 0.5,
    "cg_decision.p_positive_nba": 0.5,
    "cg_decision.capacity_multiplier": 100.0,
}


def test_zero_window_means_no_reconsideration_requests(small: Scenario) -> None:
    sc = small.with_values(RECON)
    _, ev, _ = run(sc)
    assert len(of(ev, "reconsideration_requested")) > 50
    _, ev0, _ = run(sc.with_values({"policy.reconsideration_window_days": 0.0}))
    assert len(of(ev0, "reconsideration_requested")) == 0
    assert len(of(ev0, "reconsideration_decided")) == 0


def test_requests_fall_inside_the_window_and_a_shorter_window_means_fewer(small: Scenario) -> None:
    counts = {}
    for window in (10.0, 60.0):
        _, ev, _ = run(small.with_values({**RECON, "policy.reconsideration_window_days": window}))
        req = of(ev, "reconsideration_requested")
        counts[window] = len(req)
        for kind, decided in (("rg", "rg_decided"), ("cg", "cg_decided")):
            neg = of(ev, decided)
            neg = neg[~positive(neg)][["child_id", "episode", "t_days"]].rename(
                columns={"t_days": "t_neg"}
            )
            r = req[req["decision_type"] == kind][["child_id", "episode", "t_days"]].merge(
                neg, on=["child_id", "episode"], how="left"
            )
            assert r["t_neg"].notna().all(), f"{kind} request without a negative decision"
            delay = r["t_days"] - r["t_neg"]
            assert ((delay > 0) & (delay <= window + 1e-9)).all(), f"{kind} request outside window"
            assert len(r) > 10
    assert counts[10.0] < 0.6 * counts[60.0]


@pytest.mark.parametrize("p_overturned", [0.0, 1.0])
def test_overturn_probability_sets_reconsideration_outcomes(
    small: Scenario, p_overturned: float
) -> None:
    _, ev, _ = run(
        small.with_values(
            {
                **RECON,
                "reconsideration.p_overturned": p_overturned,
                "reconsideration.mean_days_to_decide": 10.0,
            }
        )
    )
    decided = of(ev, "reconsideration_decided")
    assert len(decided) > 50
    assert (positive(decided) == bool(p_overturned)).all()
    if p_overturned:  # an overturned RG goes on to the CG stage
        rg = decided[decided["decision_type"] == "rg"]
        cg = of(ev, "cg_decided")
        went_on = set(zip(cg["child_id"], cg["episode"], strict=False))
        assert any(k in went_on for k in zip(rg["child_id"], rg["episode"], strict=False))


# =========================================================================== 6 care
def placements(ev: pd.DataFrame, kind: str | None = None) -> pd.DataFrame:
    placed = of(ev, "placed")
    return placed if kind is None else placed[placed["placement_type"] == kind]


def test_hotels_only_while_hotels_in_use(small: Scenario) -> None:
    sc = small.with_values(
        {
            "identification.child_referrals_per_year": 7000.0,
            "care.capacity_hotel": 500,
            "care.p_hotel_if_separated_non_uk": 1.0,
        }
    )
    _, ev_off, _ = run(sc.with_values({"policy.hotels_in_use": False}))
    assert len(placements(ev_off, "hotel")) == 0
    assert len(placements(ev_off)) > 100
    _, ev_on, children = run(sc.with_values({"policy.hotels_in_use": True}))
    hotel = placements(ev_on, "hotel").merge(children, on="child_id")
    assert len(hotel) > 100
    assert (hotel["nationality_group"] != "uk").all()
    assert (~hotel["has_parental_responsibility"]).all()


@pytest.fixture(scope="module")
def crossing_run(crossing_2023: Scenario) -> tuple[NRMModel, pd.DataFrame]:
    m = simulate(crossing_2023, 0)
    return m, m.log.to_frame()


@pytest.mark.slow
def test_no_hotel_placements_after_hotels_closed_on_the_timeline(crossing_run) -> None:
    m, ev = crossing_run
    closed = m.calendar.day(dt.date(2024, 1, 15))
    opened = m.calendar.day(dt.date(2021, 7, 1))
    hotel = placements(ev, "hotel")
    assert ((hotel["t_days"] >= opened) & (hotel["t_days"] < closed)).all()
    assert (hotel["t_days"] >= m.calendar.day(dt.date(2023, 1, 1))).sum() > 20


def test_no_supported_accommodation_for_under_16s(small: Scenario) -> None:
    """Foster and children's homes full: under-16s may not overflow to supported accommodation."""
    _, ev, children = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "identification.age_band": {"0-11": 0.3, "12-14": 0.4, "15-17": 0.3},
                "care.capacity_foster": 0,
                "care.capacity_childrens_home": 0,
            }
        )
    )
    placed = placements(ev)
    age = age_at(children, placed["child_id"], placed["t_days"])
    supported = (placed["placement_type"] == "supported_accommodation").to_numpy()
    assert supported.sum() > 50
    assert (age[supported] >= 16.0).all()
    assert (age < 16.0).sum() > 5  # younger children are placed, just not there
    separated_young = children[
        ~children["has_parental_responsibility"] & (children["age_years_at_first_referral"] < 15.0)
    ]
    assert len(separated_young) > 50


def test_zero_foster_capacity_means_no_foster_placements(small: Scenario) -> None:
    sc = small.with_values({"identification.child_referrals_per_year": 7000.0})
    _, ev, _ = run(sc)
    assert len(placements(ev, "foster")) > 50
    _, ev0, _ = run(sc.with_values({"care.capacity_foster": 0}))
    assert len(placements(ev0, "foster")) == 0
    assert len(placements(ev0)) > 50


def concurrent(ev: pd.DataFrame, kind: str) -> np.ndarray:
    spells = of(ev, "placed", "placement_ended")
    spells = spells[spells["placement_type"] == kind]
    step = np.where(spells["event"] == "placed", 1, -1)
    order = np.lexsort((step, spells["t_days"].to_numpy()))  # ends before starts at equal times
    return np.cumsum(step[order])


def test_placements_of_a_type_never_exceed_its_capacity(small: Scenario) -> None:
    _, ev, _ = run(
        small.with_values(
            {"identification.child_referrals_per_year": 7000.0, "care.capacity_childrens_home": 25}
        )
    )
    level = concurrent(ev, "childrens_home")
    assert level.max() == 25  # binding, never exceeded


def test_placement_ended_never_before_placed(small: Scenario) -> None:
    _, ev, _ = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "care.p_placed_with_parental_responsibility": 0.6,
                "care.mean_stay_days_with_parental_responsibility": 30.0,
            }
        )
    )
    spells = of(ev, "placed", "placement_ended")
    n_ended = 0
    open_spells: dict[tuple[int, str], list[float]] = defaultdict(list)
    for child, kind, event, t, value in zip(
        spells["child_id"],
        spells["placement_type"],
        spells["event"],
        spells["t_days"],
        spells["value"],
        strict=False,
    ):
        if event == "placed":
            open_spells[(child, kind)].append(t)
        else:
            assert open_spells[(child, kind)], f"child {child}: {kind} ended before it was placed"
            start = open_spells[(child, kind)].pop(0)
            assert value == pytest.approx(t - start, abs=1e-6)
            n_ended += 1
    assert n_ended > 200


def test_zero_missing_rates_mean_nobody_goes_missing(small: Scenario) -> None:
    sc = small.with_values({"identification.child_referrals_per_year": 7000.0})
    _, ev, _ = run(sc)
    went, back = of(ev, "went_missing"), of(ev, "returned")
    assert len(went) > 100
    # a return comes `value` days after the child went missing
    starts = set(zip(went["child_id"], went["t_days"].round(6), strict=False))
    assert all(
        (c, round(t - v, 6)) in starts
        for c, t, v in zip(back["child_id"], back["t_days"], back["value"], strict=False)
    )
    zero = {"care.missing_rate_foster": 0.0, "care.missing_rate_hotel": 0.0}
    _, ev0, _ = run(sc.with_values(zero))
    assert len(of(ev0, "went_missing", "returned")) == 0
    trafficked = of(ev0, "re_trafficked")
    assert (trafficked["reason"] != "missing").all()


# =========================================================================== 7 guardianship
def allocations(ev: pd.DataFrame, children: pd.DataFrame) -> pd.DataFrame:
    return of(ev, "guardian_allocated").merge(children.drop(columns="guardian_kind"), on="child_id")


def test_zero_ictg_coverage_means_no_ictg_allocations(small: Scenario) -> None:
    sc = small.with_values({"identification.child_referrals_per_year": 7000.0})
    _, ev, _ = run(sc)
    kinds = of(ev, "guardian_allocated")["guardian_kind"]
    assert (kinds == "ictg_direct").sum() > 20 and (kinds == "ictg_indirect").sum() > 20
    _, ev0, _ = run(sc.with_values({"guardianship.ictg_coverage_share": 0.0}))
    kinds0 = of(ev0, "guardian_allocated")["guardian_kind"]
    assert not kinds0.isin(["ictg_direct", "ictg_indirect"]).any()
    assert len(kinds0) > 0  # Scotland and Northern Ireland services still allocate


def test_guardian_kind_follows_parental_responsibility_and_nation(small: Scenario) -> None:
    _, ev, children = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "identification.nation": {
                    "england": 0.4,
                    "wales": 0.2,
                    "scotland": 0.2,
                    "northern_ireland": 0.2,
                },
            }
        )
    )
    alloc = allocations(ev, children)
    kinds = alloc["guardian_kind"]
    for kind in (
        "ictg_direct",
        "ictg_indirect",
        "scottish_guardianship",
        "ni_independent_guardian",
    ):
        assert (kinds == kind).sum() > 10, kind
    pr = alloc["has_parental_responsibility"]
    assert not pr[kinds == "ictg_direct"].any()
    assert pr[kinds == "ictg_indirect"].all()
    assert alloc.loc[kinds.str.startswith("ictg"), "nation"].isin(["england", "wales"]).all()
    assert (alloc.loc[kinds == "scottish_guardianship", "nation"] == "scotland").all()
    assert (alloc.loc[kinds == "ni_independent_guardian", "nation"] == "northern_ireland").all()
    assert not pr[kinds.isin(["scottish_guardianship", "ni_independent_guardian"])].any()


def test_zero_direct_caseload_means_no_direct_allocations(small: Scenario) -> None:
    _, ev, _ = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "guardianship.ictg_direct_caseload": 0,
            }
        )
    )
    kinds = of(ev, "guardian_allocated")["guardian_kind"]
    assert (kinds == "ictg_direct").sum() == 0
    assert (kinds == "ictg_indirect").sum() > 20


def test_devolved_guardian_services_can_be_switched_off(small: Scenario) -> None:
    _, ev, _ = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "identification.nation": {
                    "england": 0.4,
                    "wales": 0.2,
                    "scotland": 0.2,
                    "northern_ireland": 0.2,
                },
                "guardianship.scotland_service": False,
                "guardianship.northern_ireland_service": False,
            }
        )
    )
    kinds = of(ev, "guardian_allocated")["guardian_kind"]
    assert not kinds.isin(["scottish_guardianship", "ni_independent_guardian"]).any()
    assert len(kinds) > 50


# =========================================================================== 8 justice
JUSTICE_FAST = {
    "identification.child_referrals_per_year": 3000.0,
    "justice.p_investigation": 1.0,
    "justice.mean_days_to_investigation": 10.0,
    "justice.p_charged": 0.5,
    "justice.mean_days_to_charge": 20.0,
    "justice.mean_days_charge_to_outcome": 20.0,
}
JUSTICE_EVENTS = ("investigation_opened", "charged", "prosecution_completed", "convicted")


def test_zero_investigation_probability_means_no_justice_events(small: Scenario) -> None:
    _, ev, _ = run(small.with_values(JUSTICE_FAST))
    assert len(of(ev, *JUSTICE_EVENTS)) > 100
    _, ev0, _ = run(small.with_values({**JUSTICE_FAST, "justice.p_investigation": 0.0}))
    assert len(of(ev0, *JUSTICE_EVENTS)) == 0


def test_charges_follow_investigations_and_convictions_follow_positive_prosecutions(
    small: Scenario,
) -> None:
    _, ev, _ = run(small.with_values(JUSTICE_FAST))
    counts = {e: 0 for e in JUSTICE_EVENTS}
    steps = of(ev, *JUSTICE_EVENTS)
    running: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(JUSTICE_EVENTS, 0))
    for child, event in zip(steps["child_id"], steps["event"], strict=False):
        c = running[child]
        c[event] += 1
        counts[event] += 1
        assert c["charged"] <= c["investigation_opened"], f"child {child}: charged first"
        assert c["prosecution_completed"] <= c["charged"], f"child {child}: prosecuted first"
    assert counts["charged"] > 50 and counts["prosecution_completed"] > 20
    done = of(ev, "prosecution_completed")
    conv = of(ev, "convicted")
    pos = done[positive(done)]
    good = set(zip(pos["child_id"], pos["t_days"], strict=True))
    assert set(zip(conv["child_id"], conv["t_days"], strict=False)) == good
    assert len(conv) == positive(done).sum() > 0


@pytest.mark.parametrize("p_convicted", [0.0, 1.0])
def test_conviction_probability(small: Scenario, p_convicted: float) -> None:
    _, ev, _ = run(small.with_values({**JUSTICE_FAST, "justice.p_convicted": p_convicted}))
    done = of(ev, "prosecution_completed")
    assert len(done) > 20
    assert (positive(done) == bool(p_convicted)).all()
    assert len(of(ev, "convicted")) == (len(done) if p_convicted else 0)


def test_only_children_exploited_into_crime_are_criminalised(small: Scenario) -> None:
    sc = small.with_values(
        {
            "identification.child_referrals_per_year": 7000.0,
            "justice.p_criminalised_if_criminal": 0.8,
        }
    )
    _, ev, children = run(sc)
    crim = of(ev, "criminalised").merge(children, on="child_id")
    assert len(crim) > 200
    assert crim["exploitation_types"].str.contains("criminal").all()
    zero = {"justice.p_criminalised_if_criminal": 0.0, "justice.criminalisation_rate_per_year": 0.0}
    _, ev0, _ = run(sc.with_values(zero))
    assert len(of(ev0, "criminalised")) == 0


# =========================================================================== 9 leave
LEAVE_FAST = {
    "identification.child_referrals_per_year": 7000.0,
    "leave.p_grant_confirmed_child": 1.0,
    "leave.mean_days_to_grant": 5.0,
    "cg_decision.capacity_multiplier": 100.0,
}


def test_leave_only_for_non_uk_children_with_positive_cg(small: Scenario) -> None:
    m, ev, children = run(small.with_values(LEAVE_FAST))
    leave = of(ev, "leave_granted").merge(
        children[["child_id", "nationality_group"]], on="child_id"
    )
    assert len(leave) > 50
    assert (leave["nationality_group"] != "uk").all()
    conf = ev[
        (
            (ev["event"] == "cg_decided")
            | ((ev["event"] == "reconsideration_decided") & (ev["decision_type"] == "cg"))
        )
        & positive(ev)
    ]
    conf = conf.merge(children[["child_id", "nationality_group"]], on="child_id")
    first_conf = conf.groupby(["child_id", "episode"])["t_days"].min()
    rows = zip(leave["child_id"], leave["episode"], leave["t_days"], strict=True)
    for child, episode, t in rows:
        assert first_conf.get((child, episode), math.inf) <= t
    # with p = 1 every non-UK child confirmed well before the end gets leave; UK children never
    early = conf[(conf["t_days"] < m.end_day - 150) & (conf["nationality_group"] != "uk")]
    assert set(zip(early["child_id"], early["episode"], strict=False)) <= set(
        zip(leave["child_id"], leave["episode"], strict=False)
    )
    assert (conf["nationality_group"] == "uk").sum() > 20


def test_zero_grant_probability_means_no_leave(small: Scenario) -> None:
    _, ev, _ = run(small.with_values({**LEAVE_FAST, "leave.p_grant_confirmed_child": 0.0}))
    assert len(of(ev, "cg_decided")) > 100
    assert len(of(ev, "leave_granted")) == 0


# =========================================================================== 10a transition at 18
@pytest.mark.parametrize(
    ("p_withdrawn", "p_suspended", "outcome"),
    [(1.0, 0.0, "withdrawn"), (0.0, 1.0, "suspended"), (0.0, 0.0, "continued_as_adult")],
)
def test_outcome_at_18_follows_the_probabilities(
    small: Scenario, p_withdrawn: float, p_suspended: float, outcome: str
) -> None:
    _m, ev, children = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "transition.p_withdrawn": p_withdrawn,
                "transition.p_suspended": p_suspended,
            }
        )
    )
    t18 = of(ev, "turned_18")
    assert len(t18) > 50
    day18 = children.set_index("child_id")["day18"]
    # handled at the first midnight after the 18th birthday
    np.testing.assert_allclose(
        t18["t_days"], np.ceil(day18.loc[t18["child_id"]].to_numpy()), atol=1e-9
    )
    follow = of(ev, "withdrawn", "suspended", "continued_as_adult")
    at18 = follow[follow["event"] != "continued_as_adult"]
    assert at18["reason"].isin(["at_18", "no_consent_at_18"]).all()
    key = ["child_id", "episode", "t_days"]
    got = follow[[*key, "event"]].merge(t18[key], on=key)
    assert len(got) == len(t18) == len(follow)
    assert (got["event"] == outcome).all()
    if outcome != "continued_as_adult":  # the case closed and left any decision queue
        closed = set(zip(t18["child_id"], t18["episode"], strict=False))
        dec = of(ev, "rg_decided", "cg_decided")
        later = dec[[k in closed for k in zip(dec["child_id"], dec["episode"], strict=False)]]
        t_close = t18.set_index(["child_id", "episode"])["t_days"]
        assert all(
            t < t_close[(c, e)]
            for c, e, t in zip(later["child_id"], later["episode"], later["t_days"], strict=False)
        )


def test_turned_18_only_while_the_case_is_open(small: Scenario) -> None:
    """Every RG is negative and nobody asks for reconsideration, so a case closes at its RG:
    a child who turns 18 after that must not get a turned_18 event for that episode."""
    _, ev, children = run(
        small.with_values(
            {
                "identification.child_referrals_per_year": 7000.0,
                "devolved_pilot.la_count": 0,
                "rg_decision.p_positive_nba": 0.0,
                "reconsideration.p_request_rg": 0.0,
                "rg_decision.capacity_ratio_to_referrals": 10.0,
                "rg_decision.mean_work_days": 20.0,
            }
        )
    )
    rg = of(ev, "rg_decided")[["child_id", "episode", "t_days"]].rename(columns={"t_days": "t_rg"})
    t18 = of(ev, "turned_18")[["child_id", "episode", "t_days"]]
    joined = t18.merge(rg, on=["child_id", "episode"], how="left")
    assert (joined["t_rg"].isna() | (joined["t_days"] < joined["t_rg"])).all()
    assert len(t18) > 10  # open cases do age out
    closed_then_18 = rg.merge(children[["child_id", "day18"]], on="child_id")
    closed_then_18 = closed_then_18[
        (closed_then_18["day18"] > closed_then_18["t_rg"])
        & (closed_then_18["day18"] < ev["t_days"].max())
    ]
    assert len(closed_then_18) > 50


# =========================================================================== 10b re-trafficking
NO_RETRAFFICKING = {
    "retrafficking.rate_per_year_child": 0.0,
    "retrafficking.rate_per_year_after_18": 0.0,
    "retrafficking.p_duplicate_referral": 0.0,
    "care.p_unfound_per_episode": 0.0,
}
REPEATS = {
    "identification.child_referrals_per_year": 5000.0,
    "retrafficking.rate_per_year_child": 3.0,
    "retrafficking.p_re_referred": 1.0,
    "retrafficking.mean_days_to_re_referral": 5.0,
    "retrafficking.p_duplicate_referral": 0.0,
}


def repeat_rows(ev: pd.DataFrame) -> pd.DataFrame:
    ref = of(ev, "referred")
    return ref[ref["is_repeat"].astype(bool)]


def test_no_retrafficking_means_no_repeat_referrals(small: Scenario) -> None:
    """Catches: repeat referrals generated by anything but re-trafficking (or duplicates)."""
    _, ev, _ = run(small.with_values(REPEATS))
    assert len(repeat_rows(ev)) > 100
    _, ev0, children = run(small.with_values({**REPEATS, **NO_RETRAFFICKING}))
    assert len(of(ev0, "re_trafficked")) == 0
    assert len(repeat_rows(ev0)) == 0
    assert (referrals(ev0)["episode"] == 0).all()
    assert (children["referrals"] == 1).all()


def test_zero_re_referral_probability_means_no_repeat_referrals(small: Scenario) -> None:
    _, ev, _ = run(small.with_values({**REPEATS, "retrafficking.p_re_referred": 0.0}))
    assert len(of(ev, "re_trafficked")) > 100
    assert len(repeat_rows(ev)) == 0
    assert (of(ev, "referred")["episode"] == 0).all()


def test_repeat_referrals_join_an_open_case_or_open_a_new_one(small: Scenario) -> None:
    """Issue 6 section 4: a repeat referral of a child with an open case is recorded on that
    case (``linked``, same episode, no new decision); only a child with no open case starts a
    new episode. Catches: the old behaviour (an open case superseded and restarted at RG), and
    a closed case reopened by a linked referral."""
    _, ev, children = run(small.with_values({**REPEATS, "rg_decision.mean_work_days": 30.0}))
    ref = of(ev, "referred")
    rep = repeat_rows(ev)
    assert (rep["referral_kind"] == "linked").sum() > 50
    assert (rep["referral_kind"] == "repeat").sum() > 20
    assert len(of(ev, "superseded")) == 0
    closed = of(ev, "case_closed").groupby(["child_id", "episode"])["t_days"].min()
    for child, episode, t, kind in zip(
        rep["child_id"], rep["episode"], rep["t_days"], rep["referral_kind"], strict=True
    ):
        if kind == "linked":
            assert closed.get((child, episode), math.inf) > t, "linked to a closed case"
        else:  # a new episode: the previous one had closed
            assert closed.get((child, episode - 1), math.inf) <= t, "an open case restarted"
    # episodes count up by one; the children table counts every referral
    per_child = referrals(ev).groupby("child_id")["episode"].agg(["min", "max", "count"])
    assert (per_child["min"] == 0).all() and (per_child["count"] == per_child["max"] + 1).all()
    assert (children.set_index("child_id")["referrals"] == ref.groupby("child_id").size()).all()
    # every repeat referral follows a re-trafficking event, and comes before the 18th birthday
    rt = of(ev, "re_trafficked").groupby("child_id")["t_days"].min()
    assert (rep["t_days"].to_numpy() > rt.loc[rep["child_id"]].to_numpy()).all()
    day18 = children.set_index("child_id")["day18"]
    assert (rep["t_days"].to_numpy() < day18.loc[rep["child_id"]].to_numpy()).all()


def test_duplicate_referrals_join_the_case_without_a_decision(small: Scenario) -> None:
    """Catches: a duplicate (same instance) counted as a new case or re-decided."""
    sc = small.with_values(
        {
            **NO_RETRAFFICKING,
            "identification.child_referrals_per_year": 5000.0,
            "retrafficking.p_duplicate_referral": 0.5,
        }
    )
    _, ev, _ = run(sc)
    dup = of(ev, "referred")
    dup = dup[dup["referral_kind"] == "duplicate"]
    n_cases = len(referrals(ev))
    assert len(dup) > 100
    assert dup["linked"].astype(bool).all() and dup["is_repeat"].astype(bool).all()
    # about half of the cases get one (a few too late to fall inside the run)
    assert 0.3 * n_cases < len(dup) <= 0.5 * n_cases + 4 * math.sqrt(n_cases)
    assert not of(ev, "rg_decided").duplicated(["child_id", "episode"]).any()
    assert (referrals(ev)["episode"] == 0).all()


# ---- bookkeeping of repeat referrals: one child, one set of side processes
def test_no_decision_job_is_orphaned(small: Scenario) -> None:
    """Every job waiting in a decision queue belongs to an open case reachable through
    ``child.job`` (so that it can be cancelled at 18 or at the end of the follow-up)."""
    m = simulate(small.with_values({**REPEATS, "rg_decision.mean_work_days": 30.0}), 0)
    kids = list(m.agents_by_type[Child])
    assert sum(c.episode > 0 for c in kids) > 20
    held = {id(c.job) for c in kids if c.job is not None}
    assert not [c.unique_id for c in kids if c.job is not None and c.state not in OPEN_STATES]
    for queue in (m.rg_queue, m.cg_queue, m.pilot_queue):
        orphans = [j for j in queue.waiting if not j.cancelled and id(j) not in held]
        assert orphans == [], f"{queue.name}: {len(orphans)} queued jobs belong to no open case"


def test_a_child_holds_at_most_one_placement_at_a_time(small: Scenario) -> None:
    """A child still waiting for a place who is referred again must not end up in two
    placements at once."""
    # foster places are full but turn over (short stays); secure places are always free; a
    # child waiting for foster who is re-trafficked and referred again may draw secure
    mix = {
        "foster": 0.5,
        "childrens_home": 0.0,
        "supported_accommodation": 0.0,
        "secure": 0.5,
        "hotel": 0.0,
    }
    _, ev, _ = run(
        small.with_values(
            {
                **REPEATS,
                "retrafficking.rate_per_year_child": 20.0,
                "care.type_under_16": mix,
                "care.type_16_17": mix,
                "care.capacity_foster": 100,
                "care.capacity_childrens_home": 0,
                "care.capacity_supported_accommodation": 0,
                "care.capacity_secure": 100_000,
                "care.p_placed_with_parental_responsibility": 1.0,
                "care.mean_stay_days_with_parental_responsibility": 15.0,
            }
        )
    )
    spells = of(ev, "placed", "placement_ended")
    assert len(spells) > 1000
    step = np.where(spells["event"] == "placed", 1, -1)
    level = pd.Series(step, index=spells.index).groupby(spells["child_id"]).cumsum()
    doubled = sorted(spells.loc[level > 1, "child_id"].unique().tolist())
    assert doubled == [], f"children in two placements at once: {doubled[:10]}"


def test_a_child_has_at_most_one_guardian_at_a_time(small: Scenario) -> None:
    """A child waiting for a direct ICTG who is referred again must not be allocated twice;
    a new allocation comes only after the previous support ended."""
    _, ev, _ = run(
        small.with_values(
            {
                **REPEATS,
                "care.p_placed_separated": 0.0,
                "guardianship.ictg_direct_caseload": 30,
                "guardianship.max_support_days": 20.0,
                "guardianship.p_referred_to_ictg": 1.0,
            }
        )
    )
    alloc = of(ev, "guardian_allocated")
    assert len(alloc) > 200
    spells = of(ev, "guardian_allocated", "guardian_ended")
    step = np.where(spells["event"] == "guardian_allocated", 1, -1)
    level = pd.Series(step, index=spells.index).groupby(spells["child_id"]).cumsum()
    twice = sorted(spells.loc[level > 1, "child_id"].unique().tolist())
    assert twice == [], f"{len(twice)} children with two guardians at once: {twice[:10]}"
