"""Replaceable decision rules: the extension point for changing one behaviour from Python.

A decision rule is a plain function that a stage calls at one decision. The package's own rule
is a named, importable function; a caller may run a scenario with a replacement without
editing the package::

    from model import run_scenario
    from model.stages.rg_decision import RGContext

    def stricter(ctx: RGContext) -> bool:
        return ctx.u < 0.8 * ctx.p_positive

    runs = run_scenario("status_quo_2027", reps=4, rules={"rg_decision": stricter})

Rules that can be replaced (``RULES``):

* ``"rg_decision"``: whether a Reasonable Grounds decision is positive. It receives a
  ``model.stages.rg_decision.RGContext`` (the child, the decision day and date, the route, the
  evidence regime, the parameters in force, the package's probability of a positive decision
  and the child's own uniform for this decision) and returns ``True`` or ``False``. Default:
  ``model.stages.rg_decision.default_rg_decision``.

Rules are code, so they are reachable only from the library API (``NRMModel(..., rules=...)``,
``model.runner.RunSpec.rules``, ``model.run_scenario(..., rules=...)``), never from a scenario
file, which is data. A run with a rule other than the default is marked: its summary table
gets a ``rules`` column naming the rule (``describe``), and ``describe`` gives the entry to put
in a manifest.

Reproducibility: a rule gets the uniform the default rule would use, from the child's own
stream, so the same seed gives the same result, and a scenario run with and without a
replacement is compared with common random numbers. A rule must not draw from any other
random source (a global ``random`` or an unseeded generator would break both).

Worker processes: a rule travels to a worker by reference (module and name), so it must be a
module-level function in an importable module. A function defined in a notebook or in a
script's ``__main__``, a lambda or a nested function runs only with ``workers=1``
(``check_for_workers`` says so before any run starts); to use workers, put the function in a
``.py`` file beside the notebook and import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Rule = Callable[[Any], Any]


class RuleError(TypeError):
    """A replacement rule is unknown, not callable, unusable in workers, or returned a value
    of the wrong type."""


def defaults() -> dict[str, Rule]:
    """The package's rule for each replaceable decision."""
    from model.stages.rg_decision import default_rg_decision

    return {"rg_decision": default_rg_decision}


RULES = ("rg_decision",)


def qualified_name(rule: Rule) -> str:
    """``module.qualname`` of a rule (what the manifest and the summary record)."""
    module = getattr(rule, "__module__", None) or "?"
    name = getattr(rule, "__qualname__", None) or type(rule).__qualname__
    return f"{module}.{name}"


def resolve(rules: Mapping[str, Rule] | None) -> dict[str, Rule]:
    """Check a mapping of replacements: known names, callable values.

    Raises:
        RuleError: a name is not in ``RULES`` or a value is not callable.
    """
    out: dict[str, Rule] = {}
    for name, rule in (rules or {}).items():
        if name not in RULES:
            raise RuleError(f"no replaceable rule {name!r}; replaceable rules: {list(RULES)}")
        if not callable(rule):
            raise RuleError(
                f"rule {name!r} must be a function taking one context argument, "
                f"got {type(rule).__name__}"
            )
        out[name] = rule
    return out


def is_custom(rules: Mapping[str, Rule] | None) -> bool:
    """True if any rule differs from the package's default."""
    base = defaults()
    return any(rule is not base[name] for name, rule in resolve(rules).items())


def describe(rules: Mapping[str, Rule] | None) -> dict[str, str]:
    """The replacements that differ from the defaults, as ``{name: "module.qualname"}``: what
    a manifest records under ``"custom_rules"`` (empty for a run with the package's rules)."""
    base = defaults()
    return {
        name: qualified_name(rule)
        for name, rule in sorted(resolve(rules).items())
        if rule is not base[name]
    }


def label(rules: Mapping[str, Rule] | None) -> str:
    """One string for the summary's ``rules`` column, e.g. ``rg_decision=mymodule.stricter``."""
    return ";".join(f"{name}={where}" for name, where in describe(rules).items())


def check_for_workers(rules: Mapping[str, Rule] | None) -> None:
    """Raise before any run starts if a rule cannot be sent to a worker process.

    Raises:
        RuleError: a rule is a lambda, a nested function, or defined in ``__main__`` (a
            notebook or a script), none of which a worker can import.
    """
    for name, rule in resolve(rules).items():
        module = getattr(rule, "__module__", None)
        qualname = getattr(rule, "__qualname__", "")
        if module in (None, "__main__") or "<" in qualname:
            raise RuleError(
                f"rule {name!r} ({qualified_name(rule)}) cannot be sent to worker processes: "
                "a lambda, a nested function or a function defined in a notebook or script is "
                "not importable by a worker. Run with workers=1, or define the function at "
                "module level in a .py file and import it."
            )


def check_decision(name: str, rule: Rule, value: Any) -> bool:
    """The decision a rule returned, as a bool.

    Raises:
        RuleError: the value is not a bool (numpy bools are accepted).
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise RuleError(
        f"rule {name!r} ({qualified_name(rule)}) returned {value!r} "
        f"({type(value).__name__}); it must return True or False"
    )
