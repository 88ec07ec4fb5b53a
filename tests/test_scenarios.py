"""Scenario files: they load, every parameter has a unit and a traceable source, assumptions
carry plausible ranges, the historical timeline has the policy changes on the right dates,
and every declared parameter is read somewhere in the model."""

from __future__ import annotations

import ast
import datetime as dt
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from model.params import ROLES, SCHEMA
from model.scenario import (
    SCENARIO_DIR,
    SOURCE_KINDS,
    UNITS,
    Entry,
    Params,
    Scenario,
    ScenarioError,
    Share,
    TimelineEntry,
    load_scenario,
    load_sources,
    source_kind,
)

MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
SCENARIO_FILES = sorted(p for p in SCENARIO_DIR.glob("*.toml") if p.stem != "sources")
RAW_SOURCES = tomllib.loads((SCENARIO_DIR / "sources.toml").read_text(encoding="utf-8"))["source"]


def _raw(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _raw_params(doc: dict) -> Iterator[tuple[str, dict]]:
    """(group.name, entry table) for every [params.<group>] entry in a raw TOML document."""
    for group, names in doc.get("params", {}).items():
        for name, node in names.items():
            yield f"{group}.{name}", node


def _source_ok(source: object) -> bool:
    return isinstance(source, str) and (
        source == "assumption" or source.startswith("calibration:") or source in RAW_SOURCES
    )


# --------------------------------------------------------------------------- files load
def test_there_are_scenarios_besides_baseline() -> None:
    stems = {p.stem for p in SCENARIO_FILES}
    assert {"baseline", "historical"} <= stems


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_scenario_file_loads(path: Path) -> None:
    by_name = load_scenario(path.stem)
    by_path = load_scenario(path)
    assert isinstance(by_name, Scenario)
    assert by_name.end > by_name.start
    assert by_name.replicates >= 1 and by_name.seed >= 0
    assert set(by_name.entries) == set(by_path.entries)
    # the chain ends with the file itself and starts with the baseline
    assert Path(by_name.chain[-1]).resolve() == path.resolve()
    assert Path(by_name.chain[0]).name == "baseline.toml"


# --------------------------------------------------------------------------- baseline declarations
def test_baseline_declares_every_parameter_with_unit_and_source() -> None:
    doc = _raw(SCENARIO_DIR / "baseline.toml")
    raw = dict(_raw_params(doc))
    assert len(raw) > 50
    for key, node in raw.items():
        assert isinstance(node, dict), key
        assert {"value", "unit", "source"} <= set(node), f"{key} lacks value/unit/source"
        assert node["unit"] in UNITS, f"{key}: unit {node['unit']!r}"
        assert isinstance(node["source"], str) and node["source"], key
    baseline = load_scenario("baseline")
    assert set(baseline.entries) == set(raw)
    for key, entry in baseline.entries.items():
        assert Path(entry.declared_in).name == "baseline.toml", key
        assert entry.unit in UNITS and entry.source


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_other_scenarios_only_override_baseline_keys(path: Path) -> None:
    baseline_keys = {k for k, _ in _raw_params(_raw(SCENARIO_DIR / "baseline.toml"))}
    doc = _raw(path)
    assert {k for k, _ in _raw_params(doc)} <= baseline_keys
    for item in doc.get("timeline", []):
        assert set(item["set"]) <= baseline_keys, item["name"]


# --------------------------------------------------------------------------- sources
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_source_key_used_exists(path: Path) -> None:
    doc = _raw(path)
    used = [(f"params.{k}", node.get("source")) for k, node in _raw_params(doc)]
    used += [(f"timeline.{t.get('name')}", t.get("source")) for t in doc.get("timeline", [])]
    bad = [(where, src) for where, src in used if not _source_ok(src)]
    assert not bad, f"sources not in sources.toml: {bad}"


def test_every_source_has_a_known_kind() -> None:
    assert len(RAW_SOURCES) > 10
    for key, src in RAW_SOURCES.items():
        assert src.get("kind") in SOURCE_KINDS, f"source.{key}.kind = {src.get('kind')!r}"
        assert src.get("title"), f"source.{key} has no title"
    assert set(load_sources()) == set(RAW_SOURCES)


def test_load_sources_rejects_an_unknown_kind(tmp_path: Path) -> None:
    bad = tmp_path / "sources.toml"
    bad.write_text('[source.x]\ntitle = "t"\nkind = "blog"\n')
    with pytest.raises(ScenarioError) as info:
        load_sources(bad)
    text = str(info.value)
    assert "source.x.kind" in text and "'blog'" in text and "official-statistics" in text


def test_source_kind_grades_entries(baseline: Scenario) -> None:
    sources = baseline.sources

    def entry(source: str) -> Entry:
        return Entry("g.x", 0.5, "probability", source)

    assert source_kind(entry("assumption"), sources) == "assumption"
    assert source_kind(entry("calibration:fit-2025-01-01"), sources) == "calibrated"
    assert source_kind(entry("ho-nrm-eoy-2024"), sources) == "official-statistics"
    assert source_kind(entry("care-foi-turning-18-2024"), sources) == "foi-release"
    assert source_kind(entry("nba-2022-s60"), sources) == RAW_SOURCES["nba-2022-s60"]["kind"]
    grades = {k: source_kind(e, sources) for k, e in baseline.entries.items()}
    assert set(grades.values()) <= set(SOURCE_KINDS) | {"calibrated"}
    assert grades["rg_decision.p_positive_pre_nba"] == "ngo-secondary"
    assert grades["identification.child_referrals_per_year"] == "assumption"
    # the baseline mixes evidence grades; it is not all assumptions
    assert {"official-statistics", "assumption"} <= set(grades.values())


# --------------------------------------------------------------------------- assumptions and ranges
# Share-valued assumptions: their range is for one named category (see the note in baseline).
SHARE_RANGE_CATEGORY = {
    "identification.nation": "england",
    "care.type_under_16": "foster",
    "care.type_16_17": "supported_accommodation",
}


@pytest.mark.parametrize("name", [p.stem for p in SCENARIO_FILES])
def test_every_assumption_has_a_range_containing_its_value(name: str) -> None:
    scenario = load_scenario(name)
    assumptions = {k: e for k, e in scenario.entries.items() if e.source == "assumption"}
    assert len(assumptions) > 20
    for key, e in assumptions.items():
        assert e.range is not None, f"{key} is an assumption without a range"
        lo, hi = e.range
        assert lo <= hi, key
        if isinstance(e.value, Share):
            assert key in SHARE_RANGE_CATEGORY, f"{key}: share assumption, say which category"
            value = e.value[SHARE_RANGE_CATEGORY[key]]
        else:
            assert isinstance(e.value, int | float) and not isinstance(e.value, bool), key
            value = e.value
        assert lo <= value <= hi, f"{key} = {value} outside its range [{lo}, {hi}]"


def test_raw_assumptions_in_baseline_declare_a_range() -> None:
    for key, node in _raw_params(_raw(SCENARIO_DIR / "baseline.toml")):
        if node["source"] == "assumption":
            assert "range" in node, key
            assert len(node["range"]) == 2, key


# --------------------------------------------------------------------------- historical timeline
# name -> (date, parameters it must set to these values)
HISTORICAL_ENTRIES = {
    "nba_objective_evidence": (dt.date(2023, 1, 30), {"policy.decision_regime": "nba_objective"}),
    "pod_introduced": (dt.date(2023, 1, 31), {"policy.pod_policy": "s63_original"}),
    "rg_guidance_amended": (dt.date(2023, 7, 10), {"policy.decision_regime": "nba_amended"}),
    "pod_paused": (dt.date(2023, 7, 26), {"policy.pod_policy": "paused"}),
    "pod_revised": (dt.date(2024, 1, 8), {"policy.pod_policy": "s63_revised"}),
    "pilot_start": (dt.date(2021, 6, 1), {"devolved_pilot.la_count": 15}),
    "pilot_expansion": (dt.date(2023, 3, 1), {"devolved_pilot.la_count": 30}),
    "hotels_open": (dt.date(2021, 7, 1), {"policy.hotels_in_use": True}),
    "hotels_closed": (
        dt.date(2024, 1, 15),
        {"policy.hotels_in_use": False, "care.capacity_hotel": 0},
    ),
    "reconsideration_one_month": (
        dt.date(2024, 2, 1),
        {"policy.reconsideration_window_days": 30.0},
    ),
}
# what the first timeline entry (the starting state, on or before 2016-01-01) must set
STARTING_STATE = {
    "policy.decision_regime": "pre_nba",
    "policy.pod_policy": "none",
    "policy.hotels_in_use": False,
    "policy.reconsideration_window_days": 91.0,
    "devolved_pilot.la_count": 0,
    "care.capacity_hotel": 0,
}


def params_on(scenario: Scenario, day: dt.date) -> Params:
    """Parameters in force on ``day``: those on day 0, then every later entry up to ``day``,
    the way ``NRMModel._timeline`` applies them."""
    params = scenario.initial_params()
    for item in scenario.future_timeline():
        if item.date <= day:
            params = params.with_values(item.changes)
    return params


def test_historical_timeline_is_date_ordered_and_starts_by_2016(historical: Scenario) -> None:
    dates = [t.date for t in historical.timeline]
    assert len(dates) >= len(HISTORICAL_ENTRIES) + 1
    assert dates == sorted(dates)
    assert dates[0] <= dt.date(2016, 1, 1)
    assert historical.start <= dt.date(2016, 1, 1)
    assert historical.sim_start <= historical.start
    assert dates[0] <= historical.sim_start, "day 0 must be covered by a timeline entry"
    # 2025 is part of the published record (issue 14): the gate covers it.
    assert historical.end == dt.date(2025, 12, 31)
    names = [t.name for t in historical.timeline]
    assert len(names) == len(set(names)), "timeline names must be unique"


def test_historical_starting_state(historical: Scenario) -> None:
    first = historical.timeline[0]
    for key, value in STARTING_STATE.items():
        assert key in first.changes, f"{first.name} does not set {key}"
        assert first.changes[key] == value, f"{first.name}: {key} = {first.changes[key]!r}"
        assert type(first.changes[key]) is type(value), key


@pytest.mark.parametrize("name", sorted(HISTORICAL_ENTRIES))
def test_historical_timeline_entry(historical: Scenario, name: str) -> None:
    by_name = {t.name: t for t in historical.timeline}
    assert name in by_name, f"historical timeline lacks '{name}'"
    when, expected = HISTORICAL_ENTRIES[name]
    item = by_name[name]
    assert item.date == when
    for key, value in expected.items():
        assert key in item.changes, f"{name} does not set {key}"
        assert item.changes[key] == value, f"{name}: {key} = {item.changes[key]!r}"
        assert type(item.changes[key]) is type(value), f"{name}: {key} has the wrong type"
    assert _source_ok(item.source)


def test_2025_is_data_with_sources_and_roles(historical: Scenario) -> None:
    """Catches: a 2025 figure put into the timeline or the targets without its source, an
    exact locator, a role, or (for targets) the reason it is fit or validate; and the switch to
    the assumed capacity coming before the last published quarter."""
    from model.calibration import load_targets

    in_2025 = [t for t in historical.timeline if t.date.year == 2025]
    names = {t.name for t in in_2025}
    assert {"volume_2025", "referral_form_2025", "volume_2025_q4"} <= names
    for item in in_2025:
        assert item.source != "assumption" and item.source in RAW_SOURCES, item.name
    switch = [t for t in historical.timeline if "cg_decision.after_published_years" in t.changes]
    assert [t.date for t in switch] == [dt.date(2026, 1, 1)]
    q4 = next(t for t in in_2025 if t.name == "volume_2025_q4")
    assert q4.changes["cg_decision.capacity_per_year"] == pytest.approx(7406 * 4 * 0.40, abs=1)

    targets = [t for t in load_targets() if t.end.year == 2025 or t.start.year == 2025]
    ids = {t.id for t in targets}
    assert {
        "allages_referrals_q4_2025",
        "allages_cg_decisions_q4_2025",
        "allages_rg_positive_rate_q4_2025",
        "allages_cg_positive_rate_q4_2025",
        "allages_backlog_june_2025",
        "allages_awaiting_cg_end_2025",
    } <= ids
    for t in targets:
        if t.start.year < 2025:  # an older target whose period ends on 1 January 2025
            continue
        assert t.source in RAW_SOURCES, t.id
        assert t.locator.strip(), t.id
        assert t.role in ("input-check", "outcome") and t.use in ("fit", "validate"), t.id
        assert t.notes.get("history", "").strip(), f"{t.id}: no history (why fit or validate)"
        assert t.population == "all_ages" and t.view != "metric", t.id
    by_id = {t.id: t for t in targets}
    # figures that echo an input (capacity from decision counts, volume) are input checks
    assert by_id["allages_cg_decisions_q4_2025"].role == "input-check"
    assert by_id["allages_referrals_q4_2025"].role == "input-check"
    assert by_id["allages_rg_positive_rate_q4_2025"].role == "outcome"


def test_policy_order_in_historical_timeline(historical: Scenario) -> None:
    by_name = {t.name: t.date for t in historical.timeline}
    assert by_name["pod_introduced"] < by_name["pod_paused"] < by_name["pod_revised"]
    assert by_name["nba_objective_evidence"] < by_name["rg_guidance_amended"]
    assert by_name["pilot_start"] < by_name["pilot_expansion"]
    assert by_name["hotels_open"] < by_name["hotels_closed"]


def test_historical_initial_params_are_pre_nba(historical: Scenario) -> None:
    p = historical.initial_params()
    assert p.policy.decision_regime == "pre_nba"
    assert p.policy.pod_policy == "none"
    assert p.policy.reconsideration_window_days == 91
    assert p.devolved_pilot.la_count == 0
    assert p.policy.hotels_in_use is False
    first = historical.timeline[0].changes
    assert (
        p.identification.child_referrals_per_year
        == first["identification.child_referrals_per_year"]
    )
    # the baseline's 2024 values are not what the history starts with
    assert load_scenario("baseline").initial_params().policy.decision_regime == "nba_amended"


@pytest.mark.parametrize(
    ("day", "regime", "pod", "window", "hotels"),
    [
        (dt.date(2022, 12, 31), "pre_nba", "none", 91, True),
        (dt.date(2023, 3, 1), "nba_objective", "s63_original", 91, True),
        (dt.date(2023, 7, 26), "nba_amended", "paused", 91, True),
        (dt.date(2024, 1, 20), "nba_amended", "s63_revised", 91, False),
        (dt.date(2024, 2, 1), "nba_amended", "s63_revised", 30, False),
    ],
)
def test_policy_in_force_on_a_day(
    historical: Scenario, day: dt.date, regime: str, pod: str, window: int, hotels: bool
) -> None:
    p = params_on(historical, day)
    assert p.policy.decision_regime == regime
    assert p.policy.pod_policy == pod
    assert p.policy.reconsideration_window_days == window
    assert p.policy.hotels_in_use is hotels


def test_with_run_applies_timeline_up_to_the_new_start(historical: Scenario) -> None:
    start = dt.date(2023, 3, 1)
    moved = historical.with_run(start=start)
    assert moved.start == start and moved.end == historical.end
    p = params_on(moved, start)
    assert p.policy.decision_regime == "nba_objective"
    assert p.policy.pod_policy == "s63_original"
    assert p.devolved_pilot.la_count == 30  # pilot_expansion is dated on the start day
    assert p.policy.hotels_in_use is True
    assert p.policy.reconsideration_window_days == 91
    # without a warm-up, day 0 is the new start and the initial parameters are those of 2023-03-01
    cold = replace(moved, warmup_start=None)
    assert cold.sim_start == start
    q = cold.initial_params()
    assert q.policy.decision_regime == "nba_objective"
    assert q.devolved_pilot.la_count == 30
    future = cold.future_timeline()
    assert future and all(start < t.date <= cold.end for t in future)
    assert [t.name for t in future][:2] == ["rg_guidance_amended", "pod_paused"]
    # the original is unchanged
    assert historical.initial_params().policy.decision_regime == "pre_nba"
    assert historical.start <= dt.date(2016, 1, 1)


def test_with_run_rejects_end_before_start(historical: Scenario) -> None:
    with pytest.raises(ScenarioError) as info:
        historical.with_run(start=dt.date(2020, 1, 1), end=dt.date(2019, 1, 1))
    assert "run.end" in str(info.value)


def test_small_fixture_is_baseline_policy_with_fewer_referrals(small: Scenario) -> None:
    p = small.initial_params()
    assert p.identification.child_referrals_per_year == 700.0
    assert p.policy.decision_regime == "nba_amended"
    assert small.future_timeline() == []


def test_relative_extends_path_resolves_against_the_extending_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``extends = "../parent.toml"`` is relative to the file that says it, not to the cwd."""
    (tmp_path / "parent.toml").write_text(
        f'[meta]\nname = "parent"\nextends = "{(SCENARIO_DIR / "baseline.toml").as_posix()}"\n'
    )
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.toml"
    child.write_text('[meta]\nname = "child"\nextends = "../parent.toml"\n')
    elsewhere = tmp_path / "elsewhere" / "deeper"  # "../parent.toml" from here is missing
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    scenario = load_scenario(child)
    assert scenario.name == "child"
    assert Path(scenario.chain[-2]).resolve() == (tmp_path / "parent.toml").resolve()


# ------------------------------------------------------------------- every parameter is read
# Parameters read through a computed name: (group, prefix) -> the suffixes the model uses.
def _dynamic_suffixes(baseline: Scenario) -> dict[tuple[str, str], set[str]]:
    from model.params import NATIONS, PLACEMENT_TYPES
    from model.stages.guardianship import SUFFIX

    effects = (
        "missing_hazard_ratio",
        "retrafficking_hazard_ratio",
        "dropout_at_18_odds_ratio",
        "criminalisation_hazard_ratio",
    )
    return {
        ("care", "capacity_"): set(PLACEMENT_TYPES),
        ("care", "missing_rate_ratio_"): set(PLACEMENT_TYPES) - {"foster", "hotel"},
        ("cost", "per_day_"): set(PLACEMENT_TYPES),
        ("local_authorities", "count_"): set(NATIONS),
        **{("guardianship", f"{e}_"): set(SUFFIX.values()) for e in effects},
    }


def _model_reads() -> tuple[set[str], set[str], set[str]]:
    """Attribute names, string constants (subscripts, getattr names, cost keys passed to
    functions), and f-string prefixes (or a name passed as a string and completed in an
    f-string) in model/ outside the schema module."""
    attrs, keys, prefixes = set(), set(), set()
    for path in MODEL_DIR.rglob("*.py"):
        if path.name == "params.py":
            continue  # the schema declares every name; reading is what is tested
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                keys.add(node.value)
                prefixes.add(node.value + "_")
            if isinstance(node, ast.Attribute):
                attrs.add(node.attr)
            elif isinstance(node, ast.Subscript):
                if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                    keys.add(node.slice.value)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                keys.add(str(node.args[1].value))
            elif isinstance(node, ast.JoinedStr) and len(node.values) >= 2:
                head, tail = node.values[0], node.values[1]
                if (
                    isinstance(head, ast.Constant)
                    and isinstance(head.value, str)
                    and head.value.endswith("_")
                    and isinstance(tail, ast.FormattedValue)
                ):
                    prefixes.add(head.value)
    return attrs, keys, prefixes


def test_every_baseline_parameter_is_read_by_the_model(baseline: Scenario) -> None:
    attrs, keys, prefixes = _model_reads()
    dynamic = _dynamic_suffixes(baseline)
    unread = []
    for dotted in baseline.entries:
        group, name = dotted.split(".", 1)
        if name in attrs or name in keys:
            continue
        matched = False
        for (g, prefix), suffixes in dynamic.items():
            if g == group and name.startswith(prefix):
                matched = matched or (prefix in prefixes and name[len(prefix) :] in suffixes)
        if not matched:
            unread.append(dotted)
    assert not unread, f"declared in baseline.toml but never read by model/: {unread}"


def test_every_dynamic_name_the_model_builds_is_declared(baseline: Scenario) -> None:
    """The reverse: each (prefix, suffix) the model can compute exists in baseline."""
    _, _, prefixes = _model_reads()
    for (group, prefix), suffixes in _dynamic_suffixes(baseline).items():
        assert prefix in prefixes, f"model no longer builds names with {prefix!r}"
        for suffix in suffixes:
            assert f"{group}.{prefix}{suffix}" in baseline.entries


# --------------------------------------------------------------------------- the typed schema
def test_schema_and_baseline_declare_the_same_parameters(baseline: Scenario) -> None:
    assert set(SCHEMA) == set(baseline.entries)
    for key, field in SCHEMA.items():
        assert baseline.entries[key].unit == field.unit, key
        assert field.role in ROLES, key


def test_assumptions_are_not_declared_fixed(baseline: Scenario) -> None:
    """A parameter we only assume (or fit) is something a sweep must be able to vary; `fixed`
    is for sourced values. Degenerate ranges (structural counts) are the only exception."""
    wrong = [
        k
        for k, e in baseline.entries.items()
        if source_kind(e, baseline.sources) in ("assumption", "calibrated")
        and SCHEMA[k].role == "fixed"
        and not (e.range and e.range[0] == e.range[1])
    ]
    assert not wrong, f"assumed or fitted but role 'fixed' in model/params.py: {wrong}"


def test_every_effect_declares_a_null_inside_its_range(baseline: Scenario) -> None:
    effects = [k for k, f in SCHEMA.items() if f.effect]
    assert effects
    for key in effects:
        e = baseline.entries[key]
        assert e.null is not None, key
        if e.range is not None:
            assert e.range[0] <= e.null <= e.range[1], f"{key}: null {e.null} outside {e.range}"


def _baseline_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (SCENARIO_DIR / "baseline.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "baseline_copy.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_an_effect_without_a_null_is_rejected(tmp_path: Path) -> None:
    path = _baseline_copy(
        tmp_path,
        "confirmed_hazard_ratio = { value = 0.8, null = 1.0,",
        "confirmed_hazard_ratio = { value = 0.8,",
    )
    with pytest.raises(ScenarioError, match="needs 'null = "):
        load_scenario(path)


def test_a_null_outside_the_range_needs_a_source(tmp_path: Path) -> None:
    path = _baseline_copy(
        tmp_path,
        "missing_hazard_ratio_direct = { value = 0.85, null = 1.0,",
        "missing_hazard_ratio_direct = { value = 0.85, null = 1.5,",
    )
    with pytest.raises(ScenarioError, match="outside the plausible range"):
        load_scenario(path)


def test_a_baseline_missing_a_parameter_is_rejected(tmp_path: Path) -> None:
    text = (SCENARIO_DIR / "baseline.toml").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith("weight_sigma = ")]
    path = tmp_path / "baseline_copy.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"no value for \['local_authorities.weight_sigma'\]"):
        load_scenario(path)


def test_with_effects_null_sets_every_effect_in_declarations_and_timeline(
    historical: Scenario,
) -> None:
    key = "guardianship.missing_hazard_ratio_direct"
    lever = replace(
        historical,
        timeline=(
            *historical.timeline,
            TimelineEntry(dt.date(2020, 1, 1), "lever", "assumption", {key: 0.5}),
        ),
    )
    nulled = lever.with_effects("null")
    assert nulled.effects == "null" and lever.effects == "default"
    for k in lever.effect_keys():
        assert nulled.entries[k].value == lever.entries[k].null
    assert params_on(nulled, dt.date(2021, 1, 1)).get(key) == 1.0
    assert params_on(lever, dt.date(2021, 1, 1)).get(key) == 0.5
    # nothing else changes
    for k, e in lever.entries.items():
        if e.null is None:
            assert nulled.entries[k].value == e.value, k
    assert lever.with_effects("default") is lever
    with pytest.raises(ScenarioError, match="allowed"):
        lever.with_effects("zero")


def test_with_scaled_scales_the_declared_value_and_every_timeline_value(
    historical: Scenario,
) -> None:
    key = "identification.child_referrals_per_year"
    scaled = historical.with_scaled({key: 1.1})
    assert scaled.entries[key].value == pytest.approx(historical.entries[key].value * 1.1)
    pairs = [
        (a.changes[key], b.changes[key])
        for a, b in zip(historical.timeline, scaled.timeline, strict=True)
        if key in a.changes
    ]
    assert len(pairs) > 5
    assert all(new == pytest.approx(old * 1.1) for old, new in pairs)
    with pytest.raises(ScenarioError, match="set by the timeline"):
        historical.with_values({key: 5000.0})
    with pytest.raises(ScenarioError, match="only numeric"):
        historical.with_scaled({"policy.hotels_in_use": 2.0})
