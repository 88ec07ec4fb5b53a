"""Metrics as pure functions of the event log and the children table.

Nothing here imports SimPy or Mesa, so saved ``events.parquet`` / ``children.parquet`` files
can be analysed without the engine. Every metric is registered once in ``REGISTRY`` with
everything its consumers read (label, unit and display format, kind, whether it adds over
groups, which direction is better, the groupings it has rows for, its reader-facing title and
short table heading, its payer and tags), and computed only when asked for
(``Analysis.metrics(..., metrics=)``): the yearly ``summary``, the report, the terminal tables,
the calibration targets and the sweeps all use the same definitions.

Rows of the log: NRM children (``child_id >= 0``, ``episode >= 0``); never-referred children
in Home Office hotels (``episode = -1``; counted only in the ``hotel_*`` metrics and costs);
system rows (``child_id = -1``: the unidentified pool each day, decision capacities and unit
costs in force). Metrics built on system or never-referred rows exist only for
``group_by = "all"``; costs by group exclude decision-capacity costs (not attributable).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.common import DAYS_PER_YEAR as DAYS_PER_YEAR
from model.common import PLACEMENT_TYPES as PLACEMENT_TYPES

GROUP_BYS = (
    "all",
    "sex",
    "nationality_group",
    "exploitation_type",
    "exploitation_any",
    "nation",
    "age_band",
    "route",
)
# exploitation_any: a child counts under every type they were exploited for ("partial or whole"),
# so its groups add up to more than "all".
DECISION_CLOSURES = ("confirmed", "not_confirmed", "disqualified")
PAYERS = ("home_office", "local_authorities", "guardianship", "police_cps", "post18", "legal_aid")
KINDS = {
    "flow": "events in the period",
    "stock": "state at the end of the period",
    "rate": "share of the events in the period",
    "mean": "mean over the events in the period",
}
# unit -> how a value is shown: count, share (percent), days or years (a duration), gbp (£m)
UNIT_DISPLAY = {
    "referrals": "count",
    "children": "count",
    "cases": "count",
    "decisions": "count",
    "requests": "count",
    "placements": "count",
    "moves": "count",
    "episodes": "count",
    "child-days": "count",
    "young adults": "count",
    "grants": "count",
    "events": "count",
    "investigations": "count",
    "prosecutions": "count",
    "convictions": "count",
    "share": "share",
    "days": "days",
    "years": "years",
    "gbp": "gbp",
}
DIRECTIONS = ("lower", "higher")  # Metric.better; None: reported, not ranked
TAGS = {
    "key": "the terminal tables of nrmsim run and compare, and the reference distributions",
    "reference": "also recorded in the reference distributions (tests/reference)",
}


@dataclass(frozen=True)
class Metric:
    """A metric: what it counts, and how every consumer names, formats, sums and ranks it."""

    name: str
    label: str  # what it counts: the definition (manifest, docs/reference.md)
    unit: str  # a key of UNIT_DISPLAY
    kind: str  # a key of KINDS
    all_only: bool  # built on rows without child attributes: group "all" only
    fn: Callable[[View], pd.Series]
    title: str  # reader-facing name (report tables and figures)
    short: str  # column heading in the terminal tables
    better: str | None = None  # "lower" | "higher" | None (no direction: reported, not ranked)
    payer: str | None = None  # for a cost by payer: its payer (PAYERS)
    tags: frozenset[str] = frozenset()  # keys of TAGS
    rows_by: str | None = None  # a multi-row metric: the column that splits its rows
    distinct: bool = False  # a count of distinct children: a child counts once a period

    @property
    def display(self) -> str:
        """How a value is shown: count, share, days, years or gbp."""
        return UNIT_DISPLAY[self.unit]

    @property
    def additive(self) -> bool:
        """Whether values add over disjoint groups (counts and costs: flows). Costs by group
        leave out decision capacity, which no child carries."""
        return self.kind == "flow"

    @property
    def adds_over_years(self) -> bool:
        """Whether the values of consecutive periods add up to the value of their union: flows
        that count events or costs, not distinct children (a child who goes missing in two
        years is one child over both, not two)."""
        return self.kind == "flow" and not self.distinct

    @property
    def zero_if_absent(self) -> bool:
        """Whether a cell without rows is 0 (flows and stocks) rather than undefined."""
        return self.kind in ("flow", "stock")

    @property
    def groupings(self) -> tuple[str, ...]:
        """The ``group_by`` values its rows come under."""
        if self.rows_by is not None:
            return (self.rows_by,)
        return ("all",) if self.all_only else GROUP_BYS

    def source_grouping(self, group_by: str) -> str:
        """The grouping whose ``Analysis.metrics`` pass yields its rows for ``group_by``: a
        multi-row metric's rows come with the pass for "all"."""
        return "all" if self.rows_by is not None else group_by


REGISTRY: dict[str, Metric] = {}


def metric(
    name: str,
    label: str,
    unit: str,
    kind: str = "flow",
    all_only: bool = False,
    *,
    title: str,
    short: str,
    better: str | None = None,
    payer: str | None = None,
    tags: Iterable[str] = (),
    rows_by: str | None = None,
    distinct: bool = False,
) -> Callable[[Callable[[View], pd.Series]], Callable[[View], pd.Series]]:
    """Register the decorated function as metric ``name`` (see ``Metric`` for the fields).

    Raises:
        ValueError: a field outside its allowed values, or the name registered twice.
    """
    checks = [
        ("unit", unit, UNIT_DISPLAY),
        ("kind", kind, KINDS),
        ("better", better, (None, *DIRECTIONS)),
        ("payer", payer, (None, *PAYERS)),
        *(("tag", tag, TAGS) for tag in tags),
    ]
    problems = [
        f"{what} {value!r} (allowed: {list(ok)})" for what, value, ok in checks if value not in ok
    ]
    if name in REGISTRY:
        problems.append("registered twice")
    if not (label and title and short):
        problems.append("an empty label, title or short heading")
    if problems:
        raise ValueError(f"metric {name}: " + "; ".join(problems))

    def register(fn: Callable[[View], pd.Series]) -> Callable[[View], pd.Series]:
        REGISTRY[name] = Metric(
            name,
            label,
            unit,
            kind,
            all_only,
            fn,
            title=title,
            short=short,
            better=better,
            payer=payer,
            tags=frozenset(tags),
            rows_by=rows_by,
            distinct=distinct,
        )
        return fn

    return register


def tagged(*tags: str) -> tuple[str, ...]:
    """Metrics with any of ``tags``, in registry order."""
    return tuple(name for name, m in REGISTRY.items() if m.tags & set(tags))


# --------------------------------------------------------------------------- preparation
def age_band(age_years: pd.Series) -> pd.Series:
    """Age band labels (categorical; 'nan' where the age is unknown)."""
    band = pd.cut(
        age_years, [-np.inf, 12, 15, np.inf], right=False, labels=["0-11", "12-14", "15-17"]
    )
    if band.isna().any():
        band = band.cat.add_categories("nan").fillna("nan")
    return band


def annotate(events: pd.DataFrame, children: pd.DataFrame) -> pd.DataFrame:
    """NRM events sorted by time, with the child's groups and the episode's referral time."""
    ev = events[(events["child_id"] >= 0) & (events["episode"] >= 0)]
    ev = ev.sort_values(["t_days"], kind="stable").reset_index(drop=True)
    ref = ev.loc[ev["event"] == "referred", ["child_id", "episode", "t_days"]]
    ref = ref.drop_duplicates(["child_id", "episode"]).rename(columns={"t_days": "t_referred"})
    ev = ev.merge(ref, on=["child_id", "episode"], how="left")
    attrs = children[
        [
            "child_id",
            "sex",
            "nationality_group",
            "exploitation_type",
            "exploitation_types",
            "nation",
            "day18",
        ]
    ]
    # factorised once here, over the children, for every table exploded by type
    attrs = attrs.assign(exploitation_types=attrs["exploitation_types"].astype("category"))
    ev = ev.merge(attrs, on="child_id", how="left")
    age_at_referral = 18.0 - (ev["day18"] - ev["t_referred"]) / DAYS_PER_YEAR
    ev["age_band"] = age_band(age_at_referral)
    ev["all"] = pd.Categorical.from_codes(np.zeros(len(ev), dtype=np.int8), categories=["all"])
    for column in ("sex", "nationality_group", "exploitation_type", "nation", "route", "event"):
        if not isinstance(ev[column].dtype, pd.CategoricalDtype):
            ev[column] = ev[column].astype(str).astype("category")
    return ev


def spells(
    ev: pd.DataFrame,
    start: str | Sequence[str],
    end: str | Sequence[str],
    horizon: float,
    start_mask: np.ndarray | None = None,
    end_mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per child: each ``start`` event paired with the child's next ``end`` event after it in
    the log (horizon if none). Returns the start rows with ``t_end``.

    Pairing follows the log order, not only the time, so a spell that starts at the moment
    the previous one ends (a placement move records the old placement's end, then the new
    placement) is not closed by that earlier end. ``ev`` must be in log order (``to_frame``).
    """
    starts_ok = ev["event"].isin([start] if isinstance(start, str) else start).to_numpy()
    ends_ok = ev["event"].isin([end] if isinstance(end, str) else end).to_numpy()
    if start_mask is not None:
        starts_ok = starts_ok & start_mask
    if end_mask is not None:
        ends_ok = ends_ok & end_mask
    position = np.arange(len(ev), dtype=np.int64)
    s = ev[starts_ok].copy()
    if s.empty:
        s["t_end"] = pd.Series(dtype=float)
        return s
    child = ev["child_id"].to_numpy()
    # merge only the keys (carrying every column through merge_asof is slow)
    keys = pd.DataFrame({"_pos": position[starts_ok], "child_id": child[starts_ok]})
    e = pd.DataFrame(
        {
            "_pos": position[ends_ok],
            "child_id": child[ends_ok],
            "t_end": ev["t_days"].to_numpy()[ends_ok],
        }
    )
    merged = pd.merge_asof(
        keys, e, on="_pos", by="child_id", direction="forward", allow_exact_matches=False
    )
    s["t_end"] = merged["t_end"].fillna(horizon).to_numpy()
    return s.reset_index(drop=True)


def _explode_types(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (row, exploitation type) for the ``exploitation_any`` grouping: each row
    repeated once per type of its ``exploitation_types`` ("a+b"; categorical), in row order.
    A row without types counts under "nan"."""
    combos = [*frame["exploitation_types"].cat.categories, math.nan]
    codes = frame["exploitation_types"].cat.codes.to_numpy() % len(combos)  # -1: nan
    split = [str(c).split("+") for c in combos]
    types = sorted({t for i in np.unique(codes) for t in split[i]})
    type_code = {t: i for i, t in enumerate(types)}
    # the type codes of every combination laid end to end; where each combination starts
    flat = np.array([type_code.get(t, -1) for parts in split for t in parts], dtype=np.int64)
    lengths = np.array([len(parts) for parts in split], dtype=np.int64)
    first = np.cumsum(lengths) - lengths
    n = lengths[codes]  # types of each row
    rows = np.repeat(np.arange(len(frame)), n)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(n) - n, n)  # 0, 1, .. in each row
    out = frame.take(rows).reset_index(drop=True)
    out["exploitation_any"] = pd.Categorical.from_codes(
        flat[first[codes[rows]] + within], categories=pd.Index(types)
    )
    return out


class Schedule:
    """A piecewise-constant series from system rows (unit costs, capacities) by key."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.by_key: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for key, part in rows.groupby("reason", observed=True):
            part = part.sort_values("t_days", kind="stable")
            self.by_key[str(key)] = (part["t_days"].to_numpy(float), part["value"].to_numpy(float))

    def at(self, key: str, t: np.ndarray) -> np.ndarray:
        times, values = self.by_key.get(key, (np.array([0.0]), np.array([0.0])))
        i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(values) - 1)
        return values[i]

    def integral(self, key: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Integral over [a, b) of the series (value per day), elementwise."""
        times, values = self.by_key.get(key, (np.array([0.0]), np.array([0.0])))
        a, b = np.asarray(a, float), np.asarray(b, float)
        total = np.zeros(np.broadcast(a, b).shape)
        edges = np.append(times, np.inf)
        edges[0] = -np.inf
        for v, lo, hi in zip(values, edges[:-1], edges[1:], strict=True):
            total += v * np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None)
        return total


# --------------------------------------------------------------------------- the analysis
class Analysis:
    """Annotated events plus derived tables for one replicate; computes metrics by period."""

    def __init__(
        self,
        events: pd.DataFrame,
        children: pd.DataFrame,
        horizon_day: float,
        costs: Mapping[str, float] | None = None,
    ) -> None:
        self.horizon_day = horizon_day
        self.system = events[events["child_id"] < 0].reset_index(drop=True)
        self.outside = events[(events["child_id"] >= 0) & (events["episode"] < 0)]
        self.ev = annotate(events, children)
        self.day18 = children.set_index("child_id")["day18"]
        unit_rows = self.system[self.system["event"] == "unit_cost"]
        if unit_rows.empty and costs:  # logs saved before unit costs were recorded
            unit_rows = pd.DataFrame(
                {"t_days": 0.0, "reason": list(costs), "value": list(costs.values())}
            )
        self.unit_costs = Schedule(unit_rows)
        self.capacity = Schedule(self.system[self.system["event"] == "capacity"])
        self._cache: dict[tuple[str, str], Any] = {}
        self._rows: dict[str, tuple[tuple[Any, ...], EventRows]] = {}

    # ------------------------------------------------------------------ derived tables
    def derived(self, name: str, group_by: str) -> pd.DataFrame:
        """A derived table (spells etc.) for ``group_by``, cached: the table itself (every
        group column; shared, read only), or for "exploitation_any" one row per (row, type)
        without the other group columns."""
        if (name, "") not in self._cache:
            self._cache[(name, "")] = _DERIVED[name](self)
        table = self._cache[(name, "")]
        if group_by != "exploitation_any":
            return table
        if (name, group_by) not in self._cache:
            narrow = table.drop(columns=[c for c in GROUP_COLUMNS if c in table.columns])
            self._cache[(name, group_by)] = _explode_types(narrow).drop(
                columns="exploitation_types"
            )
        return self._cache[(name, group_by)]

    def rows(self, group_by: str, periods: Sequence[tuple[Any, float, float]]) -> EventRows:
        """The rows of ``events_for(group_by)`` in ``periods``, by event. The groupings other
        than "exploitation_any" share one table, so they share these rows: the last periods'
        are kept per table (a summary asks for the same periods grouping after grouping;
        calibration asks for many sets of periods, which are not all kept)."""
        table = "exploitation_any" if group_by == "exploitation_any" else ""
        kept = self._rows.get(table)
        if kept is None or kept[0] != tuple(periods):
            kept = (tuple(periods), EventRows(self.events_for(group_by), periods))
            self._rows[table] = kept
        return kept[1]

    def request_answers(self) -> pd.Series:
        """Days from each guardian request to the allocation that answered it (NaN if none),
        by the request's (child_id, t_days); cached. A child has at most one request waiting
        at a time (no new request while awaiting a guardian), so a request's answer is the
        child's next guardian row in the log if it is an allocation, whichever episode it
        falls in (a repeat referral may open one while a direct ICTG place is awaited)."""
        if ("request_answers", "") not in self._cache:
            ev = self.ev
            rows = ev[ev["event"].isin(("guardian_requested", "guardian_allocated"))]
            rows = rows.sort_values("child_id", kind="stable")  # log order within a child
            child = rows["child_id"].to_numpy()
            alloc = (rows["event"] == "guardian_allocated").to_numpy()
            value = rows["value"].to_numpy(dtype=float)
            answered = np.zeros(len(rows), dtype=bool)
            answered[:-1] = (child[1:] == child[:-1]) & alloc[1:] & ~alloc[:-1]
            days = np.full(len(rows), np.nan)
            days[:-1] = np.where(answered[:-1], value[1:], np.nan)
            req = rows[~alloc]
            keys = pd.MultiIndex.from_arrays([req["child_id"], req["t_days"]])
            answers = pd.Series(days[~alloc], index=keys)
            self._cache[("request_answers", "")] = answers[~keys.duplicated()]
        return self._cache[("request_answers", "")]

    def events_for(self, group_by: str) -> pd.DataFrame:
        return self.derived("events", group_by)

    # ------------------------------------------------------------------ metrics
    def period_metrics(
        self, start: float, end: float, group_by: str, metrics: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Every metric (or ``metrics``) for [start, end) days, one row per (group, metric)."""
        out = self.metrics([(0, start, end)], group_by, metrics)
        return out.drop(columns="period")

    def metrics(
        self,
        periods: Sequence[tuple[Any, float, float]],
        group_by: str,
        metrics: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Metrics for each (label, start, end) period; periods must not overlap.

        Returns long rows: period, group_by, group, metric, value.
        """
        names = list(REGISTRY) if metrics is None else list(metrics)
        unknown = sorted(set(names) - set(REGISTRY))
        if unknown:
            raise KeyError(f"unknown metrics {unknown}; known: {sorted(REGISTRY)}")
        view = View(self, periods, group_by)
        columns: dict[str, pd.Series] = {}
        extra: list[pd.DataFrame] = []
        for name in names:
            m = REGISTRY[name]
            if m.rows_by is not None:  # its own rows (group_by = rows_by), in the pass for "all"
                if group_by == "all":
                    extra.append(_rows_of(m, m.fn(view)))
            elif group_by == "all" or not m.all_only:
                columns[name] = m.fn(view)
        long = _long_rows(view.index, columns)
        long["group_by"] = group_by
        long = pd.concat([long, *extra], ignore_index=True) if extra else long
        long["value"] = long["value"].astype(float)
        return long[["period", "group_by", "group", "metric", "value"]]


def _long_rows(index: pd.MultiIndex, columns: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Rows period, group, metric, value: each metric's values on ``index`` (period, group),
    metric after metric; a cell without a value is 0 for counts and stocks, else NaN."""
    n = len(index)
    values = np.empty((len(columns), n))
    for row, (name, series) in enumerate(columns.items()):
        same = series.index is index  # View.count's cells
        cells = series if same else series.reindex(index)
        values[row] = cells.to_numpy(dtype=float, na_value=np.nan)
        if REGISTRY[name].zero_if_absent:
            values[row][np.isnan(values[row])] = 0.0
    cell = np.tile(np.arange(n), len(columns))  # the levels keep their dtypes (as melt)
    return pd.DataFrame(
        {
            "period": index.get_level_values(0)[cell],
            "group": index.get_level_values(1)[cell],
            "metric": pd.Index(list(columns), dtype=str).repeat(n),
            "value": values.ravel(),
        }
    )


# group columns dropped from derived tables when not the grouping (route is also an event
# attribute that costs read, so it stays)
GROUP_COLUMNS = {"all", "sex", "nationality_group", "exploitation_type", "nation", "age_band"}


def _cells(
    ev: pd.DataFrame, group_by: str, groups: list[str], k: np.ndarray, inside: np.ndarray
) -> np.ndarray | None:
    """For each row label of ``ev`` (a 0..n-1 range), its cell of the view's (period, group)
    index in index order (-1: outside the periods, or no group); None if ``ev`` is not so
    labelled or its group column is not categorical (``View.count`` then groups the frame)."""
    index, column = ev.index, ev[group_by]
    if not (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and isinstance(column.dtype, pd.CategoricalDtype)
    ):
        return None
    codes = column.cat.codes.to_numpy()
    where = pd.Index(groups, dtype=object).get_indexer(
        np.asarray(column.cat.categories.astype(str), dtype=object)
    )
    position = np.where(codes >= 0, where[codes], -1)
    cells = np.where(inside & (position >= 0), k * len(groups) + position, -1)
    return cells.astype(np.int64)


Where = tuple[str, tuple[str, ...]]  # (column, values): rows whose column is one of the values


class EventRows:
    """The rows of an events table in a set of non-overlapping periods, by event, and the
    frames of sets of events taken from them (one per set, shared: read only)."""

    def __init__(self, ev: pd.DataFrame, periods: Sequence[tuple[Any, float, float]]) -> None:
        labels = np.array([lab for lab, _, _ in periods], dtype=object)
        starts = np.array([a for _, a, _ in periods], dtype=float)
        ends = np.array([b for _, _, b in periods], dtype=float)
        t = ev["t_days"].to_numpy()
        k = np.searchsorted(starts, t, side="right") - 1
        self.inside = (k >= 0) & (t < ends[np.clip(k, 0, None)])
        self.period = k  # index into periods (where inside)
        self.labels, self.ev = labels, ev
        # rows in the periods by event code, each in log order (``annotate`` makes the event
        # column categorical), so a set of events is selected without a pass over every row
        rows, names = np.flatnonzero(self.inside), ev["event"].cat.categories
        codes = ev["event"].cat.codes.to_numpy()[rows]
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        self.rows_of = {
            str(name): rows[order[bounds[i] : bounds[i + 1]]] for i, name in enumerate(names)
        }
        self._frames: dict[tuple[str, ...], pd.DataFrame] = {}

    def of(self, names: tuple[str, ...], where: Where | None = None) -> pd.DataFrame:
        """The rows of these events in the periods, in log order, labelled by their row of
        the table, with their ``period`` label; with ``where`` = (column, values), only the
        rows whose ``column`` is one of ``values`` (not missing)."""
        if where is not None:
            key = (*names, "where", where[0], *where[1])
            if key not in self._frames:
                frame = self.of(names)
                keep = frame[where[0]].isin(where[1]).to_numpy(bool, na_value=False)
                self._frames[key] = frame[keep]
            return self._frames[key]
        if names not in self._frames:
            none = np.empty(0, dtype=np.int64)
            rows = np.concatenate([self.rows_of.get(n, none) for n in names])
            rows = np.sort(rows) if len(names) > 1 else rows  # back in log order
            period = self.labels[self.period[rows]]
            self._frames[names] = self.ev.take(rows).assign(period=period)
        return self._frames[names]


class View:
    """One grouping and a set of non-overlapping periods: the frames a metric reads."""

    def __init__(
        self, analysis: Analysis, periods: Sequence[tuple[Any, float, float]], group_by: str
    ) -> None:
        self.a = analysis
        self.g = group_by
        self.periods = list(periods)
        self.labels = np.array([lab for lab, _, _ in self.periods], dtype=object)
        self.starts = np.array([a for _, a, _ in self.periods], dtype=float)
        self.ends = np.array([b for _, _, b in self.periods], dtype=float)
        ev = analysis.events_for(group_by)
        self._rows = analysis.rows(group_by, self.periods)
        groups = sorted(map(str, ev[group_by].dropna().unique())) if len(ev) else []
        if group_by == "all":
            groups = ["all"]
        self.index = pd.MultiIndex.from_product(
            [list(self.labels), groups], names=["period", group_by]
        )
        self.keys = ["period", group_by]
        self._memo: dict[str, Any] = {}
        self._cells = _cells(ev, group_by, groups, self._rows.period, self._rows.inside)

    def count(self, frame: pd.DataFrame) -> pd.Series:
        """Rows of ``frame`` (rows of ``of``) by (period, group): every cell of the index,
        zeros included (count metrics fill missing cells with zeros anyway)."""
        if self._cells is None:
            return frame.groupby(self.keys, observed=True).size()
        cells = self._cells[frame.index.to_numpy()]
        counts = np.bincount(cells[cells >= 0], minlength=len(self.index))
        return pd.Series(counts, index=self.index)

    def memo(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` once per view: parts that several metrics share (payer costs, stocks)."""
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def of(self, *names: str, where: Where | None = None) -> pd.DataFrame:
        """The rows of these events in the periods (``EventRows.of``; shared: read only)."""
        return self._rows.of(names, where)

    def agg(self, frame: pd.DataFrame, values: pd.Series, how: str) -> pd.Series:
        """``values`` (one per row of ``frame``, rows of ``of``) aggregated by (period, group)
        with the pandas groupby aggregation ``how`` ("sum", "mean", "median", "nunique"), for
        the cells with rows. Grouping by the rows' cell numbers gives each cell the same rows
        in the same order as grouping by the period and group columns, so the same values."""
        if self._cells is None:
            return getattr(values.groupby([frame[k] for k in self.keys], observed=True), how)()
        cells = self._cells[frame.index.to_numpy()]
        grouper = pd.Categorical.from_codes(cells, categories=pd.RangeIndex(len(self.index)))
        out = getattr(values.groupby(grouper, observed=True), how)()
        return pd.Series(out.array, index=self.index[out.index.codes])

    def nunique(self, frame: pd.DataFrame) -> pd.Series:
        """Distinct children among the rows of ``frame`` (rows of ``of``) by (period, group)."""
        return self.agg(frame, frame["child_id"], "nunique")

    def mean(self, frame: pd.DataFrame, values: pd.Series) -> pd.Series:
        return self.agg(frame, values, "mean")

    def by_period(
        self, column: pd.Series, values: np.ndarray, ids: np.ndarray | None = None
    ) -> pd.Series:
        """Rows aggregated by (period, group): ``column`` (categorical, as group columns are in
        ``ev``) gives each row's group and ``values`` has one column per period. Floats are
        summed, each cell adding its rows in row order as
        ``pd.Series(values[:, p]).groupby(column).sum()`` does, so equal to that bit for bit
        (pandas' compensated sum; ``np.bincount`` would add naively); booleans are counted,
        or with ``ids`` (one per row) the distinct ids among the true rows. Every category of
        ``column`` in every period (0 where no row); empty if ``values`` has no rows."""
        if not len(values):
            return pd.Series(dtype=float)
        groups = column.cat.categories
        index = pd.MultiIndex.from_product([list(self.labels), list(groups)], names=self.keys)
        if ids is None:
            frame = pd.DataFrame(values, copy=False)
            totals = frame.groupby(column.array, observed=False).sum().to_numpy().T
            return pd.Series(totals.ravel(), index=index)
        row, period = np.nonzero(values & (column.cat.codes.to_numpy() >= 0)[:, None])
        cells = period * len(groups) + column.cat.codes.to_numpy()[row]
        span = int(ids.max()) + 1
        pairs = pd.unique(cells.astype(np.int64) * span + ids[row])  # hashed: no sort
        return pd.Series(np.bincount(pairs // span, minlength=len(index)), index=index)

    def clipped(self, t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spells [t0, t1) (days) cut to each period: (start, end) arrays of rows x periods,
        end >= start (empty where the spell misses the period)."""
        lo = np.maximum(t0[:, None], self.starts)
        return lo, np.maximum(np.minimum(t1[:, None], self.ends), lo)

    def overlap(
        self, spells: pd.DataFrame, weight: np.ndarray | float = 1.0, distinct: bool = False
    ) -> pd.Series:
        """Sum over spells of (days overlapping each period x weight), by group; or, with
        ``distinct``, the number of distinct children with a spell overlapping the period."""
        t0 = spells["t_days"].to_numpy()
        t1 = spells["t_end"].to_numpy()
        if distinct:
            touch = (t0[:, None] < self.ends) & (t1[:, None] > self.starts)
            return self.by_period(spells[self.g], touch, spells["child_id"].to_numpy())
        lo, hi = self.clipped(t0, t1)
        days = hi - lo
        w = weight if np.isscalar(weight) else np.asarray(weight)[:, None]
        return self.by_period(spells[self.g], days * w)

    def all_only(self, values: Sequence[float]) -> pd.Series:
        """A series with one value per period under the group 'all'."""
        index = pd.MultiIndex.from_arrays(
            [list(self.labels), ["all"] * len(self.labels)], names=self.keys
        )
        return pd.Series(list(values), index=index, dtype=float)

    def in_periods(self, frame: pd.DataFrame) -> list[pd.DataFrame]:
        t = frame["t_days"].to_numpy()
        return [frame[(t >= a) & (t < b)] for _, a, b in self.periods]


# --------------------------------------------------------------------------- derived tables
def _events(a: Analysis) -> pd.DataFrame:
    return a.ev


def _awaiting(a: Analysis) -> pd.DataFrame:
    """One row per episode that reached a positive RG: when it started awaiting CG and when it
    stopped (its CG decision or the case's closure, whichever came first; inf if neither)."""
    ev = a.ev
    key = ["child_id", "episode"]
    positive = ev["positive"].fillna(False).astype(bool)
    enter = ev[
        ((ev["event"] == "rg_decided") & positive)
        | ((ev["event"] == "reconsideration_decided") & (ev["decision_type"] == "rg") & positive)
    ]
    enter = enter.groupby(key, as_index=False, observed=True).first()
    exits = ev[ev["event"].isin(("cg_decided", "case_closed"))]
    closed = exits.groupby(key)["t_days"].min().rename("t_exit")
    out = enter.merge(closed, on=key, how="left")
    out["t_exit"] = out["t_exit"].fillna(np.inf)
    return out


def _placements(a: Analysis) -> pd.DataFrame:
    return spells(a.ev, "placed", "placement_ended", a.horizon_day)


def _guardians(a: Analysis) -> pd.DataFrame:
    return spells(a.ev, "guardian_allocated", "guardian_ended", a.horizon_day)


def _identified_again(ev: pd.DataFrame) -> pd.Series:
    """Referrals that identify a re-exploited or lost child again: ``repeat`` (a new case)
    and ``linked`` (joins the open case). Not ``duplicate``: a second referral about the same
    instance, which finds no one (the model's duplicate referral changes nothing about the
    child)."""
    return (ev["event"] == "referred") & ev["referral_kind"].isin(("repeat", "linked"))


def _missing(a: Analysis) -> pd.DataFrame:
    """Missing episodes (from care): to the return; if not found, to the referral that
    identifies the child again (repeat or linked, not duplicate), or 18 (child-days: as an
    episode of going missing from care ends when care does), or the horizon."""
    ev = a.ev
    end_ok = (ev["event"].isin(("returned", "followup_ended")) | _identified_again(ev)).to_numpy()
    out = spells(
        ev,
        "went_missing",
        ("returned", "followup_ended", "referred"),
        a.horizon_day,
        end_mask=end_ok,
    )
    if len(out):
        out["t_end"] = np.minimum(out["t_end"], out["day18"])
    return out


def _exploited(a: Analysis) -> pd.DataFrame:
    """Re-exploitation before 18 until identified again (a repeat or linked referral, not a
    duplicate), 18, or the end of the follow-up."""
    ev = a.ev
    start_ok = (ev["reason"].isin(("community", "missing"))).to_numpy(bool, na_value=False)
    end_ok = (_identified_again(ev) | (ev["event"] == "followup_ended")).to_numpy(bool)
    out = spells(
        ev,
        "re_trafficked",
        ("referred", "followup_ended"),
        a.horizon_day,
        start_mask=start_ok,
        end_mask=end_ok,
    )
    if len(out):
        out["t_end"] = np.minimum(out["t_end"], out["day18"])
    return out


def _msvcc(a: Analysis) -> pd.DataFrame:
    s = a.ev[a.ev["event"] == "msvcc_supported"].copy()
    s["t_end"] = s["t_days"] + s["value"].fillna(0.0)
    return s


def _adult_settings(a: Analysis) -> pd.DataFrame:
    """Age-disputed children housed as adults: to the assessment that finds a child, or 18."""
    return spells(a.ev, "adult_settings_entered", "adult_settings_left", a.horizon_day)


def _closures(a: Analysis) -> pd.DataFrame:
    return a.ev[a.ev["event"] == "case_closed"]


_DERIVED: dict[str, Callable[[Analysis], pd.DataFrame]] = {
    "events": _events,
    "awaiting": _awaiting,
    "placements": _placements,
    "guardians": _guardians,
    "missing": _missing,
    "exploited": _exploited,
    "msvcc": _msvcc,
    "closures": _closures,
    "adult_settings": _adult_settings,
}


def _rows_of(m: Metric, values: pd.Series) -> pd.DataFrame:
    """A multi-row metric's values by (period, ``m.rows_by``) as long rows."""
    table = values.rename("value").reset_index().rename(columns={m.rows_by: "group"})
    table["metric"], table["group_by"] = m.name, m.rows_by
    return table[["period", "group_by", "group", "metric", "value"]]


# --------------------------------------------------------------------------- referrals
def _kind(view: View, *kinds: str) -> pd.DataFrame:
    return view.of("referred", where=("referral_kind", kinds))


@metric(
    "referrals",
    "referred events (new, repeat, linked and duplicate)",
    "referrals",
    title="Referrals of children",
    short="referrals",
    tags=("key",),
)
def _referrals(v: View) -> pd.Series:
    return v.count(v.of("referred"))


@metric(
    "repeat_referrals",
    "referrals of a child referred before",
    "referrals",
    title="Repeat referrals",
    short="repeat",
    better="lower",
    tags=("key",),
)
def _repeat_referrals(v: View) -> pd.Series:
    return v.count(_kind(v, "repeat", "linked", "duplicate"))


@metric(
    "linked_referrals",
    "repeat referrals joined to an open case (no new decision)",
    "referrals",
    title="Repeat referrals joined to an open case",
    short="linked",
)
def _linked_referrals(v: View) -> pd.Series:
    return v.count(_kind(v, "linked", "duplicate"))


@metric(
    "duplicate_referrals",
    "second referrals about the same instance",
    "referrals",
    title="Duplicate referrals",
    short="duplicate",
)
def _duplicate_referrals(v: View) -> pd.Series:
    return v.count(_kind(v, "duplicate"))


@metric(
    "children_re_referred",
    "distinct children with a repeat referral",
    "children",
    title="Children referred again",
    short="re-referred",
    better="lower",
    distinct=True,
)
def _children_re_referred(v: View) -> pd.Series:
    return v.nunique(_kind(v, "repeat", "linked", "duplicate"))


# --------------------------------------------------------------------------- decisions
def _rate(v: View, frame: pd.DataFrame) -> pd.Series:
    return v.mean(frame, frame["positive"]).astype(float)


@metric("rg_decisions", "RG decisions made", "decisions", title="RG decisions", short="RG decided")
def _rg_decisions(v: View) -> pd.Series:
    return v.count(v.of("rg_decided"))


@metric(
    "rg_positive_rate",
    "share of RG decisions that were positive",
    "share",
    "rate",
    title="Positive RG decisions (share)",
    short="RG +",
    tags=("key",),
)
def _rg_positive_rate(v: View) -> pd.Series:
    return _rate(v, v.of("rg_decided"))


@metric(
    "cg_decisions",
    "CG decisions made",
    "decisions",
    title="CG decisions",
    short="CG decided",
    tags=("key",),
)
def _cg_decisions(v: View) -> pd.Series:
    return v.count(v.of("cg_decided"))


@metric(
    "cg_positive_rate",
    "share of CG decisions that were positive",
    "share",
    "rate",
    title="Positive CG decisions (share)",
    short="CG +",
    tags=("key",),
)
def _cg_positive_rate(v: View) -> pd.Series:
    return _rate(v, v.of("cg_decided"))


@metric(
    "disqualifications",
    "public-order disqualifications",
    "children",
    title="Public-order disqualifications",
    short="disqualified",
    better="lower",
)
def _disqualifications(v: View) -> pd.Series:
    return v.count(v.of("disqualified"))


def _waited(v: View, name: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = v.of(name)
    return frame, frame["t_days"] - frame["t_referred"]


@metric(
    "mean_days_referral_to_rg",
    "mean days from referral, over RG decisions in the period",
    "days",
    "mean",
    title="Mean days from referral to RG",
    short="mean days to RG",
    better="lower",
)
def _mean_days_rg(v: View) -> pd.Series:
    frame, waited = _waited(v, "rg_decided")
    return v.mean(frame, waited)


@metric(
    "median_days_referral_to_cg",
    "median days from referral, over CG decisions in the period",
    "days",
    "mean",
    title="Median days from referral to CG",
    short="median days to CG",
    better="lower",
    tags=("key",),
)
def _median_days_cg(v: View) -> pd.Series:
    frame, waited = _waited(v, "cg_decided")
    return v.agg(frame, waited, "median")


@metric(
    "mean_days_referral_to_cg",
    "mean days from referral, over CG decisions in the period",
    "days",
    "mean",
    title="Mean days from referral to CG",
    short="mean days to CG",
    better="lower",
)
def _mean_days_cg(v: View) -> pd.Series:
    frame, waited = _waited(v, "cg_decided")
    return v.mean(frame, waited)


def _awaiting_stock(v: View) -> pd.Series:
    return v.memo("awaiting_stock", lambda: _awaiting_stock_of(v))


def _awaiting_stock_of(v: View) -> pd.Series:
    """Cases awaiting CG at each period's end, by group (0 for a group with none)."""
    aw = v.a.derived("awaiting", v.g)
    start, exit_ = aw["t_days"].to_numpy()[:, None], aw["t_exit"].to_numpy()[:, None]
    waiting = (start < v.ends) & (exit_ >= v.ends)
    return v.by_period(aw[v.g], waiting)


@metric(
    "awaiting_cg_at_year_end",
    "stock: cases with a positive RG and no CG or closure at the end of the period",
    "cases",
    "stock",
    title="Cases awaiting CG at year end",
    short="awaiting CG",
    better="lower",
    tags=("key",),
)
def _awaiting_cg_at_year_end(v: View) -> pd.Series:
    return _awaiting_stock(v)


@metric(
    "awaiting_cg",
    "same stock as awaiting_cg_at_year_end, at the period end",
    "cases",
    "stock",
    title="Cases awaiting CG at the period end",
    short="awaiting CG at end",
    better="lower",
)
def _awaiting_cg(v: View) -> pd.Series:
    return _awaiting_stock(v)


@metric(
    "reconsideration_requests",
    "reconsideration requests made",
    "requests",
    title="Reconsideration requests",
    short="reconsideration asked",
)
def _reconsideration_requests(v: View) -> pd.Series:
    return v.count(v.of("reconsideration_requested"))


@metric(
    "reconsideration_decisions",
    "reconsideration decisions made",
    "decisions",
    title="Reconsideration decisions",
    short="reconsidered",
)
def _reconsideration_decisions(v: View) -> pd.Series:
    return v.count(v.of("reconsideration_decided"))


@metric(
    "reconsideration_negative_upheld_rate",
    "share of reconsideration decisions upholding the negative",
    "share",
    "rate",
    title="Negatives upheld on reconsideration (share)",
    short="upheld",
)
def _upheld(v: View) -> pd.Series:
    return 1.0 - _rate(v, v.of("reconsideration_decided"))


def _closed_by_decision(v: View) -> pd.DataFrame:
    return v.of("case_closed", where=("reason", DECISION_CLOSURES))


@metric(
    "mean_days_in_limbo",
    "mean days from referral to the case's final decision, over cases decided in the period",
    "days",
    "mean",
    title="Days in limbo (referral to final decision, mean)",
    short="days in limbo",
)
def _limbo(v: View) -> pd.Series:
    c = _closed_by_decision(v)
    return v.mean(c, c["t_days"] - c["t_referred"])


@metric(
    "mean_age_at_final_decision",
    "mean age (years) at the case's final decision",
    "years",
    "mean",
    title="Age at final decision (mean)",
    short="age at decision",
)
def _age_at_decision(v: View) -> pd.Series:
    c = _closed_by_decision(v)
    return v.mean(c, 18.0 - (c["day18"] - c["t_days"]) / DAYS_PER_YEAR)


# --------------------------------------------------------------------------- care and missing
@metric(
    "children_placed",
    "distinct children in a care placement at any time in the period",
    "children",
    title="Children in a care placement",
    short="placed",
    distinct=True,
)
def _children_placed(v: View) -> pd.Series:
    return v.overlap(v.a.derived("placements", v.g), distinct=True)


@metric(
    "placements_by_type",
    "placements started in the period (group_by placement_type)",
    "placements",
    rows_by="placement_type",
    title="Placements started, by type",
    short="placements",
)
def _placements_by_type(v: View) -> pd.Series:
    """Placements started by (period, placement type), every type in every period."""
    return (
        v.of("placed")
        .groupby(["period", "placement_type"], observed=True)
        .size()
        .unstack(fill_value=0)
        .reindex(columns=PLACEMENT_TYPES, fill_value=0)
        .reindex(v.labels, fill_value=0)
        .stack()
    )


@metric(
    "placement_moves",
    "moves from one placement to another",
    "moves",
    title="Placement moves",
    short="moves",
)
def _moves(v: View) -> pd.Series:
    return v.count(v.of("placement_moved"))


@metric(
    "missing_episodes",
    "missing episodes started (NRM children)",
    "episodes",
    title="Missing episodes",
    short="missing episodes",
    better="lower",
    tags=("reference",),
)
def _missing_episodes(v: View) -> pd.Series:
    return v.count(v.of("went_missing"))


@metric(
    "children_gone_missing",
    "distinct children who went missing",
    "children",
    title="Children who went missing",
    short="went missing",
    better="lower",
    tags=("key",),
    distinct=True,
)
def _children_gone_missing(v: View) -> pd.Series:
    return v.nunique(v.of("went_missing"))


@metric(
    "children_not_found",
    "missing children not found (long-term missing)",
    "children",
    title="Missing children not found",
    short="not found",
    distinct=True,
)
def _children_not_found(v: View) -> pd.Series:
    return v.nunique(v.of("not_found"))


@metric(
    "days_missing",
    "child-days missing from care in the period (a child not found: until identified again, or 18)",
    "child-days",
    title="Days missing",
    short="days missing",
)
def _days_missing(v: View) -> pd.Series:
    return v.overlap(v.a.derived("missing", v.g))


def _hotel_rows(v: View, event: str) -> list[int]:
    out = v.a.outside[v.a.outside["event"] == event]
    nrm = v.a.ev[(v.a.ev["event"] == event) & (v.a.ev["placement_type"] == "hotel")]
    frame = pd.concat([out[["t_days"]], nrm[["t_days"]]])
    return [len(p) for p in v.in_periods(frame)]


@metric(
    "hotel_placements",
    "children placed in Home Office hotels (referred or not)",
    "children",
    all_only=True,
    title="Children placed in Home Office hotels",
    short="hotel placed",
)
def _hotel_placements(v: View) -> pd.Series:
    arrived = v.a.outside[v.a.outside["event"] == "hotel_arrived"]
    nrm = v.a.ev[(v.a.ev["event"] == "placed") & (v.a.ev["placement_type"] == "hotel")]
    frame = pd.concat([arrived[["t_days"]], nrm[["t_days"]]])
    return v.all_only([len(p) for p in v.in_periods(frame)])


@metric(
    "hotel_missing_episodes",
    "missing episodes from Home Office hotels (referred or not)",
    "episodes",
    all_only=True,
    title="Missing episodes from hotels",
    short="hotel missing",
)
def _hotel_missing(v: View) -> pd.Series:
    return v.all_only(_hotel_rows(v, "went_missing"))


@metric(
    "hotel_not_found",
    "children missing from hotels and not found",
    "children",
    all_only=True,
    title="Children missing from hotels, not found",
    short="hotel not found",
)
def _hotel_not_found(v: View) -> pd.Series:
    return v.all_only(_hotel_rows(v, "not_found"))


# --------------------------------------------------------------------------- guardianship
def _allocated(v: View, kind: str) -> pd.DataFrame:
    return v.of("guardian_allocated", where=("guardian_kind", (kind,)))


def _requested(v: View, kind: str) -> pd.DataFrame:
    return v.of("guardian_requested", where=("guardian_kind", (kind,)))


@metric(
    "ictg_direct_referrals",
    "children referred to a direct ICTG (allocated now or waiting for a caseload place)",
    "children",
    title="Children referred to a direct ICTG",
    short="ICTG direct",
    better="higher",
)
def _ictg_direct(v: View) -> pd.Series:
    return v.count(_requested(v, "ictg_direct"))


@metric(
    "ictg_indirect_referrals",
    "children referred for indirect ICTG support",
    "children",
    title="Children referred for indirect ICTG support",
    short="ICTG indirect",
)
def _ictg_indirect(v: View) -> pd.Series:
    return v.count(_requested(v, "ictg_indirect"))


@metric(
    "guardian_allocations",
    "guardians allocated (any kind)",
    "children",
    title="Guardians allocated",
    short="guardians allocated",
)
def _guardian_allocations(v: View) -> pd.Series:
    return v.count(v.of("guardian_allocated"))


def _requests_with_allocation(v: View) -> pd.DataFrame:
    """Guardian requests in each period with the days to the allocation that answered them
    (NaN if none by the horizon: the child turned 18 or left before a place was free)."""
    return v.memo("requests_with_allocation", lambda: _requests_with_allocation_of(v))


def _requests_with_allocation_of(v: View) -> pd.DataFrame:
    req = v.of("guardian_requested")
    keys = pd.MultiIndex.from_arrays([req["child_id"], req["t_days"]])
    return req.assign(days=v.a.request_answers().reindex(keys).to_numpy(dtype=float))


@metric(
    "share_guardian_within_24h",
    "share of referrals to a guardian service answered by first contact within 24 hours",
    "share",
    "rate",
    title="Share with a guardian within 24 hours",
    short="guardian in 24h",
)
def _within_24h(v: View) -> pd.Series:
    req = _requests_with_allocation(v)
    return v.mean(req, (req["days"] <= 1.0).astype(float))


@metric(
    "guardian_requests_unanswered",
    "referrals to a guardian service never allocated (18 or left first; or still waiting)",
    "children",
    title="Referred to a guardian, never allocated one",
    short="guardian unanswered",
)
def _unanswered(v: View) -> pd.Series:
    req = _requests_with_allocation(v)
    return v.count(req[req["days"].isna()])


@metric(
    "mean_days_to_guardian",
    "mean days from request to a guardian's first contact",
    "days",
    "mean",
    title="Days from request to a guardian (mean)",
    short="days to guardian",
)
def _days_to_guardian(v: View) -> pd.Series:
    alloc = v.of("guardian_allocated")
    return v.mean(alloc, alloc["value"])


@metric(
    "children_with_guardian",
    "distinct children supported by a guardian in the period",
    "children",
    title="Children supported by a guardian",
    short="with guardian",
    distinct=True,
)
def _children_with_guardian(v: View) -> pd.Series:
    return v.overlap(v.a.derived("guardians", v.g), distinct=True)


# --------------------------------------------------------------------------- 18 and after
@metric(
    "aged_out_without_decision",
    "children who turned 18 while awaiting a decision",
    "children",
    title="Children who turned 18 still waiting",
    short="18 undecided",
    better="lower",
    tags=("key",),
)
def _aged_out(v: View) -> pd.Series:
    return v.memo("turned_18", lambda: v.count(v.of("turned_18")))


@metric(
    "turned_18_in_process",
    "same as aged_out_without_decision",
    "children",
    title="Children who turned 18 in the process",
    short="turned 18 waiting",
    better="lower",
)
def _turned_18(v: View) -> pd.Series:
    return v.memo("turned_18", lambda: v.count(v.of("turned_18")))


@metric(
    "withdrawn_or_suspended_at_18",
    "cases withdrawn or suspended at 18",
    "children",
    title="Cases withdrawn or suspended at 18",
    short="dropped at 18",
    better="lower",
)
def _dropped_at_18(v: View) -> pd.Series:
    return v.count(v.of("withdrawn", "suspended", where=("reason", ("at_18", "no_consent_at_18"))))


@metric(
    "msvcc_referrals",
    "young adults referred to the MSVCC at 18",
    "young adults",
    title="Referred to adult support (MSVCC) at 18",
    short="MSVCC referred",
)
def _msvcc_referrals(v: View) -> pd.Series:
    return v.count(v.of("msvcc_referred"))


@metric(
    "msvcc_supported",
    "young adults who received MSVCC support",
    "young adults",
    title="Supported by MSVCC after 18",
    short="MSVCC supported",
)
def _msvcc_supported(v: View) -> pd.Series:
    return v.count(v.of("msvcc_supported"))


@metric(
    "removed_at_18",
    "young people removed at 18 under the Illegal Migration Act",
    "young adults",
    title="Removed at 18 (Illegal Migration Act)",
    short="removed at 18",
)
def _removed(v: View) -> pd.Series:
    return v.count(v.of("removed_at_18"))


@metric(
    "leave_grants",
    "grants of victim leave",
    "grants",
    title="Grants of victim leave",
    short="leave grants",
    better="higher",
    tags=("reference",),
)
def _leave_grants(v: View) -> pd.Series:
    return v.count(v.of("leave_granted"))


def _retrafficked(v: View, adult: bool) -> pd.DataFrame:
    rt = v.of("re_trafficked")
    after = (rt["reason"] == "after_18").to_numpy(bool, na_value=False)
    return rt[after if adult else ~after]


@metric(
    "re_trafficked",
    "re-trafficking events before 18",
    "events",
    title="Re-trafficked before 18 (events)",
    short="re-trafficked",
    better="lower",
    tags=("reference",),
)
def _re_trafficked(v: View) -> pd.Series:
    return v.count(_retrafficked(v, adult=False))


@metric(
    "children_re_trafficked",
    "distinct children re-trafficked before 18 at least once (``re_trafficked`` counts events)",
    "children",
    title="Children re-trafficked before 18",
    short="children re-trafficked",
    better="lower",
    tags=("reference",),
    distinct=True,
)
def _children_re_trafficked(v: View) -> pd.Series:
    return v.nunique(_retrafficked(v, adult=False))


@metric(
    "age_disputed_children",
    "children treated as adults on arrival (age-disputed at their first referral)",
    "children",
    title="Children age-disputed on arrival",
    short="age-disputed",
)
def _age_disputed_children(v: View) -> pd.Series:
    return v.nunique(v.of("age_disputed"))


@metric(
    "days_in_adult_settings",
    "child-days age-disputed children spent housed as adults (to an assessment that finds "
    "a child, or 18)",
    "child-days",
    title="Days housed as adults (age-disputed)",
    short="days as adults",
    better="lower",
)
def _days_in_adult_settings(v: View) -> pd.Series:
    return v.overlap(v.a.derived("adult_settings", v.g))


@metric(
    "re_trafficked_after_18",
    "re-trafficking events in the follow-up after 18",
    "events",
    title="Re-trafficked after 18",
    short="re-trafficked 18+",
)
def _re_trafficked_after_18(v: View) -> pd.Series:
    return v.count(_retrafficked(v, adult=True))


@metric(
    "child_days_exploited_unidentified",
    "child-days exploited and not identified: the "
    "unidentified pool (group all) and re-exploited children until identified again",
    "child-days",
    title="Child-days exploited before identification",
    short="days exploited",
)
def _days_exploited(v: View) -> pd.Series:
    individual = v.overlap(v.a.derived("exploited", v.g))
    if v.g != "all":
        return individual
    pool = v.a.system[v.a.system["event"] == "pool_size"]
    per = v.all_only([float(p["value"].sum()) for p in v.in_periods(pool)])
    return _sum(per, individual)


@metric(
    "unidentified_pool_at_end",
    "stock: exploited children not yet identified",
    "children",
    "stock",
    all_only=True,
    title="Exploited children not yet identified (period end)",
    short="unidentified",
)
def _pool_at_end(v: View) -> pd.Series:
    pool = v.a.system[v.a.system["event"] == "pool_size"]
    t = pool["t_days"].to_numpy()
    values = []
    for _, _a, b in v.periods:
        before = pool["value"].to_numpy()[t < b]
        values.append(float(before[-1]) if len(before) else math.nan)
    return v.all_only(values)


# --------------------------------------------------------------------------- justice
@metric(
    "children_criminalised",
    "children criminalised for exploitation-linked offences",
    "children",
    title="Children criminalised",
    short="criminalised",
    better="lower",
)
def _criminalised(v: View) -> pd.Series:
    return v.count(v.of("criminalised"))


@metric(
    "trafficker_investigations",
    "investigations of exploiters opened",
    "investigations",
    title="Investigations of exploiters opened",
    short="investigations",
    better="higher",
)
def _investigations(v: View) -> pd.Series:
    return v.count(v.of("investigation_opened"))


@metric(
    "prosecutions_completed",
    "prosecutions of exploiters completed",
    "prosecutions",
    title="Prosecutions of exploiters completed",
    short="prosecutions",
    better="higher",
)
def _prosecutions(v: View) -> pd.Series:
    return v.count(v.of("prosecution_completed"))


@metric(
    "convictions",
    "exploiters convicted",
    "convictions",
    title="Exploiters convicted",
    short="convictions",
    better="higher",
)
def _convictions(v: View) -> pd.Series:
    return v.count(v.of("convicted"))


# --------------------------------------------------------------------------- costs
def _event_cost(v: View, frame: pd.DataFrame, key: str) -> pd.Series:
    """Each event costs the unit cost in force on its date."""
    unit = v.a.unit_costs.at(key, frame["t_days"].to_numpy())
    return v.agg(frame, pd.Series(unit, index=frame.index), "sum")


def _spell_cost(v: View, spell: pd.DataFrame, key: str, before_18: bool | None) -> pd.Series:
    """Unit cost per day integrated over spell days (dated), optionally only the days before
    (True) or after (False) the child's 18th birthday."""
    if spell.empty:
        return pd.Series(dtype=float)
    t0 = spell["t_days"].to_numpy(float)
    t1 = spell["t_end"].to_numpy(float)
    if before_18 is not None:
        d18 = spell["day18"].to_numpy(float)
        t0, t1 = (t0, np.minimum(t1, d18)) if before_18 else (np.maximum(t0, d18), t1)

    lo, hi = v.clipped(t0, t1)
    return v.by_period(spell[v.g], v.a.unit_costs.integral(key, lo, hi))


def _capacity_cost(v: View, capacity: str, key: str) -> pd.Series:
    """Decision capacity in force (decisions a year) x unit cost per decision-year, per day."""
    if v.g != "all":
        return pd.Series(dtype=float)
    values = []
    for _, a, b in v.periods:
        grid = np.arange(a, b)  # daily
        cap = v.a.capacity.at(capacity, grid)
        unit = v.a.unit_costs.at(key, grid)
        values.append(float(np.sum(cap * unit) / DAYS_PER_YEAR))
    return v.all_only(values)


def _outside_events_cost(v: View, event: str, key: str) -> pd.Series:
    if v.g != "all":
        return pd.Series(dtype=float)
    frame = v.a.outside[v.a.outside["event"] == event]
    unit = v.a.unit_costs.at(key, frame["t_days"].to_numpy())
    frame = frame.assign(_c=unit)
    return v.all_only([float(p["_c"].sum()) for p in v.in_periods(frame)])


def _outside_hotel_days(v: View) -> pd.Series:
    if v.g != "all":
        return pd.Series(dtype=float)
    outside = v.a.outside
    ended = outside[outside["event"] == "placement_ended"]
    # a child still in the hotel when the run ends has no end row: the stay runs to the horizon
    arrived = outside[outside["event"] == "hotel_arrived"]
    staying = arrived[~arrived["child_id"].isin(ended["child_id"])]["t_days"].to_numpy(float)
    t1 = np.concatenate([ended["t_days"].to_numpy(float), np.full(len(staying), v.a.horizon_day)])
    t0 = np.concatenate([t1[: len(ended)] - ended["value"].to_numpy(float), staying])
    values = []
    for _, a, b in v.periods:
        lo, hi = np.maximum(t0, a), np.minimum(t1, b)
        values.append(float(v.a.unit_costs.integral("per_day_hotel", lo, np.maximum(hi, lo)).sum()))
    return v.all_only(values)


def _sum(*parts: pd.Series) -> pd.Series:
    present = [part for part in parts if len(part)]
    if not present:
        return pd.Series(dtype=float)
    out = present[0]
    for part in present[1:]:
        out = out.add(part, fill_value=0.0)
    return out


@metric(
    "cost_home_office_gbp",
    "Home Office: decision capacity and decisions, hotels and Home Office accommodation (GBP)",
    "gbp",
    title="Home Office",
    short="Home Office cost",
    payer="home_office",
)
def cost_home_office(v: View) -> pd.Series:
    return v.memo("cost_home_office", lambda: _cost_home_office(v))


HOME_OFFICE = ("route", ("home_office",))


def _cost_home_office(v: View) -> pd.Series:
    sp = v.a.derived("placements", v.g)
    hotel = sp[(sp["placement_type"] == "hotel").to_numpy(bool)]
    return _sum(
        _capacity_cost(v, "rg", "per_rg_capacity_year"),
        _capacity_cost(v, "cg", "per_cg_capacity_year"),
        _event_cost(v, v.of("rg_decided", where=HOME_OFFICE), "per_rg_decision"),
        _event_cost(v, v.of("cg_decided", where=HOME_OFFICE), "per_cg_decision"),
        _spell_cost(v, hotel, "per_day_hotel", None),
        _outside_hotel_days(v),
    )


@metric(
    "cost_local_authorities_gbp",
    "local authorities: care placements and devolved panels (GBP)",
    "gbp",
    title="Local authorities",
    short="LA cost",
    payer="local_authorities",
)
def cost_local_authorities(v: View) -> pd.Series:
    return v.memo("cost_local_authorities", lambda: _cost_local_authorities(v))


def _cost_local_authorities(v: View) -> pd.Series:
    sp = v.a.derived("placements", v.g)
    parts = [_capacity_cost(v, "panel", "per_panel_capacity_year")]
    for kind in PLACEMENT_TYPES[:-1]:
        chosen = sp[(sp["placement_type"] == kind).to_numpy(bool)]
        parts.append(_spell_cost(v, chosen, f"per_day_{kind}", None))
    return _sum(*parts)


def _guardian_spells(v: View, kinds: Sequence[str]) -> pd.DataFrame:
    gs = v.a.derived("guardians", v.g)
    return gs[gs["guardian_kind"].isin(kinds).to_numpy(bool, na_value=False)]


@metric(
    "cost_guardianship_gbp",
    "guardians before 18: ICTG direct and indirect, Scotland, Northern Ireland (GBP)",
    "gbp",
    title="Guardianship (ICTG and others)",
    short="guardian cost",
    payer="guardianship",
)
def cost_guardianship(v: View) -> pd.Series:
    return v.memo("cost_guardianship", lambda: _cost_guardianship(v))


def _cost_guardianship(v: View) -> pd.Series:
    return _sum(
        _spell_cost(v, _guardian_spells(v, ["ictg_direct"]), "per_ictg_direct_day", True),
        _event_cost(v, _allocated(v, "ictg_indirect"), "per_ictg_indirect_case"),
        _spell_cost(
            v,
            _guardian_spells(v, ["scottish_guardianship", "ni_independent_guardian"]),
            "per_guardian_day_scotland_ni",
            True,
        ),
    )


@metric(
    "cost_police_cps_gbp",
    "police and CPS: missing episodes, investigations, prosecutions (GBP)",
    "gbp",
    title="Police and CPS",
    short="police/CPS cost",
    payer="police_cps",
)
def cost_police_cps(v: View) -> pd.Series:
    return v.memo("cost_police_cps", lambda: _cost_police_cps(v))


def _cost_police_cps(v: View) -> pd.Series:
    return _sum(
        _event_cost(v, v.of("went_missing"), "per_missing_episode"),
        _outside_events_cost(v, "went_missing", "per_missing_episode"),
        _event_cost(v, v.of("investigation_opened"), "per_investigation"),
        _event_cost(v, v.of("prosecution_completed"), "per_prosecution"),
    )


@metric(
    "cost_post18_gbp",
    "after 18: MSVCC support and guardians who continue (GBP)",
    "gbp",
    title="Post-18 support",
    short="post-18 cost",
    payer="post18",
)
def cost_post18(v: View) -> pd.Series:
    return v.memo("cost_post18", lambda: _cost_post18(v))


def _cost_post18(v: View) -> pd.Series:
    return _sum(
        _spell_cost(v, v.a.derived("msvcc", v.g), "per_msvcc_day", None),
        _spell_cost(v, _guardian_spells(v, ["ictg_direct"]), "per_ictg_direct_day", False),
        _spell_cost(
            v,
            _guardian_spells(v, ["scottish_guardianship", "ni_independent_guardian"]),
            "per_guardian_day_scotland_ni",
            False,
        ),
    )


@metric(
    "cost_legal_aid_gbp",
    "legal advice before the RG (GBP)",
    "gbp",
    title="Legal aid",
    short="legal aid cost",
    payer="legal_aid",
)
def cost_legal_aid(v: View) -> pd.Series:
    return v.memo("cost_legal_aid", lambda: _cost_legal_aid(v))


def _cost_legal_aid(v: View) -> pd.Series:
    return _event_cost(v, v.of("legal_advice"), "per_legal_aid_case")


@metric(
    "public_cost_gbp",
    "all public costs: the sum of the cost_*_gbp payers (GBP)",
    "gbp",
    title="Public cost (all payers)",
    short="cost",
    better="lower",
    tags=("key",),
)
def _public_cost(v: View) -> pd.Series:
    return _sum(*(REGISTRY[name].fn(v) for name in PAYER_METRICS))


# views of the registry for callers that want names only
METRICS: dict[str, str] = {name: m.label for name, m in REGISTRY.items()}  # name -> label
PAYER_METRICS = tuple(name for name, m in REGISTRY.items() if m.payer)  # they sum to public cost
KEY_METRICS = tagged("key")


# --------------------------------------------------------------------------- yearly summary
def year_periods(origin: dt.date, start: dt.date, end: dt.date) -> list[tuple[int, float, float]]:
    """(year, first day, end day) for each calendar year touched by [start, end]; days are
    counted from ``origin`` (the simulation's day 0)."""
    out = []
    for year in range(start.year, end.year + 1):
        a = max(dt.date(year, 1, 1), start)
        b = min(dt.date(year + 1, 1, 1), end + dt.timedelta(days=1))
        out.append((year, float((a - origin).days), float((b - origin).days)))
    return out


def summary(
    analysis: Analysis,
    origin: dt.date,
    start: dt.date,
    end: dt.date,
    group_bys: Sequence[str] = GROUP_BYS,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Long table: year, group_by, group, metric, value (for one replicate); only ``metrics``
    when given (the others are not computed)."""
    if metrics is not None:
        unknown = sorted(set(metrics) - set(REGISTRY))
        if unknown:
            raise KeyError(f"unknown metrics {unknown}; known: {sorted(REGISTRY)}")
    periods = year_periods(origin, start, end)
    parts = [analysis.metrics(periods, g, metrics) for g in group_bys]
    return pd.concat(parts, ignore_index=True).rename(columns={"period": "year"})
