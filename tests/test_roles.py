"""Roles enforced (issue 16 item 4): a policy scenario changes levers, and says so when it
changes anything else.

A policy scenario is a file with a ``[[mechanism]]`` (or one extending such a file). It may set
``lever`` parameters and the timeline freely; setting an ``uncertain``, ``fixed`` or fitted
parameter is refused unless its ``[meta] changes_assumptions`` lists it, and the resolved
scenario and the comparison report then name it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from model.cli import main
from model.ledger import lever_rows, scenario_names
from model.params import SCHEMA
from model.report.evidence import changed_assumptions
from model.scenario import SCENARIO_DIR, ScenarioError, load_scenario

HISTORICAL = (SCENARIO_DIR / "historical.toml").resolve().as_posix()
NATIONAL_ICTG = (SCENARIO_DIR / "national_ictg.toml").resolve().as_posix()
MECHANISM = """
[[mechanism]]
name = "Test mechanism"
parameters = ["guardianship.ictg_coverage_share"]
"""


def write(
    tmp_path: Path,
    sets: str,
    *,
    meta: str = "",
    mechanism: bool = True,
    extends: str = HISTORICAL,
    name: str = "option",
) -> Path:
    """A scenario file extending ``extends`` with one timeline entry setting ``sets``."""
    path = tmp_path / f"{name}.toml"
    body = (
        f'[meta]\nname = "{name}"\nextends = "{extends}"\n{meta}\n'
        '[[timeline]]\ndate = 2025-04-01\nname = "option_entry"\nsource = "assumption"\n'
        f"set = {{ {sets} }}\n" + (MECHANISM if mechanism else "")
    )
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


CASELOAD = '"guardianship.ictg_direct_caseload" = 2875'
DECLARED = 'changes_assumptions = ["guardianship.ictg_direct_caseload"]'


def test_a_policy_scenario_setting_an_uncertain_parameter_is_refused(tmp_path: Path) -> None:
    """Catches no enforcement (the issue: national_ictg set an uncertain caseload unnoticed),
    and a message that does not name the file, the key, the role and the fix."""
    path = write(tmp_path, CASELOAD)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "timeline[0].set.guardianship.ictg_direct_caseload" in msg
    assert "role 'uncertain'" in msg
    assert 'changes_assumptions = ["guardianship.ictg_direct_caseload"]' in msg


def test_the_cli_refuses_it_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches the role error escaping as a traceback (exit 1) instead of bad input (2)."""
    path = write(tmp_path, CASELOAD)
    out = tmp_path / "out"
    code = main(["run", str(path), "--end", "2016-01-31", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "guardianship.ictg_direct_caseload" in err and "uncertain" in err
    assert "Traceback" not in err and not out.exists()


def test_a_fitted_parameter_is_named_as_fitted(tmp_path: Path) -> None:
    """Catches judging a calibrated value by its schema role only: the message must say the
    value is fitted, which is why changing it needs a declaration."""
    key = "cg_decision.capacity_multiplier"
    assert load_scenario("historical").entries[key].source.startswith("calibration:")
    with pytest.raises(ScenarioError, match=r"role 'fitted'.*fitted by calibration"):
        load_scenario(write(tmp_path, f'"{key}" = 1.5'))


def test_with_the_declaration_it_loads_and_the_resolved_scenario_says_so(tmp_path: Path) -> None:
    """Catches a declaration that silences the check but is not recorded (the manifest and the
    report read ``resolved()``), or records the wrong role or file."""
    path = write(tmp_path, CASELOAD, meta=DECLARED)
    sc = load_scenario(path)
    declared = sc.resolved()["changes_assumptions"]
    assert declared == {
        "guardianship.ictg_direct_caseload": {"role": "uncertain", "declared_in": str(path)}
    }
    base = load_scenario("historical").resolved()
    rows = changed_assumptions(sc.resolved(), base)
    assert [r["key"] for r in rows] == ["guardianship.ictg_direct_caseload"]


def test_lever_parameters_need_no_declaration(tmp_path: Path) -> None:
    """Catches enforcement that refuses levers too (every policy option would need a list)."""
    levers = '"guardianship.ictg_coverage_share" = 1.0, "policy.legal_aid_before_rg" = true'
    assert SCHEMA["guardianship.ictg_coverage_share"].role == "lever"
    sc = load_scenario(write(tmp_path, levers))
    assert sc.is_policy
    assert "changes_assumptions" not in sc.resolved()


def test_a_file_without_a_mechanism_may_set_assumptions(tmp_path: Path) -> None:
    """Catches treating every file that extends historical as a policy: the calibration gate's
    variants (tests/test_gate.py) and status_quo_2027_surge set assumptions on purpose."""
    sc = load_scenario(write(tmp_path, CASELOAD, mechanism=False))
    assert not sc.is_policy
    entry = next(t for t in sc.timeline if t.name == "option_entry")
    assert entry.changes["guardianship.ictg_direct_caseload"] == 2875


def test_a_file_extending_a_policy_is_a_policy_and_declares_its_own_changes(
    tmp_path: Path,
) -> None:
    """Catches checking only files with their own [[mechanism]] (a variant of national_ictg
    could then change the caseload again unnoticed) and inheriting the parent's declaration
    for a value this file sets itself."""
    path = write(
        tmp_path,
        '"guardianship.ictg_direct_caseload" = 4000',
        extends=NATIONAL_ICTG,
        mechanism=False,
    )
    with pytest.raises(ScenarioError, match="role 'uncertain'"):
        load_scenario(path)
    ok = write(
        tmp_path,
        '"guardianship.ictg_direct_caseload" = 4000',
        extends=NATIONAL_ICTG,
        mechanism=False,
        meta=DECLARED,
        name="ok",
    )
    assert load_scenario(ok).changes_assumptions["guardianship.ictg_direct_caseload"][
        "declared_in"
    ] == str(ok)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        (
            'changes_assumptions = ["policy.legal_aid_before_rg"]',
            ("is a lever", "needs no declaration"),
        ),
        ('changes_assumptions = ["care.capacity_foster"]', ("does not set it",)),
        ('changes_assumptions = ["guardianship.ictg_direct_casload"]', ("Did you mean",)),
        ('changes_assumptions = "guardianship.ictg_direct_caseload"', ("must be a list",)),
    ],
    ids=["lever", "not_set", "typo", "not_a_list"],
)
def test_a_wrong_declaration_is_refused(tmp_path: Path, meta: str, words: tuple[str, ...]) -> None:
    """Catches declarations that are accepted but mean nothing: a lever (needs none), a
    parameter the file does not set (the report would claim a change that is not there), a
    typo, a bare string."""
    sets = CASELOAD + ', "policy.legal_aid_before_rg" = true'
    with pytest.raises(ScenarioError, match=r"meta\.changes_assumptions") as err:
        load_scenario(write(tmp_path, sets, meta=meta))
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("name", scenario_names())
def test_every_shipped_scenario_loads(name: str) -> None:
    """Catches a shipped scenario left breaking the rule (national_ictg, ictg_all_separated,
    more_foster_places and no_hotels_or_unregulated needed declarations)."""
    sc = load_scenario(name)
    for key, item in sc.changes_assumptions.items():
        assert item["role"] != "lever", key


def test_the_shipped_declarations_are_the_ones_reviewed() -> None:
    """Catches a declaration added or dropped without review: each one says the option's
    result rests on a changed assumption."""
    declared = {n: sorted(load_scenario(n).changes_assumptions) for n in scenario_names()}
    assert {n: d for n, d in declared.items() if d} == {
        "ictg_all_separated": ["guardianship.ictg_direct_caseload"],
        "more_foster_places": ["care.capacity_foster", "care.type_16_17"],
        "national_ictg": ["guardianship.ictg_direct_caseload"],
        "no_hotels_or_unregulated": ["ima.p_home_office_accommodation"],
    }


def test_the_comparison_report_names_the_changed_assumption(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches a declaration recorded in ``resolved()`` but not shown to the reader of the
    report, and the line shown for an option that changes only levers."""
    baseline = (SCENARIO_DIR / "baseline.toml").resolve().as_posix()
    run = "[run]\nstart = 2024-01-01\nend = 2024-03-31\n[params.identification]\n"
    small = 'child_referrals_per_year = { value = 500, source = "ho-nrm-eoy-2023" }\n'
    a = tmp_path / "a.toml"
    a.write_text(f'[meta]\nname = "a"\nextends = "{baseline}"\n{run}{small}', encoding="utf-8")
    b = write(tmp_path, CASELOAD, meta=DECLARED, extends=a.as_posix(), name="b")
    c = write(tmp_path, '"guardianship.ictg_coverage_share" = 1.0', extends=a.as_posix(), name="c")
    for path in (b, c):  # the entry must fall inside the short run
        path.write_text(path.read_text().replace("2025-04-01", "2024-02-01"), encoding="utf-8")
    out = tmp_path / "out"
    args = ["compare", str(b), str(c), str(a), "--baseline", "a", "--reps", "1"]
    assert main([*args, "--out", str(out), "--quiet", "--ensemble", "none"]) == 0
    capsys.readouterr()
    html = (out / "report.html").read_text(encoding="utf-8")
    option_b = html.split("<h3>b</h3>")[1].split("<h3>")[0]
    option_c = html.split("<h3>c</h3>")[1].split("<h3>")[0]
    assert "Changes assumptions, not only levers" in option_b
    assert "guardianship.ictg_direct_caseload</code> (uncertain)" in option_b
    assert "Changes assumptions" not in option_c


def test_each_lever_parameter_names_the_scenarios_that_use_it() -> None:
    """Catches a lever missing from the page, a lever scenario's use not listed (set on its
    timeline, or listed only in a [[mechanism]]), and a non-policy file counted as a user."""
    levers = {r.key: r for r in lever_rows()}
    assert set(levers) == {k for k, f in SCHEMA.items() if f.role == "lever"}
    assert levers["guardianship.ictg_coverage_share"].used_by == (
        "ictg_all_separated",
        "national_ictg",
    )
    assert "status_quo_backlog_plan" in levers["cg_decision.added_capacity_share"].used_by
    assert "historical" not in levers["policy.decision_regime"].used_by
    assert "historical" in levers["policy.decision_regime"].also_set_by
    page = (SCENARIO_DIR.parent / "docs" / "assumptions.md").read_text(encoding="utf-8")
    assert "| `policy.legal_aid_before_rg` | flag | false | `legal_aid` |" in page
    assert "| `national_ictg` | `guardianship.ictg_direct_caseload` | uncertain |" in page
