"""The observation layer: published statistics as views of the simulated world.

A published figure is not the simulated world itself: it counts a population (children or all
ages) over a period defined its own way (decisions made in a period, a referral cohort, a
stock on a date). Each calibration target names the ``view`` that turns a run into that
figure:

* ``metric``: a child metric from ``model.results`` for the period (a flow over
  [start, end), or a stock at the end of the day ``at``), optionally divided by a denominator
  metric (a share);
* ``all_ages_rate``: an all-ages positive rate: the child rate of each evidence standard in
  force, mixed with an adult rate whose odds are the child odds times the adult odds ratio of
  that standard, weighted by the child share of that year's decisions;
* ``all_ages_count``: a child count or stock divided by the child share of that figure;
* ``all_ages_wait``: the child mean wait times the child/all-ages wait ratio;
* ``cohort_awaiting_share``: the share of a referral cohort still awaiting a CG on a date.

The observation model's numbers (child shares, adult odds ratios, ratios) live in
``calibration/observation.toml`` with their sources; nothing here widens a tolerance.
``published_tables`` shapes a run like the Home Office tables (quarters, nationality,
exploitation type) with small cells suppressed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from model.common import expit, logit, read_toml
from model.results import REGISTRY
from model.scenario import SCENARIO_DIR, ScenarioError, load_sources

if TYPE_CHECKING:
    from model.calibration import Target
    from model.results import Analysis

OBSERVATION_FILE = SCENARIO_DIR.parent / "calibration" / "observation.toml"
SECTIONS = ("child_share_of_referrals", "adult_odds_ratio", "child_share", "ratio")
ENTRY_KEYS = {"value", "source", "locator", "note", "range"}
REGIME_KEY = {
    ("rg", "pre_nba"): "rg_pre_nba",
    ("rg", "nba_objective"): "rg_nba",
    ("rg", "nba_amended"): "rg_nba",
    ("cg", "pre_nba"): "cg_pre_nba",
    ("cg", "nba"): "cg_nba",
}
SUPPRESS_BELOW = 5  # small cells shown as "*" in the published-style tables


@dataclass(frozen=True)
class ObservationModel:
    """Section -> key -> value, with each entry's provenance."""

    values: Mapping[str, Mapping[str, float]]
    entries: Mapping[str, Mapping[str, Mapping[str, Any]]]
    path: str

    def child_share_of_referrals(self, year: int) -> float:
        shares = self.values["child_share_of_referrals"]
        if str(year) in shares:
            return shares[str(year)]
        years = sorted(int(y) for y in shares)
        nearest = min(years, key=lambda y: abs(y - year))
        return shares[str(nearest)]

    def get(self, section: str, key: str) -> float:
        return self.values[section][key]


def load_observation(path: Path | None = None) -> ObservationModel:
    """Read and validate ``calibration/observation.toml``: every entry has a numeric value
    and a known source, and an assumption has a range containing its value."""
    path = path or OBSERVATION_FILE
    doc = read_toml(path)
    sources = load_sources()
    values: dict[str, dict[str, float]] = {}
    entries: dict[str, dict[str, Mapping[str, Any]]] = {}
    for section in SECTIONS:
        table = doc.get(section)
        if not isinstance(table, dict):
            raise ScenarioError(path, section, "missing section")
        values[section], entries[section] = {}, {}
        for key, entry in table.items():
            where = f"{section}.{key}"
            if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
                raise ScenarioError(path, where, "write { value = ..., source = ... }")
            unknown = set(entry) - ENTRY_KEYS
            if unknown:
                raise ScenarioError(
                    path, where, f"unknown keys {sorted(unknown)}; allowed: {sorted(ENTRY_KEYS)}"
                )
            value = entry["value"]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ScenarioError(path, where, f"value {value!r} must be a positive number")
            source = entry["source"]
            if source != "assumption" and source not in sources:
                raise ScenarioError(
                    path, f"{where}.source", f"'{source}' is not in scenarios/sources.toml"
                )
            rng = entry.get("range")
            in_range = isinstance(rng, list) and len(rng) == 2 and rng[0] <= value <= rng[1]
            if source == "assumption" and not in_range:
                raise ScenarioError(
                    path, where, "an assumption needs a range [low, high] containing its value"
                )
            values[section][str(key)] = float(value)
            entries[section][str(key)] = dict(entry)
    for section, keys in (
        ("adult_odds_ratio", set(REGIME_KEY.values())),
        ("ratio", {"cg_wait", "cohort_awaiting"}),
    ):
        missing = keys - set(values[section])
        if missing:
            raise ScenarioError(path, section, f"missing {sorted(missing)}")
    return ObservationModel(values, entries, str(path))


# --------------------------------------------------------------------------- views
class Context:
    """One replicate's analysis, the simulation's day 0 and the observation model; caches
    metric tables per (period, grouping)."""

    def __init__(self, analysis: Analysis, origin: dt.date, obs: ObservationModel) -> None:
        self.analysis, self.origin, self.obs = analysis, origin, obs
        self._tables: dict[tuple[float, float, str], pd.Series] = {}

    def day(self, date: dt.date) -> float:
        return float((date - self.origin).days)

    def metric(self, metric: str, group_by: str, group: str, a: float, b: float) -> float:
        base = REGISTRY[metric].source_grouping(group_by)
        key = (a, b, base)
        if key not in self._tables or (group_by, group, metric) not in self._tables[key].index:
            table = self.analysis.period_metrics(a, b, base, [metric])
            fresh = table.set_index(["group_by", "group", "metric"])["value"]
            old = self._tables.get(key)
            self._tables[key] = fresh if old is None else pd.concat([old, fresh])
        try:
            return float(self._tables[key].loc[(group_by, group, metric)])
        except KeyError:  # no rows for the group in the period
            return 0.0 if REGISTRY[metric].zero_if_absent else math.nan

    def prefetch(
        self, wanted: Mapping[str, set[tuple[float, float]]], needed: Mapping[str, set[str]]
    ) -> None:
        """Compute many non-overlapping periods of a grouping in one pass each, for only the
        metrics the targets need."""
        for base, periods in wanted.items():
            batches: list[list[tuple[float, float]]] = []
            for a, b in sorted(periods):
                for batch in batches:
                    if batch[-1][1] <= a:
                        batch.append((a, b))
                        break
                else:
                    batches.append([(a, b)])
            metrics = sorted(needed[base])
            for batch in batches:
                table = self.analysis.metrics(
                    [(i, a, b) for i, (a, b) in enumerate(batch)], base, metrics
                )
                indexed = table.set_index(["period", "group_by", "group", "metric"])["value"]
                for i, (a, b) in enumerate(batch):
                    part = indexed.xs(i, level="period") if i in set(table["period"]) else None
                    self._tables[(a, b, base)] = (
                        part if part is not None else pd.Series(dtype=float)
                    )


def period_of(target: Target, ctx: Context) -> tuple[float, float]:
    """[a, b) in days from day 0. A flow's end date is exclusive; a stock is read at the end
    of its date ``at``."""
    if target.kind == "flow":
        return ctx.day(target.start), ctx.day(target.end)
    b = ctx.day(target.end) + 1.0
    return b - 1.0, b


def _metric_view(ctx: Context, t: Target) -> float:
    a, b = period_of(t, ctx)
    num = ctx.metric(t.metric, t.group_by, t.group, a, b)
    if not t.denominator:
        return num
    d = t.denominator
    den = ctx.metric(d["metric"], d["group_by"], d["group"], a, b)
    return num / den if den else math.nan


def _all_ages_rate(ctx: Context, t: Target) -> float:
    decision = {"rg_positive_rate": "rg", "cg_positive_rate": "cg"}[t.metric]
    a, b = period_of(t, ctx)
    ev = ctx.analysis.ev
    rows = ev[(ev["event"] == f"{decision}_decided") & (ev["t_days"] >= a) & (ev["t_days"] < b)]
    if rows.empty:
        return math.nan
    share = ctx.obs.child_share_of_referrals(t.start.year)
    total = 0.0
    for regime, part in rows.groupby("regime", observed=True):
        child = float(part["positive"].astype(float).mean())
        odds_ratio = ctx.obs.get("adult_odds_ratio", REGIME_KEY[(decision, str(regime))])
        adult = expit(logit(child) + math.log(odds_ratio))
        total += len(part) / len(rows) * (share * child + (1.0 - share) * adult)
    return total


def _all_ages_count(ctx: Context, t: Target) -> float:
    key = t.observation or "referrals"
    share = (
        ctx.obs.child_share_of_referrals(t.start.year)
        if key == "referrals"
        else ctx.obs.get("child_share", key)
    )
    return _metric_view(ctx, t) / share


def _all_ages_wait(ctx: Context, t: Target) -> float:
    return _metric_view(ctx, t) * ctx.obs.get("ratio", "cg_wait")


def _cohort_awaiting_share(ctx: Context, t: Target) -> float:
    """Of the cases opened by referrals in [cohort_start, cohort_end), the share awaiting a CG
    (a positive RG, no CG decision, not closed) at the end of the day ``at``."""
    assert t.cohort is not None
    a0, a1 = ctx.day(t.cohort[0]), ctx.day(t.cohort[1])
    at = ctx.day(t.end) + 1.0
    ev = ctx.analysis.ev
    ref = ev[(ev["event"] == "referred") & ev["referral_kind"].isin(["new", "repeat"])]
    cohort = ref[(ref["t_days"] >= a0) & (ref["t_days"] < a1)][["child_id", "episode"]]
    if cohort.empty:
        return math.nan
    aw = ctx.analysis.derived("awaiting", "all")
    waiting = aw[(aw["t_days"] < at) & (aw["t_exit"] >= at)][["child_id", "episode"]]
    n = len(cohort.merge(waiting, on=["child_id", "episode"]))
    return n / len(cohort) * ctx.obs.get("ratio", "cohort_awaiting")


VIEWS: dict[str, Callable[[Context, Target], float]] = {
    "metric": _metric_view,
    "all_ages_rate": _all_ages_rate,
    "all_ages_count": _all_ages_count,
    "all_ages_wait": _all_ages_wait,
    "cohort_awaiting_share": _cohort_awaiting_share,
}


def observe(
    analysis: Analysis, targets: Sequence[Target], origin: dt.date, obs: ObservationModel
) -> dict[str, float]:
    """Each target's published-figure view of one replicate (NaN if undefined, e.g. 0/0)."""
    ctx = Context(analysis, origin, obs)
    wanted: dict[str, set[tuple[float, float]]] = {}
    needed: dict[str, set[str]] = {}
    for t in targets:
        if t.view in ("metric", "all_ages_count", "all_ages_wait"):
            period = period_of(t, ctx)
            pairs = [(t.metric, t.group_by)]
            if t.denominator:
                pairs.append((t.denominator["metric"], t.denominator["group_by"]))
            for metric, group_by in pairs:
                base = REGISTRY[metric].source_grouping(group_by)
                wanted.setdefault(base, set()).add(period)
                needed.setdefault(base, set()).add(metric)
    ctx.prefetch(wanted, needed)
    return {t.id: VIEWS[t.view](ctx, t) for t in targets}


# --------------------------------------------------------------------------- published tables
def published_tables(
    analysis: Analysis,
    origin: dt.date,
    start: dt.date,
    end: dt.date,
    obs: ObservationModel | None = None,
) -> pd.DataFrame:
    """Quarterly tables shaped like the Home Office NRM releases: child referrals by
    nationality, exploitation type and sex; RG and CG decisions and the share positive; with
    the all-ages equivalents of the counts (child share of the year) and cells below
    ``SUPPRESS_BELOW`` suppressed as "*" (as the published tables do for small counts). A
    quarter cut by ``start`` or ``end`` holds only its days inside them.

    Columns: quarter, table, category, children, all_ages_equivalent.
    """
    obs = obs or load_observation()
    quarters = []
    q = dt.date(start.year, 3 * ((start.month - 1) // 3) + 1, 1)
    while q <= end:
        nxt = dt.date(q.year + (q.month == 10), (q.month + 2) % 12 + 1, 1)
        # the first quarter starts at ``start`` (no warm-up activity), the last ends at ``end``
        span = (max(q, start), min(nxt, end + dt.timedelta(1)))
        quarters.append((f"{q.year} Q{(q.month - 1) // 3 + 1}", *span))
        q = nxt
    periods = [
        (label, float((a - origin).days), float((b - origin).days)) for label, a, b in quarters
    ]
    rows: list[dict[str, Any]] = []
    specs = (
        ("referrals by nationality", "nationality_group", "referrals"),
        ("referrals by exploitation type", "exploitation_type", "referrals"),
        ("referrals by sex", "sex", "referrals"),
        ("reasonable grounds decisions", "all", "rg_decisions"),
        ("conclusive grounds decisions", "all", "cg_decisions"),
        ("reasonable grounds positive share", "all", "rg_positive_rate"),
        ("conclusive grounds positive share", "all", "cg_positive_rate"),
    )
    years = {label: a.year for label, a, _ in quarters}
    for title, group_by, metric in specs:
        table = analysis.metrics(periods, group_by, [metric])
        for _, r in table.iterrows():
            value = float(r["value"])
            rate = REGISTRY[metric].display == "share"
            share = obs.child_share_of_referrals(years[r["period"]])
            rows.append(
                {
                    "quarter": r["period"],
                    "table": title,
                    "category": r["group"],
                    "children": _cell(value, rate),
                    "all_ages_equivalent": "" if rate else _cell(value / share, False),
                }
            )
    return pd.DataFrame(rows)


def _cell(value: float, rate: bool) -> str:
    if value != value:
        return ""
    if rate:
        return f"{value:.0%}"
    return "*" if 0 < value < SUPPRESS_BELOW else f"{value:,.0f}"


def suppress(values: np.ndarray) -> np.ndarray:
    """Counts below the threshold (but above zero) as NaN: what a published table hides."""
    out = values.astype(float).copy()
    out[(out > 0) & (out < SUPPRESS_BELOW)] = np.nan
    return out
