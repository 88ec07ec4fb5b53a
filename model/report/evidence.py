"""What an option changes relative to the baseline, and what evidence each change rests on.

Everything here is a pure function of saved JSON (``Scenario.resolved()`` and the
bibliography entries the scenarios cite, both kept in ``manifest.json``), so a saved
comparison can be re-rendered without the scenario files.

Evidence grades: a parameter's source is *sourced* (official statistics, FOI release,
NGO/secondary, legislation or guidance), *fitted* (``calibration:<fit-id>``) or *assumed*
(``assumption``), via :func:`model.scenario.source_kind`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model.scenario import Entry, Scenario, source_kind

GRADES = ("sourced", "fitted", "assumed")


def cited_sources(scenarios: list[Scenario]) -> dict[str, dict[str, Any]]:
    """The bibliography entries (title, kind, ...) the scenarios cite, JSON-ready."""
    keys: set[str] = set()
    for sc in scenarios:
        keys |= {e.source for e in sc.entries.values()}
        keys |= {t.source for t in sc.timeline}
    out = {}
    for key in sorted(keys):
        if key in scenarios[0].sources:
            src = scenarios[0].sources[key]
            out[key] = {k: str(v) for k, v in src.items() if k in ("title", "kind", "publisher")}
    return out


def kind_of(source: str, sources: Mapping[str, Mapping[str, Any]]) -> str:
    """The source kind (``model.scenario.SOURCE_KINDS`` or 'calibrated')."""
    special = source in ("assumption", "null") or source.startswith("calibration:")
    if not special and source not in sources:
        return "unknown"
    if source == "null":
        return "assumption"
    return source_kind(Entry("-", None, "-", source), sources)


def grade(source: str, sources: Mapping[str, Mapping[str, Any]]) -> str:
    """'sourced', 'fitted' or 'assumed' (or 'unknown' for a source not in the manifest)."""
    kind = kind_of(source, sources)
    return {"assumption": "assumed", "calibrated": "fitted", "unknown": "unknown"}.get(
        kind, "sourced"
    )


def _settings(resolved: Mapping[str, Any], key: str) -> list[tuple[str, Any, str, str]]:
    """(date or '', value, source, timeline entry name or '') for each time ``key`` is set."""
    param = resolved["params"][key]
    out = [("", param["value"], param["source"], "")]
    for item in resolved["timeline"]:
        if key in item["set"]:
            out.append((item["date"], item["set"][key], item["source"], item["name"]))
    return out


def _in_force(settings: list[tuple[str, Any, str, str]], day: str) -> tuple[Any, str, str]:
    """(value, source, entry name) in force on ``day`` ('' = as declared)."""
    value, source, name = settings[0][1], settings[0][2], settings[0][3]
    for date, v, s, n in settings[1:]:
        if date <= day:
            value, source, name = v, s, n
    return value, source, name


def timeline_changes(base: Mapping[str, Any], option: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Timeline entries the option adds, removes or changes, by entry name, in date order."""
    old = {t["name"]: t for t in base["timeline"]}
    new = {t["name"]: t for t in option["timeline"]}
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        kind = "added" if a is None else "removed" if b is None else "changed"
        entry = b if b is not None else a
        assert entry is not None
        out.append({"change": kind, **entry})
    return sorted(out, key=lambda t: (t["date"], t["name"]))


def changed_parameters(
    base: Mapping[str, Any],
    option: Mapping[str, Any],
    sources: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Parameters whose value differs on some day of the run, with the first such day.

    Each row: key, unit, from (date; the run start for a declared value), baseline and option
    values in force on that day, the option's source for it and its grade, and the null and
    range of an effect size.
    """
    out = []
    start = option["run"]["warmup_start"]
    for key in sorted(option["params"]):
        a, b = _settings(base, key), _settings(option, key)
        if a == b:
            continue
        days = sorted({start} | {d for d, *_ in a[1:] + b[1:] if d >= start})
        for day in days:
            va, _, _ = _in_force(a, day)
            vb, src, name = _in_force(b, day)
            if va != vb:
                param = option["params"][key]
                out.append(
                    {
                        "key": key,
                        "unit": param["unit"],
                        "from": day,
                        "baseline": va,
                        "option": vb,
                        "source": src,
                        "kind": kind_of(src, sources),
                        "grade": grade(src, sources),
                        "entry": name,
                        "null": param.get("null"),
                        "range": param.get("range"),
                    }
                )
                break
    return out


def policy_dates(base: Mapping[str, Any], option: Mapping[str, Any]) -> list[str]:
    """Dates of timeline entries that differ from the baseline, inside the reported run."""
    lo, hi = option["run"]["start"], option["run"]["end"]
    return sorted({t["date"] for t in timeline_changes(base, option) if lo <= t["date"] <= hi})


def parameter_facts(
    resolved: Mapping[str, Any], key: str, sources: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """A parameter as it stands at the end of the run: value, source, grade, null, range."""
    param = resolved["params"][key]
    value, source, name = _in_force(_settings(resolved, key), resolved["run"]["end"])
    return {
        "key": key,
        "value": value,
        "unit": param["unit"],
        "source": source,
        "kind": kind_of(source, sources),
        "grade": grade(source, sources),
        "entry": name,
        "null": param.get("null"),
        "range": param.get("range"),
    }


def mechanisms(
    resolved: Mapping[str, Any],
    base: Mapping[str, Any],
    sources: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The option's own ``[[mechanism]]`` tables (those not inherited from the baseline),
    each parameter with its value, source, grade and null."""
    inherited = [(m["name"], m["declared_in"]) for m in base.get("mechanisms", [])]
    out = []
    for mech in resolved.get("mechanisms", []):
        if (mech["name"], mech["declared_in"]) in inherited:
            continue
        out.append(
            {
                "name": mech["name"],
                "note": mech.get("note", ""),
                "declared_in": mech.get("declared_in", ""),
                "parameters": [parameter_facts(resolved, k, sources) for k in mech["parameters"]],
            }
        )
    return out


def changed_assumptions(
    resolved: Mapping[str, Any], base: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Parameters that are not levers which the option changes, as its scenario files declare
    (``[meta] changes_assumptions``, issue 16), less those the baseline already declares:
    the option's result rests on these changed assumptions as well as on its levers."""
    inherited = base.get("changes_assumptions", {})
    return [
        {"key": key, "role": item["role"], "declared_in": item["declared_in"]}
        for key, item in sorted(resolved.get("changes_assumptions", {}).items())
        if inherited.get(key) != item
    ]


def grade_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows are sourced, fitted, assumed (and unknown, if any)."""
    counts = {g: 0 for g in (*GRADES, "unknown")}
    for row in rows:
        counts[row["grade"]] = counts.get(row["grade"], 0) + 1
    return counts


def option_evidence(
    base: Mapping[str, Any],
    option: Mapping[str, Any],
    sources: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Everything the report says about what an option rests on."""
    changed = changed_parameters(base, option, sources)
    mechs = mechanisms(option, base, sources)
    keys = {r["key"] for r in changed} | {p["key"] for m in mechs for p in m["parameters"]}
    effects = [
        parameter_facts(option, k, sources)
        for k in sorted(keys)
        if option["params"][k].get("null") is not None
    ]
    return {
        "timeline": timeline_changes(base, option),
        "changed": changed,
        "grades": grade_counts(changed),
        "mechanisms": mechs,
        "assumptions_changed": changed_assumptions(option, base),
        "effects": effects,
        "dates": policy_dates(base, option),
    }


def assumption_ledger(
    resolved: Mapping[str, Any], sources: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Counts of all parameters by grade, and the unit costs with their grades."""
    rows = [parameter_facts(resolved, k, sources) for k in sorted(resolved["params"])]
    return {
        "counts": grade_counts(rows),
        "costs": [r for r in rows if r["key"].startswith("cost.")],
        "effects": [r for r in rows if r["null"] is not None],
    }
