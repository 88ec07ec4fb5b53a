"""Metrics as pure functions of the event log and the children table.

Nothing here imports SimPy or Mesa, so saved ``events.parquet`` / ``children.parquet`` files
can be analysed without the engine. ``period_metrics`` computes every metric for one period
([start, end) in days) and one grouping; the yearly ``summary`` and the calibration targets
both use it, so a metric has one definition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

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
CLOSING_EVENTS = ("cg_decided", "withdrawn", "suspended", "disqualified", "superseded")
PLACEMENT_TYPES = ("foster", "childrens_home", "supported_accommodation", "secure", "hotel")

# metric -> what it counts. Flows are over [start, end); stocks are at `end`.
METRICS: dict[str, str] = {
    "referrals": "referred events (new and repeat)",
    "repeat_referrals": "referred events that are repeat referrals",
    "children_re_referred": "distinct children with a repeat referral in the period",
    "rg_decisions": "RG decisions made",
    "rg_positive_rate": "share of RG decisions that were positive",
    "cg_decisions": "CG decisions made",
    "cg_positive_rate": "share of CG decisions that were positive",
    "disqualifications": "public-order disqualifications",
    "mean_days_referral_to_rg": "mean days from referral to RG, over RG decisions in the period",
    "median_days_referral_to_cg": (
        "median days from referral to CG, over CG decisions in the period"
    ),
    "mean_days_referral_to_cg": "mean days from referral to CG, over CG decisions in the period",
    "awaiting_cg_at_year_end": "stock: cases with a positive RG and no CG or closure at the end",
    "awaiting_cg": "same stock as awaiting_cg_at_year_end, at the period end",
    "reconsideration_requests": "reconsideration requests made",
    "reconsideration_negative_upheld_rate": (
        "share of reconsideration decisions upholding the negative"
    ),
    "children_placed": "distinct children in a care placement at any time in the period",
    "placements_by_type": "placements started in the period (group_by placement_type)",
    "missing_episodes": "missing episodes started",
    "children_gone_missing": "distinct children who went missing",
    "ictg_direct_referrals": "children allocated a direct ICTG",
    "ictg_indirect_referrals": "children allocated indirect ICTG support",
    "aged_out_without_decision": "children who turned 18 while awaiting a decision",
    "turned_18_in_process": "same as aged_out_without_decision",
    "withdrawn_or_suspended_at_18": "cases withdrawn or suspended at 18",
    "leave_grants": "grants of victim leave",
    "re_trafficked": "re-trafficking events",
    "children_criminalised": "children criminalised for exploitation-linked offences",
    "trafficker_investigations": "investigations of exploiters opened",
    "prosecutions_completed": "prosecutions of exploiters completed",
    "convictions": "exploiters convicted",
    "public_cost_gbp": "placements, decisions, guardians, missing episodes, prosecutions (GBP)",
}
COUNTS = {
    "referrals": "referred",
    "rg_decisions": "rg_decided",
    "cg_decisions": "cg_decided",
    "disqualifications": "disqualified",
    "reconsideration_requests": "reconsideration_requested",
    "missing_episodes": "went_missing",
    "aged_out_without_decision": "turned_18",
    "turned_18_in_process": "turned_18",
    "leave_grants": "leave_granted",
    "re_trafficked": "re_trafficked",
    "children_criminalised": "criminalised",
    "trafficker_investigations": "investigation_opened",
    "prosecutions_completed": "prosecution_completed",
    "convictions": "convicted",
}


def age_band(age_years: pd.Series) -> pd.Series:
    return pd.cut(
        age_years, [-np.inf, 12, 15, np.inf], right=False, labels=["0-11", "12-14", "15-17"]
    ).astype(str)


def annotate(events: pd.DataFrame, children: pd.DataFrame) -> pd.DataFrame:
    """Events sorted by time, with the child's groups and the episode's referral time."""
    ev = events.sort_values(["t_days"], kind="stable").reset_index(drop=True)
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
    ev = ev.merge(attrs, on="child_id", how="left")
    age_at_referral = 18.0 - (ev["day18"] - ev["t_referred"]) / 365.25
    ev["age_band"] = age_band(age_at_referral)
    ev["all"] = "all"
    for column in (
        "all",
        "sex",
        "nationality_group",
        "exploitation_type",
        "nation",
        "age_band",
        "route",
        "event",
    ):
        ev[column] = ev[column].astype(str).astype("category")
    return ev


def episodes_awaiting_cg(ev: pd.DataFrame) -> pd.DataFrame:
    """One row per episode that reached a positive RG: when it started and stopped awaiting CG."""
    key = ["child_id", "episode"]
    positive = ev["positive"].fillna(False).astype(bool)
    enter = ev[
        ((ev["event"] == "rg_decided") & positive)
        | ((ev["event"] == "reconsideration_decided") & (ev["decision_type"] == "rg") & positive)
    ]
    enter = enter.groupby(key, as_index=False).first()
    exits = ev[ev["event"].isin(CLOSING_EVENTS)].groupby(key)["t_days"].min().rename("t_exit")
    out = enter.merge(exits, on=key, how="left")
    out["t_exit"] = out["t_exit"].fillna(np.inf)
    return out


def spells(
    ev: pd.DataFrame,
    horizon_day: float,
    start_event: str = "placed",
    end_event: str = "placement_ended",
) -> pd.DataFrame:
    """Spells from ``start_event`` to the child's next ``end_event`` (horizon if still open),
    with the start row's columns (type, the child's groups)."""
    placed = ev[ev["event"] == start_event].copy()
    ended = ev[ev["event"] == end_event][["child_id", "t_days"]].copy()
    placed["k"] = placed.groupby("child_id").cumcount()
    ended["k"] = ended.groupby("child_id").cumcount()
    spells = placed.merge(
        ended.rename(columns={"t_days": "t_end"}), on=["child_id", "k"], how="left"
    )
    spells["t_end"] = spells["t_end"].fillna(horizon_day)
    return spells


class Analysis:
    """Annotated events plus derived tables for one replicate; computes metrics by period."""

    def __init__(
        self,
        events: pd.DataFrame,
        children: pd.DataFrame,
        horizon_day: float,
        costs: Mapping[str, float],
    ) -> None:
        self.ev = annotate(events, children)
        self.horizon_day = horizon_day
        self.costs = dict(costs)
        self.awaiting = episodes_awaiting_cg(self.ev)
        self.spells = spells(self.ev, horizon_day)
        guardians = spells(self.ev, horizon_day, "guardian_allocated", "guardian_ended")
        self.ictg_spells = guardians[guardians["guardian_kind"] == "ictg_direct"]
        self.ev["event_cost"] = self._event_costs()
        self.ev["exploitation_types"] = self.ev["exploitation_types"].astype(object)
        self._cache: dict[str, tuple[pd.DataFrame, ...]] = {}

    def _event_costs(self) -> pd.Series:
        c = self.costs
        per_event = {
            "rg_decided": c["per_rg_decision"],
            "cg_decided": c["per_cg_decision"],
            "went_missing": c["per_missing_episode"],
            "prosecution_completed": c["per_prosecution"],
        }
        cost = self.ev["event"].map(per_event).astype(float).fillna(0.0)
        indirect = (
            (self.ev["event"] == "guardian_allocated")
            & (self.ev["guardian_kind"] == "ictg_indirect")
        ).to_numpy(bool, na_value=False)
        return cost + indirect * c["per_ictg_indirect_case"]

    def period_metrics(self, start: float, end: float, group_by: str) -> pd.DataFrame:
        """Every metric for [start, end) days, one row per (group, metric)."""
        out = self.metrics([(0, start, end)], group_by)
        return out.drop(columns="period")

    def metrics(self, periods: Sequence[tuple[int, float, float]], group_by: str) -> pd.DataFrame:
        """Every metric for each (label, start, end) period; periods must not overlap.

        Returns long rows: period, group_by, group, metric, value.
        """
        ev, aw, sp, gs = self._frames(group_by)
        starts = np.array([a for _, a, _ in periods])
        ends = np.array([b for _, _, b in periods])
        labels = np.array([lab for lab, _, _ in periods])
        t = ev["t_days"].to_numpy()
        k = np.searchsorted(starts, t, side="right") - 1
        inside = (k >= 0) & (t < ends[np.clip(k, 0, None)])
        flow = ev[inside].assign(period=labels[k[inside]])
        g = group_by
        keys = ["period", g]
        frames: dict[str, pd.Series] = {}
        counts = flow.groupby([*keys, "event"], observed=True).size().unstack(fill_value=0)
        for metric, event in COUNTS.items():
            frames[metric] = counts[event] if event in counts else pd.Series(dtype=float)
        is_ev = {
            name: (flow["event"] == name).to_numpy()
            for name in (
                "referred",
                "rg_decided",
                "cg_decided",
                "reconsideration_decided",
                "went_missing",
                "guardian_allocated",
                "placed",
            )
        }
        ref = flow[is_ev["referred"] & (flow["episode"] > 0).to_numpy()]
        frames["repeat_referrals"] = ref.groupby(keys).size()
        frames["children_re_referred"] = ref.groupby(keys)["child_id"].nunique()
        for kind in ("rg", "cg"):
            dec = flow[is_ev[f"{kind}_decided"]]
            frames[f"{kind}_positive_rate"] = dec.groupby(keys)["positive"].mean().astype(float)
        waited = flow["t_days"] - flow["t_referred"]
        rg, cg = is_ev["rg_decided"], is_ev["cg_decided"]
        frames["mean_days_referral_to_rg"] = waited[rg].groupby([flow[k][rg] for k in keys]).mean()
        by_cg = waited[cg].groupby([flow[k][cg] for k in keys])
        frames["median_days_referral_to_cg"] = by_cg.median()
        frames["mean_days_referral_to_cg"] = by_cg.mean()
        rec = flow[is_ev["reconsideration_decided"]]
        frames["reconsideration_negative_upheld_rate"] = 1.0 - rec.groupby(keys)[
            "positive"
        ].mean().astype(float)
        miss = flow[is_ev["went_missing"]]
        frames["children_gone_missing"] = miss.groupby(keys)["child_id"].nunique()
        alloc = flow[is_ev["guardian_allocated"]]
        for kind in ("direct", "indirect"):
            chosen = (alloc["guardian_kind"] == f"ictg_{kind}").to_numpy(bool, na_value=False)
            frames[f"ictg_{kind}_referrals"] = alloc[chosen].groupby(keys).size()
        drop = flow[
            flow["event"].isin(("withdrawn", "suspended")).to_numpy()
            & flow["reason"].isin(("at_18", "no_consent_at_18")).to_numpy(bool, na_value=False)
        ]
        frames["withdrawn_or_suspended_at_18"] = drop.groupby(keys).size()
        stock, placed_children, cost = [], [], []
        for label, a, b in periods:
            at_end = aw[(aw["t_days"] < b) & (aw["t_exit"] >= b)]
            stock.append(at_end.groupby(g).size().rename(label))
            overlap = sp[(sp["t_days"] < b) & (sp["t_end"] > a)]
            placed_children.append(overlap.groupby(g)["child_id"].nunique().rename(label))
            guarded = gs[(gs["t_days"] < b) & (gs["t_end"] > a)]
            cost.append(self._spell_cost(overlap, guarded, a, b, g).rename(label))
        frames["awaiting_cg_at_year_end"] = frames["awaiting_cg"] = _stack(stock, keys)
        frames["children_placed"] = _stack(placed_children, keys)
        frames["public_cost_gbp"] = _stack(cost, keys).add(
            flow.groupby(keys)["event_cost"].sum(), fill_value=0.0
        )
        table = pd.DataFrame(frames)
        table = table.reindex(columns=[m for m in METRICS if m != "placements_by_type"])
        count_like = [m for m in table.columns if m not in _RATES]
        table[count_like] = table[count_like].fillna(0.0)
        table.index.names = ["period", "group"]
        long = table.reset_index().melt(
            id_vars=["period", "group"], var_name="metric", value_name="value"
        )
        long["group_by"] = g
        if g == "all":
            placed = flow[is_ev["placed"]]
            by_type = (
                placed.groupby(["period", "placement_type"])
                .size()
                .unstack(fill_value=0)
                .reindex(columns=PLACEMENT_TYPES, fill_value=0)
                .reindex(labels, fill_value=0)
                .stack()
                .rename("value")
                .reset_index()
                .rename(columns={"placement_type": "group"})
            )
            by_type["metric"], by_type["group_by"] = "placements_by_type", "placement_type"
            long = pd.concat([long, by_type[long.columns]], ignore_index=True)
        long["value"] = long["value"].astype(float)
        return long[["period", "group_by", "group", "metric", "value"]]

    def _frames(self, group_by: str) -> tuple[pd.DataFrame, ...]:
        """Events, awaiting-CG episodes, placement and direct-ICTG spells, narrowed to the
        columns the
        metrics use (row selection on narrow frames is much faster); cached per grouping."""
        if group_by not in self._cache:
            g = [] if group_by == "exploitation_any" else [group_by]
            ev_cols = [
                "t_days",
                "child_id",
                "episode",
                "event",
                "positive",
                "t_referred",
                "guardian_kind",
                "reason",
                "placement_type",
                "event_cost",
                "exploitation_types",
                *g,
            ]
            frames = [
                self.ev[list(dict.fromkeys(ev_cols))],
                self.awaiting[list(dict.fromkeys(["t_days", "t_exit", "exploitation_types", *g]))],
                self.spells[
                    list(
                        dict.fromkeys(
                            [
                                "t_days",
                                "t_end",
                                "child_id",
                                "placement_type",
                                "exploitation_types",
                                *g,
                            ]
                        )
                    )
                ],
                self.ictg_spells[
                    list(dict.fromkeys(["t_days", "t_end", "exploitation_types", *g]))
                ],
            ]
            if group_by == "exploitation_any":
                frames = [_explode_types(f) for f in frames]
            self._cache[group_by] = tuple(f.drop(columns="exploitation_types") for f in frames)
        return self._cache[group_by]

    def _spell_cost(
        self, placements: pd.DataFrame, guardians: pd.DataFrame, start: float, end: float, g: str
    ) -> pd.Series:
        """Cost of placement days and direct-ICTG days inside [start, end), by group."""
        c = self.costs
        days = np.minimum(placements["t_end"], end) - np.maximum(placements["t_days"], start)
        rate = placements["placement_type"].map({k: c[f"per_day_{k}"] for k in PLACEMENT_TYPES})
        placement = (days * rate.astype(float)).groupby(placements[g], observed=True).sum()
        g_days = np.minimum(guardians["t_end"], end) - np.maximum(guardians["t_days"], start)
        guardian = (g_days * c["per_ictg_direct_day"]).groupby(guardians[g], observed=True).sum()
        return placement.add(guardian, fill_value=0.0)


def _explode_types(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (row, exploitation type) for the ``exploitation_any`` grouping."""
    types = frame["exploitation_types"].to_numpy(object)
    uniq = {t: t.split("+") for t in set(types)}
    out = frame.assign(exploitation_any=[uniq[t] for t in types])
    out = out.explode("exploitation_any", ignore_index=True)
    out["exploitation_any"] = out["exploitation_any"].astype("category")
    return out


def _stack(parts: list[pd.Series], keys: list[str]) -> pd.Series:
    """Per-period series (named by period) -> one series indexed by (period, group)."""
    if not parts:
        return pd.Series(dtype=float)
    frame = pd.concat(parts, axis=1)
    out = frame.stack()
    out.index.names = [keys[1], keys[0]]
    return out.swaplevel().sort_index()


_RATES = {
    "rg_positive_rate",
    "cg_positive_rate",
    "mean_days_referral_to_rg",
    "median_days_referral_to_cg",
    "mean_days_referral_to_cg",
    "reconsideration_negative_upheld_rate",
}


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
    when given."""
    periods = year_periods(origin, start, end)
    parts = [analysis.metrics(periods, g) for g in group_bys]
    out = pd.concat(parts, ignore_index=True).rename(columns={"period": "year"})
    if metrics is not None:
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise KeyError(f"unknown metrics {unknown}; known: {sorted(METRICS)}")
        out = out[out["metric"].isin(metrics)].reset_index(drop=True)
    return out
