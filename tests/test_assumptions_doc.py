"""The assumptions ledger (``docs/assumptions.md``) is generated from the scenario files and
kept up to date, and every baseline parameter is either sourced or an assumption with a range.
"""

from __future__ import annotations

from dataclasses import replace

from model import ledger
from model.scenario import Scenario, load_sources


def test_assumptions_doc_is_up_to_date() -> None:
    # Catches: a parameter added, removed, re-sourced, re-ranged or given to a new lever in
    # scenarios/*.toml (or model/params.py) while docs/assumptions.md still shows the old
    # ledger. Fix: python -m model.ledger
    assert ledger.DOC_PATH.read_text(encoding="utf-8") == ledger.build(), (
        "docs/assumptions.md is out of date: run `python -m model.ledger` and commit it"
    )


def test_every_baseline_parameter_is_sourced_or_a_listed_assumption(baseline: Scenario) -> None:
    # Catches: a baseline value whose source is neither a key of scenarios/sources.toml nor a
    # committed calibration fit (calibration:<fit-id> naming a fit folder that does not
    # exist), and an assumption missing from the ledger or without a plausible range.
    rows = ledger.rows(baseline)
    assert ledger.unaccounted(baseline.entries, load_sources(), rows) == []


def test_every_ledger_row_is_a_baseline_assumption_with_a_range(baseline: Scenario) -> None:
    rows = ledger.rows(baseline)
    assumed = {k for k, e in baseline.entries.items() if e.source == "assumption"}
    # wrong state: the ledger lists sourced or fitted parameters as assumptions (inflating
    # the count), or leaves an assumption out
    assert {r.key for r in rows} == assumed
    # wrong state: a row without the range that sensitivity analysis varies
    assert all(r.range is not None for r in rows)
    # wrong state: an assumed effect size shown without its null (--effects null value)
    assert all(r.null is not None for r in rows if r.effect)


def test_the_check_fails_on_an_unsourced_or_unranged_parameter(baseline: Scenario) -> None:
    # Control: the check above can fail. Catches a check that accepts anything: an unknown
    # source key, a fit id with no committed fit, and an assumption whose range was lost.
    sources = load_sources()
    key = "rg_decision.mean_work_days"  # an assumption with a range in the baseline
    for bad in (
        replace(baseline.entries[key], source="no-such-source"),
        replace(baseline.entries[key], source="calibration:fit-that-was-never-committed"),
        replace(baseline.entries[key], range=None),
    ):
        entries = {**baseline.entries, key: bad}
        rows = ledger.rows(replace(baseline, entries=entries))
        assert ledger.unaccounted(entries, sources, rows) == [key]


def test_lever_columns_come_from_timelines_and_mechanisms(baseline: Scenario) -> None:
    levers = ledger.lever_scenarios()
    # wrong state: the comparators (no [[mechanism]] of their own) counted as levers
    assert "historical" not in levers and "status_quo_2027" not in levers
    by_key = {r.key: r for r in ledger.rows(baseline, levers)}
    awareness = by_key["identification.awareness_multiplier"]
    # wrong state: "set by" empty, or crediting levers with the historical timeline
    assert awareness.set_by == ("earlier_identification",)
    # wrong state: "mechanism of" empty or swapped with "set by"
    assert "earlier_identification" in awareness.mechanism_of
    caseload = by_key["guardianship.ictg_direct_caseload"]
    # wrong state: a lever that extends another lever (ictg_all_separated extends
    # national_ictg) not credited with what both set
    assert {"national_ictg", "ictg_all_separated"} <= set(caseload.set_by)
    # repeal_nba sets no assumed parameter itself (its timeline sets policy choices and a
    # sourced recovery period) but rests on assumed effects through its mechanisms
    assert all("repeal_nba" not in r.set_by for r in by_key.values())
    assert "repeal_nba" in by_key["retrafficking.confirmed_hazard_ratio"].mechanism_of
    # wrong state: a comparator variant's own override hidden (or shown as a lever)
    after_2025 = by_key["cg_decision.capacity_after_2025"]
    assert after_2025.also_set_by == ("status_quo_2027_surge",)
    assert "status_quo_2027_surge" not in levers
