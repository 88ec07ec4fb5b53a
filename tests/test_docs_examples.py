"""The scenario files written out in the user guide load, and follow the rules for levers.

A newcomer copies these files to write a policy option of their own; an example that no longer
loads (a parameter renamed, a role changed, a rule added to the loader) would teach them the
wrong format. Each example starts with a comment naming its file (``# my_levers/NAME.toml``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model.scenario import load_scenario

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide"
BLOCK = re.compile(r"```toml\n# (my_levers/(?P<name>\w+)\.toml)\n(?P<body>.*?)```", re.S)
EXAMPLES = [
    pytest.param(page.name, m["name"], m["body"], id=f"{page.stem}:{m['name']}")
    for page in sorted(GUIDE.glob("*.md"))
    for m in BLOCK.finditer(page.read_text(encoding="utf-8"))
]


def test_the_guide_has_lever_examples() -> None:
    # wrong state: the pattern above no longer matches the examples, so nothing is checked
    names = {param.values[1] for param in EXAMPLES}
    assert {"faster_rg_decisions", "ictg_referral_drive"} <= names


@pytest.mark.parametrize(("page", "name", "body"), EXAMPLES)
def test_a_lever_example_loads_as_a_policy_scenario(
    tmp_path: Path, page: str, name: str, body: str
) -> None:
    # wrong state: an example that fails to load, one without a [[mechanism]] (it would load
    # whatever it changes, so it would not show the rule), or one with no mechanism for the
    # children already in the system
    path = tmp_path / f"{name}.toml"
    path.write_text(body, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == name, f"{page}: [meta] name differs from the file name"
    assert scenario.is_policy, f"{page}: the example has no [[mechanism]]"
    own = [m for m in scenario.mechanisms if m["declared_in"] == str(path)]
    assert any("already" in m["name"].lower() for m in own), f"{page}: no mechanism for open cases"
