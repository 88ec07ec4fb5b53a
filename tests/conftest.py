"""Shared fixtures: small, fast scenarios built from the real scenario files."""

from __future__ import annotations

import datetime as dt

import pytest

from model.scenario import Scenario, load_scenario


@pytest.fixture(scope="session")
def baseline() -> Scenario:
    return load_scenario("baseline")


@pytest.fixture(scope="session")
def historical() -> Scenario:
    return load_scenario("historical")


@pytest.fixture(scope="session")
def small(baseline: Scenario) -> Scenario:
    """Baseline policy, six months, a tenth of the referral volume: about 300 children."""
    return baseline.with_run(end=dt.date(2024, 6, 30)).with_values(
        {"identification.child_referrals_per_year": 700.0}
    )


@pytest.fixture(scope="session")
def crossing_2023(historical: Scenario) -> Scenario:
    """Historical timeline 2022-07-01 to 2024-06-30 (about 14,000 referrals): crosses the
    NBA changes, POD dates, hotel closure and the reconsideration window change."""
    return historical.with_run(start=dt.date(2022, 7, 1), end=dt.date(2024, 6, 30))
