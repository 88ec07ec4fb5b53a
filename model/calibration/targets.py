"""Calibration targets: published figures as data (``calibration/targets.toml``).

Each target has a ``role`` (``input-check``: it echoes an input; ``outcome``: the model
produces it), a ``use`` (``fit``: gated and fitted; ``validate``: reported) and a ``view``
(``model.observe``) that turns a run into the figure as published. ``load_targets`` validates
the file; every error names the file, the target and the key, and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from model.common import check_keys
from model.observe import VIEWS, ObservationModel, load_observation
from model.results import REGISTRY
from model.scenario import SCENARIO_DIR, Scenario, ScenarioError, load_sources, read_toml, suggest

CALIBRATION_DIR = SCENARIO_DIR.parent / "calibration"  # the data folder, not this package
TARGETS_FILE = CALIBRATION_DIR / "targets.toml"
ROLES = ("input-check", "outcome")
TARGET_KEYS = {
    "id",
    "role",
    "metric",
    "group_by",
    "group",
    "kind",
    "view",
    "observation",
    "start",
    "end",
    "at",
    "cohort_start",
    "cohort_end",
    "denominator",
    "value",
    "unit",
    "population",
    "source",
    "locator",
    "tolerance",
    "tolerance_note",
    "use",
    "history",
    "mapping_note",
    "weight",
}
REQUIRED_KEYS = (
    "id",
    "role",
    "metric",
    "group_by",
    "group",
    "kind",
    "value",
    "source",
    "tolerance",
    "use",
)
DENOMINATOR_KEYS = ("metric", "group_by", "group")


@dataclass(frozen=True)
class Target:
    """A published figure the model should reproduce, with its own uncertainty."""

    id: str
    role: str  # input-check | outcome
    metric: str
    group_by: str
    group: str
    kind: str  # flow | stock
    start: dt.date
    end: dt.date  # exclusive for flows; the stock date for stocks
    value: float
    tolerance_kind: str
    tolerance_value: float
    use: str  # fit | validate
    source: str
    view: str = "metric"
    observation: str = ""  # key of the observation model's child share, for all-ages counts
    cohort: tuple[dt.date, dt.date] | None = None
    locator: str = ""
    unit: str = ""
    population: str = "children"
    denominator: Mapping[str, str] | None = None
    weight: float = 1.0
    notes: Mapping[str, str] = field(default_factory=dict)
    file: str = ""

    @property
    def tolerance(self) -> float:
        """Allowed absolute distance between simulated mean and observed value (the
        target's own unit)."""
        if self.tolerance_kind == "relative":
            return abs(self.value) * self.tolerance_value
        return self.tolerance_value


def load_targets(path: Path | None = None, obs: ObservationModel | None = None) -> list[Target]:
    """Read and validate the targets file; errors name the file, target and key."""
    path = path or TARGETS_FILE
    doc = read_toml(path)
    items = doc.get("target", [])
    if not isinstance(items, list):
        raise ScenarioError(path, "target", "write targets as [[target]] tables")
    context = _Context(path, load_sources(), known_groups(), obs or load_observation())
    out: list[Target] = []
    seen: set[str] = set()
    for i, t in enumerate(items):
        if not isinstance(t, dict):
            raise ScenarioError(path, f"target[{i}]", "must be a table")
        where = f"target[{i}]" + (f" ({t['id']})" if "id" in t else "")
        _check_keys_and_types(path, where, t)
        if t["id"] in seen:
            raise ScenarioError(path, f"{where}.id", f"duplicate id '{t['id']}'")
        seen.add(t["id"])
        out.append(_parse_target(context, where, t))
    return out


@dataclass(frozen=True)
class _Context:
    """What every target is checked against."""

    path: Path
    sources: Mapping[str, Any]
    groups: Mapping[str, set[str]]
    obs: ObservationModel


def _parse_target(c: _Context, where: str, t: Mapping[str, Any]) -> Target:
    """One ``[[target]]`` table (keys and types already checked) as a ``Target``."""
    view = t.get("view", "metric")
    observation = t.get("observation", "")
    _check_choices(c, where, t, view, observation)
    tol = _tolerance(c.path, where, t["tolerance"])
    start, end, cohort = _period(c.path, where, t, view)
    notes = {k: t[k] for k in ("tolerance_note", "mapping_note", "history") if k in t}
    return Target(
        t["id"],
        t["role"],
        t["metric"],
        t["group_by"],
        str(t["group"]),
        t["kind"],
        start,
        end,
        float(t["value"]),
        tol["kind"],
        float(tol["value"]),
        t["use"],
        t["source"],
        view,
        observation,
        cohort,
        t.get("locator", ""),
        t.get("unit", ""),
        t.get("population", "children"),
        _denominator(c, where, t),
        float(t.get("weight", 1.0)),
        notes,
        str(c.path),
    )


def _check_keys_and_types(path: Path, where: str, t: Mapping[str, Any]) -> None:
    """Known keys only, the required ones present, strings and numbers where expected."""
    check_keys(path, where, dict(t), TARGET_KEYS)
    for key in REQUIRED_KEYS:
        if key not in t:
            raise ScenarioError(path, f"{where}.{key}", "missing")
    for key in ("id", "role", "metric", "group_by", "kind", "use", "source"):
        if not isinstance(t[key], str):
            raise ScenarioError(path, f"{where}.{key}", f"value {t[key]!r} must be a string")
    for key in ("value", "weight"):
        if key in t and (
            isinstance(t[key], bool)
            or not isinstance(t[key], int | float)
            or not math.isfinite(t[key])
        ):
            raise ScenarioError(path, f"{where}.{key}", f"value {t[key]!r} must be a number")
    if t.get("weight", 1.0) < 0:
        raise ScenarioError(path, f"{where}.weight", f"value {t['weight']!r} must be >= 0")
    for key in ("view", "observation", "locator", "unit", "population", "group"):
        ok = str | int if key == "group" else str  # a group may be written as a number
        if key in t and (isinstance(t[key], bool) or not isinstance(t[key], ok)):
            raise ScenarioError(path, f"{where}.{key}", f"value {t[key]!r} must be a string")


def _not_allowed(path: Path, key: str, value: object, allowed: Sequence[str]) -> ScenarioError:
    return ScenarioError(
        path,
        key,
        f"value {value!r} not allowed; allowed: {list(allowed)}." + suggest(str(value), allowed),
    )


def _check_choices(
    c: _Context, where: str, t: Mapping[str, Any], view: str, observation: str
) -> None:
    """Role, view, observation, metric, group, kind, use and source are known values."""
    if t["role"] not in ROLES:
        raise _not_allowed(c.path, f"{where}.role", t["role"], ROLES)
    if view not in VIEWS:
        raise _not_allowed(c.path, f"{where}.view", view, sorted(VIEWS))
    if observation and observation not in c.obs.values["child_share"]:
        raise ScenarioError(
            c.path,
            f"{where}.observation",
            f"value {observation!r} is not a child_share in {c.obs.path}; allowed: "
            f"{sorted(c.obs.values['child_share'])}",
        )
    _check_metric(c.path, where, t["metric"], t["group_by"])
    _check_group(c.path, where, t["group_by"], str(t["group"]), c.groups)
    if t["kind"] not in ("flow", "stock"):
        raise ScenarioError(
            c.path, f"{where}.kind", f"value {t['kind']!r} not allowed; allowed: ['flow', 'stock']"
        )
    if t["use"] not in ("fit", "validate"):
        raise ScenarioError(
            c.path, f"{where}.use", f"value {t['use']!r} not allowed; allowed: ['fit', 'validate']"
        )
    if t["source"] not in c.sources:
        raise ScenarioError(
            c.path,
            f"{where}.source",
            f"'{t['source']}' is not in scenarios/sources.toml." + suggest(t["source"], c.sources),
        )


def _tolerance(path: Path, where: str, tol: Any) -> Mapping[str, Any]:
    """``{ kind = 'relative' | 'absolute', value > 0 }``."""
    if (
        not isinstance(tol, dict)
        or tol.get("kind") not in ("relative", "absolute")
        or isinstance(tol.get("value"), bool)
        or not isinstance(tol.get("value"), int | float)
        or not 0 < tol["value"] < math.inf  # also rejects nan
    ):
        raise ScenarioError(
            path,
            f"{where}.tolerance",
            f"value {tol!r} must be {{ kind = 'relative' | 'absolute', value = > 0 }}",
        )
    return tol


def _period(
    path: Path, where: str, t: Mapping[str, Any], view: str
) -> tuple[dt.date, dt.date, tuple[dt.date, dt.date] | None]:
    """(start, end, cohort): a flow's [start, end), a stock's date twice; a cohort view starts
    at its cohort's first day."""
    if t["kind"] == "flow":
        start, end = t.get("start"), t.get("end")
        if not _is_date(start) or not _is_date(end) or end <= start:
            raise ScenarioError(
                path,
                where,
                f"a flow needs dates start < end (TOML dates like 2023-01-01, no time); "
                f"got start {start!r}, end {end!r}",
            )
    else:
        at = t.get("at")
        if not _is_date(at):
            raise ScenarioError(path, f"{where}.at", "a stock needs a date `at`")
        start = end = at
    if view != "cohort_awaiting_share":
        return start, end, None
    c0, c1 = t.get("cohort_start"), t.get("cohort_end")
    if not _is_date(c0) or not _is_date(c1) or c1 <= c0:
        raise ScenarioError(path, where, "a cohort view needs dates cohort_start < cohort_end")
    return c0, end, (c0, c1)


def _denominator(c: _Context, where: str, t: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The ratio's denominator; keys not given default to the numerator's."""
    den = t.get("denominator")
    if den is None:
        return None
    if not isinstance(den, dict):
        raise ScenarioError(
            c.path,
            f"{where}.denominator",
            f"value {den!r} must be a table {{ metric = ..., group_by = ..., group = ... }}",
        )
    for key in den:
        if key not in DENOMINATOR_KEYS:
            raise ScenarioError(
                c.path,
                f"{where}.denominator.{key}",
                f"unknown key; allowed: {sorted(DENOMINATOR_KEYS)}."
                + suggest(key, DENOMINATOR_KEYS),
            )
    out = {k: den.get(k, t[k]) for k in DENOMINATOR_KEYS}
    _check_metric(c.path, f"{where}.denominator", out["metric"], out["group_by"])
    _check_group(c.path, f"{where}.denominator", out["group_by"], str(out["group"]), c.groups)
    return out


def _is_date(value: Any) -> TypeGuard[dt.date]:
    """A TOML date (a date-time is not a date: it cannot be compared with one)."""
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def known_groups() -> dict[str, set[str]]:
    """The categories each grouping can take (from the schema)."""
    from model.params import (
        AGE_BANDS,
        EXPLOITATION_TYPES,
        NATIONALITIES,
        NATIONS,
        PLACEMENT_TYPES,
        SEXES,
    )

    return {
        "all": {"all"},
        "sex": set(SEXES),
        "nationality_group": set(NATIONALITIES),
        "exploitation_type": set(EXPLOITATION_TYPES),
        "exploitation_any": set(EXPLOITATION_TYPES) - {"mixed"},
        "nation": set(NATIONS),
        "age_band": set(AGE_BANDS),
        "route": {"home_office", "devolved_pilot"},
        "placement_type": set(PLACEMENT_TYPES),
    }


def _check_group(
    path: Path, where: str, group_by: str, group: str, groups: Mapping[str, set[str]]
) -> None:
    if group not in groups[group_by]:
        raise ScenarioError(
            path,
            f"{where}.group",
            f"value {group!r} is not a {group_by} group; allowed: {sorted(groups[group_by])}."
            + suggest(group, groups[group_by]),
        )


def _check_metric(path: Path, where: str, metric: str, group_by: str) -> None:
    if not isinstance(metric, str) or metric not in REGISTRY:
        raise ScenarioError(
            path, f"{where}.metric", f"unknown metric '{metric}'." + suggest(str(metric), REGISTRY)
        )
    allowed = REGISTRY[metric].groupings
    if not isinstance(group_by, str) or group_by not in allowed:
        raise ScenarioError(
            path,
            f"{where}.group_by",
            f"value {group_by!r} not allowed for {metric}; allowed: {list(allowed)}",
        )


def check_periods(targets: Sequence[Target], scenario: Scenario) -> None:
    """Every target's period must lie inside the run (outputs cover start..end)."""
    last = scenario.end + dt.timedelta(days=1)
    for t in targets:
        if t.start < scenario.start or t.end > last:
            raise ScenarioError(
                t.file,
                f"target {t.id}",
                f"period {t.start}..{t.end} is outside "
                f"the run of '{scenario.name}' ({scenario.start} to "
                f"{scenario.end})",
            )
