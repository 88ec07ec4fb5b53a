"""Where referrals end up: flows from referral through the RG outcome to the CG outcome.

``pathway_flows`` runs in the process that ran a replicate (``RunSpec.derive``), so only a
small table of counts comes back, never the event log. Each referral episode made in the
window ``[since, scenario.end]`` is placed by what had happened to it by the end of the run:

* RG stage: ``rg_positive`` (a positive RG, or a negative overturned on reconsideration),
  ``rg_negative``, ``disqualified`` (public-order disqualification at a positive RG),
  ``closed_before_rg`` (withdrawn, suspended or superseded before any RG decision),
  ``awaiting_rg``.
* CG stage, for ``rg_positive`` only: ``cg_positive`` (or a negative overturned),
  ``cg_negative``, ``withdrawn``, ``suspended``, ``re_referred`` (closed by a repeat
  referral), ``awaiting_cg``. Other RG outcomes have no CG stage (``""``).
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from model.scenario import Scenario

RG_STAGE = {
    "rg_positive": "RG positive",
    "rg_negative": "RG negative",
    "disqualified": "Disqualified (public order)",
    "closed_before_rg": "Closed before RG",
    "awaiting_rg": "Awaiting RG",
}
CG_STAGE = {
    "cg_positive": "CG positive",
    "cg_negative": "CG negative",
    "withdrawn": "Withdrawn",
    "suspended": "Suspended",
    "re_referred": "Closed by re-referral",
    "awaiting_cg": "Awaiting CG",
}
FLOW_COLUMNS = ["rg_stage", "cg_stage", "referrals"]
_KEY = ["child_id", "episode"]


def flows_since(since: dt.date) -> Any:
    """A picklable ``RunSpec.derive`` callable: pathway flows of referrals from ``since``."""
    return partial(pathway_flows, since=since)


def pathway_flows(
    events: pd.DataFrame, children: pd.DataFrame, scenario: Scenario, since: dt.date
) -> pd.DataFrame:
    """Counts of referral episodes by (rg_stage, cg_stage); see the module docstring.

    Args:
        events: one replicate's event log (``t_days`` from ``scenario.sim_start``).
        children: unused; part of the ``RunSpec.derive`` signature.
        scenario: the scenario that was run (its ``sim_start`` and ``end``).
        since: first referral date counted (clipped to the reporting start).

    Returns:
        Columns ``rg_stage, cg_stage, referrals``; one row per combination that occurred.
    """
    del children
    since = max(since, scenario.start)
    t0 = float((since - scenario.sim_start).days)
    t1 = float((scenario.end - scenario.sim_start).days) + 1.0
    ev = events[events["child_id"].to_numpy() >= 0]
    name = ev["event"].astype(str).to_numpy()
    referred = ev[(name == "referred") & (ev["t_days"] >= t0).to_numpy()]
    referred = referred[referred["t_days"] < t1].drop_duplicates(_KEY)[_KEY]
    if referred.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FLOW_COLUMNS}).astype(
            {"referrals": int}
        )
    positive = ev["positive"].fillna(False).to_numpy(bool)
    decision = ev["decision_type"].astype(str).to_numpy()
    recon = name == "reconsideration_decided"
    marks = {
        "rg_pos": (name == "rg_decided") & positive | recon & (decision == "rg") & positive,
        "rg_neg": (name == "rg_decided") & ~positive,
        "disq": name == "disqualified",
        "cg_pos": (name == "cg_decided") & positive | recon & (decision == "cg") & positive,
        "cg_neg": (name == "cg_decided") & ~positive,
        "withdrawn": name == "withdrawn",
        "suspended": name == "suspended",
        "superseded": name == "superseded",
    }
    first = referred.set_index(_KEY)
    for mark, mask in marks.items():
        times = ev.loc[mask, [*_KEY, "t_days"]].groupby(_KEY)["t_days"].min()
        first[mark] = times.reindex(first.index).to_numpy()
    has = {m: first[m].notna().to_numpy() for m in marks}
    closed = np.fmin(np.fmin(first["withdrawn"], first["suspended"]), first["superseded"])
    closed_before_rg = (
        closed.notna().to_numpy()
        & ~(first["rg_pos"] <= closed.fillna(np.inf)).to_numpy()
        & ~(first["rg_neg"] <= closed.fillna(np.inf)).to_numpy()
    )
    rg = np.select(
        [has["disq"], has["rg_pos"], has["rg_neg"], closed_before_rg],
        ["disqualified", "rg_positive", "rg_negative", "closed_before_rg"],
        "awaiting_rg",
    )
    cg_decided = np.fmin(first["cg_pos"], first["cg_neg"])
    ends = pd.DataFrame(
        {
            "cg": cg_decided,
            "withdrawn": first["withdrawn"],
            "suspended": first["suspended"],
            "re_referred": first["superseded"],
        }
    )
    earliest = ends.fillna(np.inf).idxmin(axis=1).to_numpy()
    nothing = ends.isna().all(axis=1).to_numpy()
    cg = np.where(earliest == "cg", np.where(has["cg_pos"], "cg_positive", "cg_negative"), earliest)
    cg = np.where(nothing, "awaiting_cg", cg)
    cg = np.where(rg == "rg_positive", cg, "")
    table = pd.DataFrame({"rg_stage": rg, "cg_stage": cg})
    out = table.groupby(["rg_stage", "cg_stage"]).size().rename("referrals").reset_index()
    return out[FLOW_COLUMNS]


def mean_flows(flows: pd.DataFrame, replicates: int) -> pd.DataFrame:
    """Mean count per (rg_stage, cg_stage) over ``replicates`` (a missing row counts 0)."""
    total = flows.groupby(["rg_stage", "cg_stage"], sort=True)["referrals"].sum()
    return (total / replicates).rename("referrals").reset_index()


COLOURS = {  # of each stage's node and band in the alluvial diagram
    "rg_positive": "#4c72b0",
    "rg_negative": "#c44e52",
    "disqualified": "#8c2d04",
    "closed_before_rg": "#8172b2",
    "awaiting_rg": "#bbbbbb",
    "cg_positive": "#55a868",
    "cg_negative": "#dd8452",
    "withdrawn": "#8172b2",
    "suspended": "#937860",
    "re_referred": "#da8bc3",
    "awaiting_cg": "#bbbbbb",
}
GAP = 0.02  # between stacked nodes (axes units; the diagram is 1 high)
WIDTH = 0.05  # of a node's bar
XS = (0.0, 0.42, 0.84)  # left edges of the referrals, RG and CG columns


def draw_alluvial(ax: Any, flows: pd.DataFrame, title: str) -> None:
    """An alluvial diagram on ``ax``: referrals -> RG outcome -> CG outcome (mean counts).

    Bands keep a node's order, and their widths are proportional to the counts, so equal
    counts in two scenarios draw equal widths when the axes share a scale.
    """
    from matplotlib.patches import Rectangle

    total = float(flows["referrals"].sum())
    ax.set_axis_off()
    ax.set_title(title, loc="left", fontsize=11)
    if total <= 0:
        ax.text(0.5, 0.5, "no referrals in the window", ha="center", va="center")
        return
    rg_totals = flows.groupby("rg_stage")["referrals"].sum()
    rg_nodes = [k for k in RG_STAGE if rg_totals.get(k, 0) > 0]
    cg_flows = flows[flows["cg_stage"] != ""]
    cg_totals = cg_flows.groupby("cg_stage")["referrals"].sum()
    cg_nodes = [k for k in CG_STAGE if cg_totals.get(k, 0) > 0]
    rg_span = _stack(rg_nodes, rg_totals, 1.0, total)
    positive = rg_span.get("rg_positive", (1.0, 1.0))
    cg_span = _stack(cg_nodes, cg_totals, positive[1], total)
    y = 1.0
    ax.add_patch(Rectangle((XS[0], y - (1 - GAP * 4)), WIDTH, 1 - GAP * 4, color="#444444"))
    ref_top = 1.0
    for node in rg_nodes:
        lo, hi = rg_span[node]
        h = hi - lo
        _band(ax, XS[0] + WIDTH, (ref_top - h, ref_top), XS[1], (lo, hi), COLOURS[node])
        ref_top -= h
        ax.add_patch(Rectangle((XS[1], lo), WIDTH, h, color=COLOURS[node]))
    src_top = positive[1]
    for node in cg_nodes:
        lo, hi = cg_span[node]
        h = hi - lo
        _band(ax, XS[1] + WIDTH, (src_top - h, src_top), XS[2], (lo, hi), COLOURS[node])
        src_top -= h
        ax.add_patch(Rectangle((XS[2], lo), WIDTH, h, color=COLOURS[node]))
    label_ys = [0.0]
    for x, nodes, spans, totals, names in (
        (XS[1], rg_nodes, rg_span, rg_totals, RG_STAGE),
        (XS[2], cg_nodes, cg_span, cg_totals, CG_STAGE),
    ):
        centres = [sum(spans[n]) / 2 for n in nodes]
        for node, centre, text_y in zip(nodes, centres, _spread(centres), strict=True):
            _label(ax, x + WIDTH, centre, text_y, f"{names[node]}: {float(totals[node]):,.0f}")
            label_ys.append(text_y)
    ax.text(XS[0], 1.03, f"Referred: {total:,.0f}", fontsize=8, va="bottom")
    low = min([lo for lo, _ in rg_span.values()] + [lo for lo, _ in cg_span.values()] + [0.0])
    low = min(low, min(label_ys) - 0.03)
    ax.set_xlim(-0.02, 1.25)
    ax.set_ylim(min(low, 1 - (1 - GAP * 4)) - 0.03, 1.08)


def _stack(
    nodes: list[str], totals: pd.Series, top: float, total: float
) -> dict[str, tuple[float, float]]:
    """Each node's (bottom, top), stacked down from ``top``, heights in proportion to its
    share of ``total`` referrals."""
    spans, y = {}, top
    for node in nodes:
        h = float(totals[node]) / total * (1 - GAP * 4)
        spans[node] = (y - h, y)
        y -= h + GAP
    return spans


def _band(
    ax: Any, x0: float, y0: tuple[float, float], x1: float, y1: tuple[float, float], c: str
) -> None:
    """A band of colour ``c`` from the span ``y0`` at ``x0`` to the span ``y1`` at ``x1``."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    mid = (x0 + x1) / 2
    verts = [
        (x0, y0[1]),
        (mid, y0[1]),
        (mid, y1[1]),
        (x1, y1[1]),
        (x1, y1[0]),
        (mid, y1[0]),
        (mid, y0[0]),
        (x0, y0[0]),
        (x0, y0[1]),
    ]
    codes = [MplPath.MOVETO, *[MplPath.CURVE4] * 3, MplPath.LINETO, *[MplPath.CURVE4] * 3]
    codes.append(MplPath.CLOSEPOLY)
    ax.add_patch(PathPatch(MplPath(verts, codes), facecolor=c, alpha=0.35, lw=0))


def _spread(centres: list[float], min_gap: float = 0.05) -> list[float]:
    """Label heights at least ``min_gap`` apart, top to bottom, near their nodes."""
    out: list[float] = []
    for c in centres:
        out.append(min(c, out[-1] - min_gap) if out else c)
    return out


def _label(ax: Any, x: float, node_y: float, text_y: float, text: str) -> None:
    """A node's label at ``text_y``, with a leader line when it had to move off the node."""
    ax.text(x + 0.012, text_y, text, va="center", fontsize=8)
    if abs(text_y - node_y) > 1e-9:
        ax.plot([x, x + 0.01], [node_y, text_y], color="#999999", lw=0.6)
