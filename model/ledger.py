"""The assumptions ledger: every assumed parameter, its range and null, and the levers on it.

``docs/assumptions.md`` is generated from the scenario files by this module, never edited by
hand::

    python -m model.ledger              # rewrite docs/assumptions.md
    python -m model.ledger --check      # exit 1 if docs/assumptions.md is out of date

A row is a parameter of ``scenarios/baseline.toml`` whose ``source`` is ``"assumption"``: its
unit, role and meaning from the schema (``model/params.py``), its baseline value, plausible
``range`` and ``null`` (for an assumed effect size), and the lever scenarios that rest on it:
those whose timeline or parameter overrides *set* it, and those whose ``[[mechanism]]`` tables
*list* it. A lever scenario is a scenario file that declares at least one ``[[mechanism]]``.
Timeline values whose own source is ``"assumption"`` (for example yearly decision capacity
before it was published) are listed in a second table.

``unaccounted`` is the check behind ``tests/test_assumptions_doc.py``: a baseline parameter
must either cite a source (a key of ``scenarios/sources.toml``, or ``calibration:<fit-id>``
with the fit's folder committed) or be an assumption with a range.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.params import SCHEMA, Share
from model.scenario import SCENARIO_DIR, Entry, Scenario, load_scenario

ROOT = SCENARIO_DIR.parent
DOC_PATH = ROOT / "docs" / "assumptions.md"
FITS_DIR = ROOT / "calibration" / "fits"
NOT_SCENARIOS = {"sources"}


@dataclass(frozen=True, slots=True)
class Row:
    """One assumed parameter of the baseline."""

    key: str
    unit: str
    role: str
    effect: bool
    meaning: str  # the schema's doc, then the baseline's note
    value: Any
    range: tuple[float, float] | None
    null: Any
    set_by: tuple[str, ...]  # lever scenarios whose timeline or overrides set it
    mechanism_of: tuple[str, ...]  # lever scenarios whose [[mechanism]] lists it
    also_set_by: tuple[str, ...] = ()  # other scenarios whose own file sets it (historical, ...)


@dataclass(frozen=True, slots=True)
class LeverRow:
    """One lever parameter (role ``lever`` in the schema) and the scenarios that use it."""

    key: str
    unit: str
    meaning: str
    value: Any  # the baseline's
    used_by: tuple[str, ...]  # lever scenarios that set it or list it in a [[mechanism]]
    also_set_by: tuple[str, ...] = ()  # other scenarios whose own file sets it (historical, ...)


@dataclass(frozen=True, slots=True)
class TimelineAssumption:
    """A dated value whose own source is ``"assumption"`` (a timeline entry)."""

    scenario: str
    date: dt.date
    name: str
    keys: tuple[str, ...]


def scenario_names(folder: Path = SCENARIO_DIR) -> list[str]:
    """Every scenario file in ``folder`` by name (``sources.toml`` is not a scenario)."""
    return sorted(p.stem for p in folder.glob("*.toml") if p.stem not in NOT_SCENARIOS)


def _own(scenario: Scenario) -> bool:
    """Does the scenario's own file declare a ``[[mechanism]]``?"""
    return any(m["declared_in"] == str(scenario.path) for m in scenario.mechanisms)


def lever_scenarios(names: Iterable[str] | None = None) -> dict[str, Scenario]:
    """Scenarios that declare at least one ``[[mechanism]]`` in their own file."""
    loaded = {n: load_scenario(n) for n in (scenario_names() if names is None else names)}
    return {n: s for n, s in sorted(loaded.items()) if _own(s)}


def _lever_files(scenario: Scenario, levers: Mapping[str, Scenario]) -> set[str]:
    """Files of the scenario's ``extends`` chain that are lever scenarios themselves."""
    lever_paths = {str(s.path) for s in levers.values()}
    return {f for f in scenario.chain if f in lever_paths}


def keys_set(scenario: Scenario, levers: Mapping[str, Scenario]) -> set[str]:
    """Parameters that the lever files of the scenario's chain set (timeline or overrides)."""
    files = _lever_files(scenario, levers)
    keys = {k for t in scenario.timeline if t.declared_in in files for k in t.changes}
    keys |= {k for k, e in scenario.entries.items() if e.declared_in in files}
    return keys


def keys_set_in_own_file(scenario: Scenario) -> set[str]:
    """Parameters that the scenario's own file sets (timeline entries or overrides)."""
    own = str(scenario.path)
    keys = {k for t in scenario.timeline if t.declared_in == own for k in t.changes}
    keys |= {k for k, e in scenario.entries.items() if e.declared_in == own}
    return keys


def keys_listed(scenario: Scenario) -> set[str]:
    """Parameters that the scenario's ``[[mechanism]]`` tables list (along its chain)."""
    return {k for m in scenario.mechanisms for k in m["parameters"]}


def rows(
    baseline: Scenario | None = None,
    levers: Mapping[str, Scenario] | None = None,
    others: Mapping[str, Scenario] | None = None,
) -> list[Row]:
    """The ledger: one row per baseline parameter whose source is ``"assumption"``.

    ``levers`` defaults to :func:`lever_scenarios`; ``others`` (scenarios that are neither
    the baseline nor levers, such as ``historical``) defaults to every other scenario file.
    """
    baseline = baseline or load_scenario("baseline")
    levers = lever_scenarios() if levers is None else levers
    if others is None:
        skip = {"baseline", *levers}
        others = {n: load_scenario(n) for n in scenario_names() if n not in skip}
    setting = {n: keys_set(s, levers) for n, s in levers.items()}
    listing = {n: keys_listed(s) for n, s in levers.items()}
    other_setting = {n: keys_set_in_own_file(s) for n, s in sorted(others.items())}
    out = []
    for key, entry in sorted(baseline.entries.items()):
        if entry.source != "assumption":
            continue
        field = SCHEMA[key]
        out.append(
            Row(
                key,
                entry.unit,
                field.role,
                field.effect,
                "; ".join(t for t in (field.doc, entry.note) if t),
                entry.value,
                entry.range,
                entry.null,
                tuple(n for n in levers if key in setting[n]),
                tuple(n for n in levers if key in listing[n]),
                tuple(n for n in other_setting if key in other_setting[n]),
            )
        )
    return out


def lever_rows(
    baseline: Scenario | None = None,
    levers: Mapping[str, Scenario] | None = None,
    others: Mapping[str, Scenario] | None = None,
) -> list[LeverRow]:
    """One row per parameter whose schema role is ``lever``, naming the lever scenarios that
    use it (their timeline or overrides set it, or a ``[[mechanism]]`` lists it) and the other
    scenarios whose own file sets it. Defaults as for :func:`rows`."""
    baseline = baseline or load_scenario("baseline")
    levers = lever_scenarios() if levers is None else levers
    if others is None:
        skip = {"baseline", *levers}
        others = {n: load_scenario(n) for n in scenario_names() if n not in skip}
    using = {n: keys_set(s, levers) | keys_listed(s) for n, s in levers.items()}
    other_setting = {n: keys_set_in_own_file(s) for n, s in sorted(others.items())}
    out = []
    for key, field in sorted(SCHEMA.items()):
        if field.role != "lever":
            continue
        entry = baseline.entries[key]
        out.append(
            LeverRow(
                key,
                entry.unit,
                "; ".join(t for t in (field.doc, entry.note) if t),
                entry.value,
                tuple(n for n in levers if key in using[n]),
                tuple(n for n in other_setting if key in other_setting[n]),
            )
        )
    return out


def declared_changes(levers: Mapping[str, Scenario] | None = None) -> list[tuple[str, str, str]]:
    """(scenario, parameter, role) for each assumption a lever scenario's own file declares it
    changes (``[meta] changes_assumptions``)."""
    levers = lever_scenarios() if levers is None else levers
    return [
        (name, key, item["role"])
        for name, sc in levers.items()
        for key, item in sorted(sc.changes_assumptions.items())
        if item["declared_in"] == str(sc.path)
    ]


def timeline_assumptions(names: Iterable[str] | None = None) -> list[TimelineAssumption]:
    """Timeline entries whose source is ``"assumption"``, in the file that declares them."""
    out = []
    for name in scenario_names() if names is None else names:
        scenario = load_scenario(name)
        for t in scenario.timeline:
            if t.source == "assumption" and t.declared_in == str(scenario.path):
                out.append(TimelineAssumption(name, t.date, t.name, tuple(sorted(t.changes))))
    return sorted(out, key=lambda a: (a.scenario, a.date, a.name))


def unaccounted(
    entries: Mapping[str, Entry],
    sources: Mapping[str, Any],
    ledger: Sequence[Row],
    fits_dir: Path = FITS_DIR,
) -> list[str]:
    """Baseline parameters that are neither sourced nor a ledger row with a range.

    Sourced means: ``source`` is a key of ``scenarios/sources.toml`` other than the generic
    ``assumption`` entry, or ``calibration:<fit-id>`` with ``calibration/fits/<fit-id>/``
    present. Anything else must be a ledger row whose range is set.
    """
    listed = {r.key: r for r in ledger}
    bad = []
    for key, entry in sorted(entries.items()):
        source = entry.source
        if source.startswith("calibration:"):
            if (fits_dir / source.split(":", 1)[1]).is_dir():
                continue
        elif source != "assumption" and source in sources:
            continue
        row = listed.get(key)
        if source != "assumption" or row is None or row.range is None:
            bad.append(key)
    return bad


# --------------------------------------------------------------------------- markdown
def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Share):
        return ", ".join(f"{k} {v:g}" for k, v in value.as_dict().items())
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _range(rng: tuple[float, float] | None) -> str:
    return "" if rng is None else f"{rng[0]:g} to {rng[1]:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def render(
    ledger: Sequence[Row],
    timeline: Sequence[TimelineAssumption],
    levers: Sequence[LeverRow] = (),
    declared: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The Markdown page (deterministic: the same files give the same bytes). The lever and
    declared-change sections appear when ``levers`` / ``declared`` are given."""
    lines = [
        *_introduction(ledger),
        *_assumed_table(ledger),
        *_timeline_table(timeline),
        *(_lever_table(levers) if levers else []),
        *(_declared_table(declared) if declared else []),
    ]
    return "\n".join(lines) + "\n"


def _introduction(ledger: Sequence[Row]) -> list[str]:
    """The title, what the page lists and its counts."""
    effects = [r for r in ledger if r.effect]
    resting = [r for r in ledger if r.set_by or r.mechanism_of]
    return [
        "# Assumptions ledger",
        "",
        "<!-- Generated by `python -m model.ledger` from scenarios/*.toml and model/params.py."
        " Do not edit: tests/test_assumptions_doc.py fails when this file is out of date. -->",
        "",
        'Every parameter of `scenarios/baseline.toml` whose `source` is `"assumption"`: no '
        "published figure gives its value, so it carries a plausible `range` (varied by "
        "sensitivity analysis, see [Sweeps](sweeps.md)) and, if it sizes an assumed effect, a "
        "`null` (the value at which the mechanism does nothing; `--effects null` sets every "
        'one of them). The value is the baseline\'s (2024); "also set by" names the other '
        "scenarios (such as `historical`, on its timeline dates) whose own file sets another "
        "value.",
        "",
        f"- {len(ledger)} assumed parameters, {len(effects)} of them effect sizes with a null.",
        f"- {len(resting)} of them are set or listed as a mechanism by a lever scenario "
        "(a scenario file with at least one `[[mechanism]]`).",
        "- Role is the schema's (`model/params.py`): `lever` (what a policy changes), "
        "`uncertain` (sweep factors by default) or `fixed`. A policy scenario that sets a "
        "parameter that is not a lever, or whose value is fitted by calibration (the loader then "
        "calls its role `fitted`), must declare it (the last section below).",
        "- Importance: this page does not rank the assumptions. The committed PSA of the "
        "levers (`experiments/results/psa_levers_64`, 64 parameter sets) finds no parameter's "
        "EVPPI above its noise floor for children going missing. The committed Morris "
        "screen of the historical run (`experiments/results/morris_screening`, 128 "
        "parameters, r = 3) gives mu* per parameter and output for 2024; its leaders are "
        "fitted or declared parameters (decision capacity, the missing-from-care hazard), "
        "and its intervals are too wide to order the assumptions below.",
        "",
    ]


def _assumed_table(ledger: Sequence[Row]) -> list[str]:
    """One row per assumed parameter."""
    lines = [
        "## Assumed parameters",
        "",
        "| parameter | unit | role | value | range | null | set by lever | mechanism of lever "
        "| also set by | meaning |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ledger:
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    f"`{r.key}`",
                    r.unit,
                    r.role + (" (effect)" if r.effect else ""),
                    _fmt(r.value),
                    _range(r.range),
                    _fmt(r.null),
                    _names(r.set_by),
                    _names(r.mechanism_of),
                    _names(r.also_set_by),
                    r.meaning,
                )
            )
            + " |"
        )
    return lines


def _timeline_table(timeline: Sequence[TimelineAssumption]) -> list[str]:
    """Timeline entries whose values are assumptions."""
    lines = [
        "",
        "## Dated values that are assumptions",
        "",
        'Timeline entries whose own `source` is `"assumption"` (the value on that date has no '
        "published figure; the entry's `note` in the scenario file says how it was chosen).",
        "",
        "| scenario | date | entry | parameters |",
        "|---|---|---|---|",
    ]
    for a in timeline:
        lines.append(
            f"| `{a.scenario}` | {a.date.isoformat()} | `{a.name}` | "
            + ", ".join(f"`{k}`" for k in a.keys)
            + " |"
        )
    return lines


def _lever_table(levers: Sequence[LeverRow]) -> list[str]:
    """Every lever parameter and the scenarios that use it."""
    lines = [
        "",
        "## Lever parameters",
        "",
        "Every parameter whose role is `lever`: what a policy scenario may change without "
        "declaring it. *Used by scenarios* names the lever scenarios whose timeline or "
        "overrides set it (including through a lever scenario they extend) or whose "
        "`[[mechanism]]` lists it; *also set by* names other scenarios whose own file sets "
        "it. The value is the baseline's.",
        "",
        "| parameter | unit | value | used by scenarios | also set by | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for lv in levers:
        cells = (
            f"`{lv.key}`",
            lv.unit,
            _fmt(lv.value),
            _names(lv.used_by),
            _names(lv.also_set_by),
            lv.meaning,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _declared_table(declared: Sequence[tuple[str, str, str]]) -> list[str]:
    """(scenario, parameter, role) of each non-lever change a policy scenario declares."""
    lines = [
        "",
        "## Assumptions that policy scenarios change",
        "",
        "A lever scenario may change a parameter that is not a lever only by declaring it "
        "(`[meta] changes_assumptions`, with a comment in the file saying why); its result "
        "then rests on that changed assumption as well as on the policy.",
        "",
        "| scenario | parameter | role |",
        "|---|---|---|",
    ]
    lines += [f"| `{n}` | `{k}` | {r} |" for n, k, r in declared]
    return lines


def build() -> str:
    """The page as it should be for the scenario files on disk."""
    levers = lever_scenarios()
    return render(
        rows(levers=levers),
        timeline_assumptions(),
        lever_rows(levers=levers),
        declared_changes(levers),
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.ledger", description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    ap.add_argument("--out", type=Path, default=DOC_PATH)
    args = ap.parse_args(argv)
    text = build()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m model.ledger", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
