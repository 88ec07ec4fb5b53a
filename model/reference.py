"""The metric and event reference: ``docs/reference.md``, generated from the registries.

The page is written by this module, never edited by hand::

    python -m model.reference              # rewrite docs/reference.md
    python -m model.reference --check      # exit 1 if docs/reference.md is out of date

Metrics come from ``model.results.REGISTRY`` (name, label, unit, kind, the groupings it has
rows for, which direction is better, its title and tags), in the order they are registered.
Events come from ``model.events.Event``: the name, the comment written beside the member in
``model/events.py`` (the only description an event has), the detail column its category goes
to (``DETAIL_COLUMNS``), and whether it is a system row. An event without a comment is an
error, so a new event cannot reach the page undescribed.

Lever parameters come from the schema (``model.params.SCHEMA``, role ``lever``) with the
baseline's value and range, and the shipped scenario files that set each one (read with
``model.ledger``), so a scenario file that starts or stops setting a lever changes the page too.
"""

from __future__ import annotations

import argparse
import inspect
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model import events as events_module
from model import ledger
from model.events import DETAIL_COLUMNS, SYSTEM_EVENTS, Event
from model.params import SCHEMA, Field
from model.results import GROUP_BYS, KINDS, REGISTRY, TAGS
from model.scenario import UNITS, Entry, load_scenario

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "reference.md"
MEMBER = re.compile(
    r'^\s+(?P<member>[A-Z][A-Z0-9_]*) = "(?P<value>[a-z0-9_]+)"\s*(?:#\s*(?P<note>.*))?$'
)


def event_notes() -> dict[Event, str]:
    """Each event's comment in ``model/events.py``.

    Raises:
        ValueError: an event has no comment, or a member line could not be read.
    """
    notes: dict[Event, str] = {}
    for line in inspect.getsource(events_module.Event).splitlines():
        found = MEMBER.match(line)
        if found:
            notes[Event(found["value"])] = (found["note"] or "").strip()
    missing = [e.value for e in Event if not notes.get(e)]
    if missing:
        raise ValueError(f"events without a comment in model/events.py: {missing}")
    return notes


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True, slots=True)
class Lever:
    """A parameter whose role is ``lever``, with the shipped scenario files that set it."""

    field: Field
    entry: Entry  # the baseline's declaration (value, range, note)
    set_by_options: tuple[str, ...]  # policy options (files with a [[mechanism]]) that set it
    set_by_others: tuple[str, ...]  # other scenario files that set it themselves


def levers() -> list[Lever]:
    """Every ``lever`` parameter of the schema, in name order, with the scenario files in
    ``scenarios/`` that set it on their timeline or as an override. A policy option counts if
    it sets the parameter itself or through a policy option it extends (``ledger.keys_set``);
    another file (``historical``, a status quo variant) if it sets it itself."""
    baseline = load_scenario("baseline")
    options = ledger.lever_scenarios()
    others = {
        name: ledger.keys_set_in_own_file(load_scenario(name))
        for name in ledger.scenario_names()
        if name != "baseline" and name not in options
    }
    by_option = {name: ledger.keys_set(sc, options) for name, sc in options.items()}
    return [
        Lever(
            field,
            baseline.entries[key],
            tuple(n for n, keys in by_option.items() if key in keys),
            tuple(n for n, keys in sorted(others.items()) if key in keys),
        )
        for key, field in sorted(SCHEMA.items())
        if field.role == "lever"
    ]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def allowed(field: Field, entry: Entry) -> str:
    """The values the loader accepts for a parameter (its unit's bounds, or its choices),
    and the baseline's plausible range where it declares one."""
    if field.kind == "choice":
        return ", ".join(f"`{c}`" for c in field.choices)
    if field.kind == "bool":
        return "true or false"
    _, low, high = UNITS[field.unit]
    text = "whole number " if field.kind == "int" else ""
    text += f"{low:g} to {high:g}" if high != math.inf else f">= {low:g}"
    if entry.range is not None:
        text += f"; plausible {entry.range[0]:g} to {entry.range[1]:g}"
    return text


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def render() -> str:
    """The page as Markdown."""
    return "\n".join([*_metrics_section(), *_events_section(), *_levers_section()]) + "\n"


def _metrics_section() -> list[str]:
    """The title, the introduction and one row per registered metric."""
    lines = [
        "# Metric and event reference",
        "",
        "<!-- Generated by `python -m model.reference` from model/results.py (REGISTRY),",
        "model/events.py (Event), model/params.py (SCHEMA) and scenarios/*.toml. Do not edit by",
        "hand: tests/test_reference_doc.py checks it. -->",
        "",
        "Generated from the code and the scenario files, so it lists exactly what the model",
        "computes and records, and what a policy may change. The user guide explains how to read",
        "them: [metrics](guide/metrics.md), [events](guide/events.md) and [scenario",
        "files](guide/scenario-files.md#writing-a-policy-option).",
        "",
        "## Metrics",
        "",
        f"{len(REGISTRY)} metrics, in the order `model/results.py` registers them. Each is",
        "computed per period (a calendar year in the summary) and per group of every grouping",
        "(" + ", ".join(f"`{g}`" for g in GROUP_BYS) + "), except those marked *all only*",
        "and multi-row metrics, whose rows come under their own grouping.",
        "",
        "Kinds: " + "; ".join(f"*{k}*: {v}" for k, v in KINDS.items()) + ".",
        "",
        "Flows add up over disjoint groups, and over years except the counts of distinct",
        "children (kind *flow, distinct*: a child who goes missing in two years is one child",
        "over both; the report sums the other flows over its policy window); stocks, rates and",
        "means do not. *Better*: the direction the sweep analysis ranks options by (blank:",
        "reported, not ranked). *Title*: the report's name for it. *Tags*: "
        + "; ".join(f"*{k}*: {v}" for k, v in TAGS.items())
        + ".",
        "",
        "| metric | label | unit | kind | groups | better | title | tags |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in REGISTRY.values():
        groups = {GROUP_BYS: "every grouping", ("all",): "all only"}.get(
            m.groupings, ", ".join(f"`{g}`" for g in m.groupings)
        )
        lines.append(
            f"| `{m.name}` | {_cell(m.label)} | {m.unit} | "
            f"{m.kind}{', distinct' if m.distinct else ''} | {groups} | "
            f"{m.better or ''} | {_cell(m.title)} | {', '.join(sorted(m.tags))} |"
        )
    return lines


def _events_section() -> list[str]:
    """One row per event of ``Event``."""
    notes = event_notes()
    lines = [
        "",
        "## Events",
        "",
        f"{len(Event)} events, in the order of `Event` in `model/events.py`. The description is",
        "the comment beside the member there. *Detail column*: the column of the event log",
        "(`EventLog.to_frame`) that holds the event's category. System rows (`child_id` -1)",
        "record series the metrics need rather than something that happened to a child.",
        "",
        "| event | description | detail column | system row |",
        "|---|---|---|---|",
    ]
    for e in Event:
        column = f"`{DETAIL_COLUMNS[e]}`" if e in DETAIL_COLUMNS else ""
        system = "yes" if e in SYSTEM_EVENTS else ""
        lines.append(f"| `{e.value}` | {_cell(notes[e])} | {column} | {system} |")
    return lines


def _levers_section() -> list[str]:
    """One row per lever parameter, with the scenarios that set it."""
    rows = levers()
    lines = [
        "",
        "## Lever parameters",
        "",
        f"{len(rows)} parameters have the role `lever` in `model/params.py`: a policy scenario (a",
        "scenario file with a `[[mechanism]]`) may set these without declaring anything; any",
        "other parameter it sets must be listed in its `[meta] changes_assumptions` ([Scenario",
        "files](guide/scenario-files.md#roles-what-a-policy-option-may-change)). *Values*: what",
        "the loader accepts, and the plausible range where the baseline declares one (a value set",
        "on a timeline, or with a source other than `assumption`, may go beyond the range but not",
        "beyond the unit's bounds). *Set by*: the files in `scenarios/`",
        "that set the parameter on their timeline or as an override, policy options apart from the",
        "others (`historical` and the status quo variants). The [assumptions",
        "ledger](assumptions.md#lever-parameters) also names the options whose `[[mechanism]]`",
        "lists it.",
        "",
        "| parameter | what it is | unit | values | baseline (2024) | set by policy options "
        "| set by other scenarios |",
        "|---|---|---|---|---|---|---|",
    ]
    for lv in rows:
        meaning = "; ".join(t for t in (lv.field.doc, lv.entry.note) if t)
        cells = (
            f"`{lv.field.key}`",
            meaning,
            lv.field.unit,
            allowed(lv.field, lv.entry),
            _fmt(lv.entry.value),
            _names(lv.set_by_options),
            _names(lv.set_by_others),
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.reference", description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    ap.add_argument("--out", type=Path, default=DOC_PATH)
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m model.reference", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
