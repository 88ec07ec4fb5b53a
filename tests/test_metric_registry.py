"""One metric registry (``model.results.REGISTRY``): every metric a command can write is in it
with every field set, and the consumers (report, terminal tables, observation layer, sweep
analysis, cost invariant) read it rather than their own lists or name suffixes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.calibration import load_targets
from model.cli import _fmt, print_table
from model.common import PLACEMENT_TYPES
from model.observe import Context, load_observation, published_tables
from model.report import metrics as report_metrics
from model.results import (
    DIRECTIONS,
    GROUP_BYS,
    KEY_METRICS,
    KINDS,
    PAYER_METRICS,
    PAYERS,
    REGISTRY,
    TAGS,
    UNIT_DISPLAY,
    Analysis,
    tagged,
)
from model.runner import RunResult, RunSpec, run_one
from model.scenario import Scenario
from model.sweeps import analysis as sweep_analysis
from model.sweeps.spec import EXPERIMENT_DIR, load_experiment

DISPLAYS = {"count", "share", "days", "years", "gbp"}
REPORT_SECTIONS = (
    report_metrics.HEADLINE,
    report_metrics.CHILDREN,
    report_metrics.COST_BY_PAYER,
    report_metrics.TRENDS,
    report_metrics.BREAKDOWN_METRICS,
)


@pytest.fixture(scope="module")
def run(small: Scenario) -> RunResult:
    """Six months of the baseline at a tenth of the volume, every metric and grouping."""
    return run_one(RunSpec(small, 0, keep_events=True))


@pytest.fixture(scope="module")
def summary(run: RunResult) -> pd.DataFrame:
    return run.summary


def commanded_metrics(summary: pd.DataFrame) -> set[str]:
    """Every metric name a command writes or reads: summary.csv (run, compare), the report's
    sections, the terminal tables, the reference distributions, the shipped sweep specs and
    the calibration targets (nrmsim check)."""
    names = set(summary["metric"]) | set(KEY_METRICS) | set(tagged(*TAGS))
    names |= {m for section in REPORT_SECTIONS for m in section}
    for path in sorted([*EXPERIMENT_DIR.glob("*.toml"), *EXPERIMENT_DIR.glob("ci/*.toml")]):
        names |= {o.metric for o in load_experiment(path).outputs}
    for t in load_targets():
        names.add(t.metric)
        if t.denominator:
            names.add(t.denominator["metric"])
    return names


def test_every_metric_a_command_outputs_is_registered_with_every_field(
    summary: pd.DataFrame,
) -> None:
    """Catches: a metric a command writes (summary.csv, a report section, a terminal table, a
    sweep output, a calibration target) that the registry does not describe; a registered
    metric that no run writes; and an entry with an empty or invalid field (an unknown unit
    would leave its display format to a guess, an unknown direction would rank nothing)."""
    outputs = commanded_metrics(summary)
    assert outputs <= set(REGISTRY), sorted(outputs - set(REGISTRY))
    assert set(REGISTRY) <= set(summary["metric"]), sorted(set(REGISTRY) - set(summary["metric"]))
    for name, m in REGISTRY.items():
        assert m.name == name
        assert m.label and m.title and m.short, name
        assert m.unit in UNIT_DISPLAY and m.display in DISPLAYS, name
        assert m.kind in KINDS, name
        assert m.better in (None, *DIRECTIONS), name
        assert m.payer in (None, *PAYERS), name
        assert m.tags <= set(TAGS), name
        assert callable(m.fn), name
        assert m.groupings and set(m.groupings) <= {*GROUP_BYS, *([m.rows_by] if m.rows_by else [])}
        assert m.additive == (m.kind == "flow"), name
        assert len(m.short) <= 24, name  # a terminal column heading
    titles = [m.title for m in REGISTRY.values()]
    shorts = [m.short for m in REGISTRY.values()]
    assert len(set(titles)) == len(titles) and len(set(shorts)) == len(shorts)


def test_rows_come_under_exactly_the_declared_groupings(summary: pd.DataFrame) -> None:
    """Catches: a group-"all"-only metric not marked so (its per-group rows would be silent
    zeros), a multi-row metric whose rows go under the wrong grouping, and a metric that a
    consumer would look for under a grouping it does not have (calibration targets and sweep
    outputs are checked against ``groupings``)."""
    got = summary.groupby("metric")["group_by"].apply(set)
    for name, m in REGISTRY.items():
        assert got[name] == set(m.groupings), name
    placements = summary[summary["metric"] == "placements_by_type"]
    for _, block in placements.groupby("year"):
        assert list(block["group"]) == list(PLACEMENT_TYPES)


def test_additive_metrics_add_up_over_groups(summary: pd.DataFrame) -> None:
    """Catches: a rate, mean or stock marked additive (the report would sum it over years and
    over non-UK groups). Costs and child-days exploited are at most the total, since "all"
    also holds what no child carries (decision capacity, never-referred hotel children, the
    unidentified pool)."""
    s = summary[summary["group_by"].isin(["all", "sex"])]
    wide = s.pivot_table(
        index=["year", "metric"], columns="group_by", values="value", aggfunc="sum"
    )
    checked = 0
    for name, m in REGISTRY.items():
        if not m.additive or m.rows_by or m.all_only:
            continue
        rows = wide.xs(name, level="metric")
        total, parts = rows["all"].to_numpy(), rows["sex"].to_numpy()
        if m.display == "gbp" or name == "child_days_exploited_unidentified":
            assert (parts <= total + 1e-6).all(), name
        else:
            assert np.allclose(parts, total, rtol=1e-9, atol=1e-9), name
        checked += 1
    assert checked > 30
    rg = wide.xs("rg_positive_rate", level="metric")
    assert not np.allclose(rg["sex"], rg["all"])  # a rate summed over groups is not the rate


def test_every_consumer_formats_by_the_display_format(run: RunResult, small: Scenario) -> None:
    """Catches: a share formatted as a count or money as a plain number by the report, the
    terminal tables or the published-style tables (the terminal tables once guessed from a
    ``_rate`` suffix and showed ``share_guardian_within_24h`` = 0.25 as "0")."""
    for name, m in REGISTRY.items():
        texts = [
            report_metrics.fmt_value(0.25, name),
            report_metrics.fmt_diff(0.25, name),
            _fmt(0.25, name),
            _fmt(0.25, name, signed=True),
        ]
        for text in texts:
            assert ("%" in text or "pts" in text) == (m.display == "share"), (name, text)
            assert ("£" in text) == (m.display == "gbp"), (name, text)
    assert _fmt(0.25, "share_guardian_within_24h") == "25%"
    assert report_metrics.fmt_value(0.25, "mean_days_in_limbo") == "0"  # days: whole days
    assert report_metrics.fmt_value(0.25, "days_missing") == "0.2"  # child-days: a count
    assert run.events is not None and run.children is not None
    horizon = float((small.end - small.sim_start).days) + 1.0
    tables = published_tables(
        Analysis(run.events, run.children, horizon), small.sim_start, small.start, small.end
    )
    shares = tables[tables["table"].str.endswith("positive share")]
    counts = tables[~tables["table"].str.endswith("positive share")]
    assert len(shares) and shares["children"].str.endswith("%").all()
    assert (shares["all_ages_equivalent"] == "").all()
    assert not counts["children"].str.contains("%").any()


def test_terminal_table_columns_are_the_key_metrics_short_headings(
    summary: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches: a terminal table whose columns are not the registry's key metrics, or whose
    headings are not their short labels."""
    print_table(summary, "small", 1, Path("out"))
    header = next(line for line in capsys.readouterr().out.splitlines() if "year" in line)
    positions = [header.index(REGISTRY[m].short) for m in KEY_METRICS]
    assert positions == sorted(positions) and len(KEY_METRICS) == 10


def test_a_missing_cell_is_zero_for_counts_and_undefined_otherwise(
    run: RunResult, small: Scenario
) -> None:
    """Catches: the observation layer reading a group with no rows as 0 for a rate or mean
    (a published share of 0% where none was decided), or as undefined for a count."""
    assert run.events is not None and run.children is not None
    horizon = float((small.end - small.sim_start).days) + 1.0
    ctx = Context(Analysis(run.events, run.children, horizon), small.sim_start, load_observation())
    for name, m in REGISTRY.items():
        group_by = m.groupings[0]
        value = ctx.metric(name, group_by, "no_such_group", 0.0, horizon)
        if m.zero_if_absent:
            assert value == 0.0, name
        else:
            assert math.isnan(value), name


def test_sweep_analysis_ranks_by_the_registry_direction() -> None:
    """Catches: a lower-is-better metric ranked the wrong way (or a higher-is-better one), a
    metric without a direction ranked anyway, and a spec override ignored. Every lever is
    one unit below the comparator at every point."""
    columns = {f"{name}_2027": name for name, m in REGISTRY.items() if "all" in m.groupings}
    rows = []
    for point in range(5):
        for scenario, shift in (("sq", 0.0), ("lever", -1.0)):
            row = {"point": point, "replicate": 0, "scenario": scenario}
            row.update({c: 10.0 + point + shift for c in columns})
            rows.append(row)
    results = pd.DataFrame(rows)
    vs, _, _ = sweep_analysis.psa_probabilities(results, list(columns), columns, "sq")
    p_better = vs.set_index("output")["p_better"]
    for column, name in columns.items():
        better = REGISTRY[name].better
        if better is None:
            assert column not in p_better.index, name
        else:
            assert p_better[column] == (1.0 if better == "lower" else 0.0), name
    anchors = {"public_cost_gbp": "lower", "awaiting_cg_at_year_end": "lower"}
    anchors |= {"leave_grants": "higher", "convictions": "higher", "rg_positive_rate": None}
    assert {n: REGISTRY[n].better for n in anchors} == anchors
    flipped, _, _ = sweep_analysis.psa_probabilities(
        results, ["public_cost_gbp_2027"], columns, "sq", {"public_cost_gbp": "higher"}
    )
    assert flipped["p_better"].tolist() == [0.0]


def test_payer_metrics_sum_to_public_cost(summary: pd.DataFrame) -> None:
    """Catches: a cost metric registered without its payer (left out of the report's cost by
    payer, the invariant and public_cost_gbp, which sums the payers)."""
    costs = [n for n, m in REGISTRY.items() if m.display == "gbp" and n != "public_cost_gbp"]
    assert list(PAYER_METRICS) == costs
    assert [REGISTRY[n].payer for n in PAYER_METRICS] == list(PAYERS)
    assert report_metrics.COST_BY_PAYER == PAYER_METRICS
    wide = summary[summary["metric"].isin([*PAYER_METRICS, "public_cost_gbp"])].pivot_table(
        index=["year", "group_by", "group"], columns="metric", values="value"
    )
    assert np.allclose(wide[list(PAYER_METRICS)].sum(axis=1), wide["public_cost_gbp"], rtol=1e-12)


def test_flows_that_add_over_years_add_over_periods_and_distinct_counts_do_not(
    baseline: Scenario,
) -> None:
    """Catches: a count of distinct children marked as adding over years, which the report
    then sums over its policy window (a child who goes missing in 2025 and 2026 counted
    twice in the "2025-2027" column: found by a review on 4 December 2026), and a flow that
    double-counts or drops events at a period boundary. For every flow, the value over two
    consecutive periods is compared with the sum of the two, per group of a grouping."""
    from model.runner import analyse, simulate

    sc = baseline.with_values({"identification.child_referrals_per_year": 3000.0})
    model = simulate(sc, 0)
    analysis, _, _ = analyse(model)
    a = model.calendar.day(sc.start)
    b = model.end_day
    mid = 0.5 * (a + b)
    flows = [n for n, m in REGISTRY.items() if m.kind == "flow" and not m.rows_by]
    assert any(REGISTRY[n].distinct for n in flows)
    for group_by in ("all", "sex"):
        halves = analysis.metrics([(0, a, mid), (1, mid, b)], group_by, flows)
        summed = halves.groupby(["group", "metric"])["value"].sum()
        whole = analysis.period_metrics(a, b, group_by, flows).set_index(["group", "metric"])
        joined = whole["value"].to_frame("whole").join(summed.rename("halves"), how="outer")
        joined = joined.fillna(0.0)
        for (group, name), row in joined.iterrows():
            if REGISTRY[name].adds_over_years:
                assert math.isclose(row.whole, row.halves, rel_tol=1e-9, abs_tol=1e-6), (
                    name,
                    group,
                    row.whole,
                    row.halves,
                )
            else:  # distinct children: at most the sum, and less once someone is in both
                assert row.whole <= row.halves + 1e-9, (name, group)
    missing = analysis.metrics([(0, a, mid), (1, mid, b)], "all", ["children_gone_missing"])
    both = analysis.period_metrics(a, b, "all", ["children_gone_missing"])["value"].iloc[0]
    assert both < missing["value"].sum()  # some child went missing in both halves


def test_published_quarters_hold_only_the_days_inside_the_reporting_window(
    baseline: Scenario,
) -> None:
    """Catches: the first quarter of the published tables starting at the quarter's first
    day instead of the reporting start, so activity before ``--start`` (the warm-up) is
    counted in it (found by a review on 4 December 2026; a start of 15 February put six
    weeks of warm-up referrals in "Q1")."""
    import datetime as dt

    from model.runner import analyse, simulate

    sc = baseline.with_run(end=dt.date(2024, 8, 31)).with_values(
        {"identification.child_referrals_per_year": 4000.0}
    )
    model = simulate(sc, 0)
    analysis, _, _ = analyse(model)
    start, end = dt.date(2024, 2, 15), dt.date(2024, 8, 20)
    tables = published_tables(analysis, sc.sim_start, start, end)
    by_sex = tables[tables["table"] == "referrals by sex"]

    def referrals(a: dt.date, b: dt.date) -> float:
        days = model.calendar.day(a), model.calendar.day(b)
        return float(analysis.period_metrics(*days, "all", ["referrals"])["value"].iloc[0])

    for quarter, a, b in (
        ("2024 Q1", start, dt.date(2024, 4, 1)),
        ("2024 Q2", dt.date(2024, 4, 1), dt.date(2024, 7, 1)),
        ("2024 Q3", dt.date(2024, 7, 1), end + dt.timedelta(1)),
    ):
        cells = by_sex.loc[by_sex["quarter"] == quarter, "children"]
        assert len(cells) and not cells.str.contains(r"\*").any(), quarter
        total = sum(float(c.replace(",", "")) for c in cells)
        assert total == referrals(a, b) > 0, quarter
