"""The analysis's array fast paths (issue 15 item 2) against straightforward pandas on a small
real run: sums and distinct counts over every period at once (``View.by_period``), grouping by
cell numbers (``View.agg``), the rows of events by period (``EventRows``), the rows exploded
by exploitation type, and the tables the groupings share. Each test names the wrong code it
catches."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from model.results import GROUP_BYS, REGISTRY, Analysis, View, _explode_types, _long_rows
from model.runner import simulate
from model.scenario import Scenario
from model.simulation import children_frame

GROUPINGS = ("all", "sex", "nation", "age_band", "route", "exploitation_any")


@pytest.fixture(scope="module")
def logs(small: Scenario) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Events and children of six months at a tenth of the volume (about 300 children)."""
    m = simulate(small, 0)
    return m.log.to_frame(), children_frame(m), m.end_day


@pytest.fixture(scope="module")
def analysis(logs: tuple[pd.DataFrame, pd.DataFrame, float]) -> Analysis:
    return Analysis(*logs)


@pytest.fixture(scope="module")
def periods(analysis: Analysis) -> list[tuple[int, float, float]]:
    """Six months of the run in unequal, non-adjacent periods (a gap between two of them)."""
    t = analysis.ev["t_days"]
    lo, hi = float(t.min()), float(t.max()) + 1.0
    edges = np.linspace(lo, hi, 7)
    out = [(i, float(a), float(b)) for i, (a, b) in enumerate(itertools.pairwise(edges))]
    label, a, b = out[2]
    out[2] = (label, a, (a + b) / 2)  # leaves a gap before the next period
    return out


def by_hand(spells: pd.DataFrame, group_by: str, periods: list, distinct: bool) -> pd.Series:
    """Days (or distinct children) of the spells in each period by group, one groupby per
    period: what ``View.overlap`` computed before it was vectorised."""
    t0, t1 = spells["t_days"].to_numpy(), spells["t_end"].to_numpy()
    parts = {}
    for label, a, b in periods:
        if distinct:
            hit = (t0 < b) & (t1 > a)
            s = spells["child_id"][hit].groupby(spells[group_by][hit], observed=True).nunique()
        else:
            days = np.clip(np.minimum(t1, b) - np.maximum(t0, a), 0.0, None)
            s = pd.Series(days).groupby(spells[group_by].to_numpy()).sum()
        parts[label] = s
    return pd.concat(parts, names=["period", group_by])


def aligned(fast: pd.Series, slow: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Both on the union of their cells, a missing cell as 0 (as count-like metrics fill)."""
    fast = fast.rename_axis(slow.index.names)
    index = fast.index.union(slow.index)
    return (
        fast.reindex(index, fill_value=0).to_numpy(float),
        slow.reindex(index, fill_value=0).to_numpy(float),
    )


@pytest.mark.parametrize("group_by", GROUPINGS)
@pytest.mark.parametrize("table", ["placements", "missing", "guardians"])
def test_overlap_for_every_period_at_once_equals_one_groupby_per_period(
    analysis: Analysis, periods: list, group_by: str, table: str
) -> None:
    """Catches: the (period, group) cells laid out group-major when the index is
    period-major, or the rows x periods block transposed (values under the wrong period or
    group); a group's categories mapped to the wrong label; NaN groups counted; a naive sum
    in place of the compensated one (the days must be equal bit for bit); distinct children
    counted once per spell rather than once per child."""
    view = View(analysis, periods, group_by)
    spells = analysis.derived(table, group_by)
    assert len(spells), f"no {table} spells in the small run"
    for distinct in (False, True):
        fast, slow = aligned(
            view.overlap(spells, distinct=distinct),
            by_hand(spells, group_by, periods, distinct),
        )
        assert np.array_equal(fast, slow), (table, group_by, distinct)


@pytest.mark.parametrize("group_by", GROUPINGS)
def test_cell_grouping_equals_grouping_by_period_and_group_columns(
    analysis: Analysis, periods: list, group_by: str
) -> None:
    """Catches ``View.agg`` reading a row's cell from the wrong row (``of`` frames are labelled
    by their row of the grouping's table; a reset index would misplace every row), mapping a
    cell number back to the wrong (period, group) label, or reordering a cell's rows (means
    must be equal bit for bit)."""
    view = View(analysis, periods, group_by)
    for names, column, how in [
        (("cg_decided",), "t_days", "mean"),
        (("rg_decided", "cg_decided"), "t_referred", "median"),
        (("went_missing", "returned"), "child_id", "nunique"),
        (("placed",), "day18", "sum"),
    ]:
        frame = view.of(*names)
        assert len(frame), names
        fast = view.agg(frame, frame[column], how)
        slow = getattr(frame.groupby(view.keys, observed=True)[column], how)()
        assert cells(fast) == cells(slow), (names, how)


def cells(values: pd.Series) -> dict[tuple[str, str], float | str]:
    """Value by (period, group) labels as text (NaN as "nan", so that it equals itself)."""
    return {
        (str(p), str(g)): "nan" if math.isnan(v) else float(v)
        for (p, g), v in values.astype(float).items()
    }


def test_event_rows_are_the_rows_a_mask_selects(analysis: Analysis, periods: list) -> None:
    """Catches ``EventRows.of`` losing log order when it joins several events (rows by event
    are concatenated, so they must be sorted back), taking rows outside the periods (the gap)
    or at a period's end, or labelling a row with the wrong period."""
    for group_by in ("all", "exploitation_any"):
        ev = analysis.events_for(group_by)
        rows = analysis.rows(group_by, periods)
        for names in [("referred",), ("went_missing", "returned", "placed"), ("no_such",)]:
            t = ev["t_days"].to_numpy()
            label = np.full(len(ev), None, dtype=object)
            for lab, a, b in periods:
                label[(t >= a) & (t < b)] = lab
            mask = ev["event"].isin(names).to_numpy() & pd.notna(label)
            expected = ev[mask].assign(period=label[mask])
            pd.testing.assert_frame_equal(rows.of(names), expected)


def test_exploded_rows_equal_pandas_explode(analysis: Analysis) -> None:
    """Catches ``_explode_types`` giving a row the types of another combination (offsets into
    the flattened type lists), dropping or duplicating rows, changing their order, or
    dropping a row without types (it counts under "nan", as ``str(nan).split``)."""
    frame = analysis.derived("placements", "all").head(300).copy()
    types = frame["exploitation_types"]
    frame["exploitation_types"] = types.cat.add_categories([]).where(
        np.arange(len(frame)) % 7 != 3  # some rows without types
    )
    slow = frame.assign(
        exploitation_any=[str(t).split("+") for t in frame["exploitation_types"].to_numpy(object)]
    ).explode("exploitation_any", ignore_index=True)
    slow["exploitation_any"] = slow["exploitation_any"].astype("category")
    assert "nan" in set(slow["exploitation_any"])
    pd.testing.assert_frame_equal(_explode_types(frame), slow)


def test_groupings_that_share_tables_equal_each_grouping_alone(
    logs: tuple[pd.DataFrame, pd.DataFrame, float], analysis: Analysis, periods: list
) -> None:
    """Catches state shared between groupings or periods going stale: every grouping of one
    analysis (which share derived tables and event rows), then other periods on the same
    analysis, must equal a fresh analysis asked for that grouping or those periods alone."""
    metrics = [
        "referrals",
        "children_gone_missing",
        "days_missing",
        "children_placed",
        "mean_days_referral_to_rg",
        "median_days_referral_to_cg",
        "public_cost_gbp",
        "awaiting_cg_at_year_end",
    ]
    shared = {g: analysis.metrics(periods, g, metrics) for g in GROUP_BYS}
    for g in ("sex", "exploitation_any", "route"):
        alone = Analysis(*logs).metrics(periods, g, metrics)
        pd.testing.assert_frame_equal(shared[g], alone)
    other = [(lab + 10, a + 3.0, b + 3.0) for lab, a, b in periods[:3]]
    pd.testing.assert_frame_equal(
        analysis.metrics(other, "nation", metrics),
        Analysis(*logs).metrics(other, "nation", metrics),
    )
    assert not math.isnan(shared["all"]["value"].sum())


@pytest.mark.parametrize("group_by", ["all", "nation", "exploitation_any"])
def test_long_rows_equal_a_table_melted(analysis: Analysis, periods: list, group_by: str) -> None:
    """Catches ``_long_rows`` putting a value under another metric or cell (metric-major
    order, each metric's cells in index order), misaligning a series whose index is not the
    view's (only cells of the view kept, missing ones 0 for counts and stocks, NaN for
    means and rates), or changing a column's dtype (the summary's columns are compared
    with main's by dtype)."""
    view = View(analysis, periods, group_by)
    for names in [
        ["referrals", "days_missing", "mean_days_referral_to_rg", "rg_positive_rate"],
        ["children_placed", "awaiting_cg", "public_cost_gbp", "median_days_referral_to_cg"],
        [],
    ]:
        columns = {name: REGISTRY[name].fn(view) for name in names}
        table = pd.DataFrame(columns, index=view.index).reindex(view.index)
        count_like = [c for c in table.columns if REGISTRY[c].zero_if_absent]
        table[count_like] = table[count_like].fillna(0.0)
        table.index.names = ["period", "group"]
        slow = table.reset_index().melt(
            id_vars=["period", "group"], var_name="metric", value_name="value"
        )
        slow["value"] = slow["value"].astype(float)
        pd.testing.assert_frame_equal(_long_rows(view.index, columns), slow)
