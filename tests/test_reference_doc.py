"""The metric and event reference (``docs/reference.md``) is generated from the registries and
kept up to date, and every event has a description."""

from __future__ import annotations

import inspect

import pytest

from model import reference
from model.events import Event
from model.params import SCHEMA
from model.results import REGISTRY


def test_reference_doc_is_up_to_date() -> None:
    # Catches: a metric added, removed or relabelled in model/results.py, or an event added or
    # re-described in model/events.py, while docs/reference.md still shows the old list.
    # Fix: python -m model.reference
    assert reference.DOC_PATH.read_text(encoding="utf-8") == reference.render(), (
        "docs/reference.md is out of date: run `python -m model.reference` and commit it"
    )


def test_every_metric_and_event_is_on_the_page() -> None:
    page = reference.render()
    # wrong state: the generator skips registry entries (a filter, or a parse that stops early)
    assert all(f"| `{name}` |" in page for name in REGISTRY)
    assert all(f"| `{e.value}` |" in page for e in Event)


def test_every_event_has_its_comment_as_description() -> None:
    notes = reference.event_notes()
    assert set(notes) == set(Event)
    # wrong state: the comment read from the wrong line (another member's, or none)
    assert notes[Event.RETURNED] == "value: days missing"
    assert notes[Event.WENT_MISSING] == "detail: placement type"


def test_an_event_without_a_comment_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # Control: a new event added without a comment stops the generator instead of reaching
    # the page with an empty description.
    source = inspect.getsource(Event)
    stripped = source.replace(
        'RETURNED = "returned"  # value: days missing', 'RETURNED = "returned"'
    )
    assert stripped != source
    monkeypatch.setattr(reference.inspect, "getsource", lambda _obj: stripped)
    with pytest.raises(ValueError, match="returned"):
        reference.event_notes()


def test_every_lever_is_on_the_page_with_the_scenarios_that_set_it() -> None:
    # wrong state: a lever missing from the table (a filter on the wrong role), a policy option
    # that sets it not named, or a file that only lists it in a [[mechanism]] named as setting it
    rows = {lv.field.key: lv for lv in reference.levers()}
    assert set(rows) == {k for k, f in SCHEMA.items() if f.role == "lever"}
    assert all(lv.field.doc for lv in rows.values()), "a lever without a meaning in params.py"
    assert rows["policy.legal_aid_before_rg"].set_by_options == ("legal_aid",)
    assert rows["policy.decision_regime"].set_by_options == ("repeal_nba", "repeal_nba_full")
    assert "historical" in rows["policy.decision_regime"].set_by_others
    assert rows["guardianship.scotland_service"].set_by_options == ()
    page = reference.render()
    assert "| `policy.legal_aid_before_rg` | legal advice offered before the RG | flag |" in page
    assert "`pre_nba`, `nba_objective`, `nba_amended`" in page
