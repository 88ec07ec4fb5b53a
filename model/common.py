"""Small helpers that several modules share, defined once (issue 16 item 3).

Standard library only, so that any module (``results`` analyses saved logs without the
engine) may import it:

* units and categories: ``DAYS_PER_YEAR``, ``PLACEMENT_TYPES``;
* odds: ``logit``, ``expit``, ``odds``, ``prob_from_odds``;
* reading input files: ``ScenarioError``, ``suggest``, ``read_toml``, ``check_keys``,
  ``toml_date`` (a TOML date value) and ``parse_date`` (a ``YYYY-MM-DD`` string);
* ``InputError``: a value given to a command or a library function is wrong;
* the keyword checks of the use cases called from Python (``check_run_keywords``,
  ``as_date``) and ``describe_call``, the manifest's ``command`` for such a call.

The old homes keep these names importable (``model.calendar.DAYS_PER_YEAR``,
``model.params.PLACEMENT_TYPES``, ``model.stages.rg_decision.logit``,
``model.scenario.ScenarioError`` and ``_read_toml``, ``model.cli.InputError``, ...).
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

DAYS_PER_YEAR = 365.25  # mean Julian year: rates per year <-> days
PLACEMENT_TYPES = ("foster", "childrens_home", "supported_accommodation", "secure", "hotel")
MAX_REPLICATES = 100_000  # replicates of one scenario (a list of runs held in memory)
EFFECTS = ("default", "null")  # assumed effect sizes as declared, or all at their nulls
SHAPES = ("long", "wide")  # a results table's shapes (``model.tables``)


# --------------------------------------------------------------------------- odds
def logit(p: float) -> float:
    """Log odds of ``p``, clamped to [1e-9, 1 - 1e-9] so 0 and 1 stay finite."""
    p = min(max(p, 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))


def expit(x: float) -> float:
    """Inverse of :func:`logit`."""
    return 1.0 / (1.0 + math.exp(-x))


def odds(p: float) -> float:
    """``p / (1 - p)``, unclamped (the caller keeps ``p`` below 1)."""
    return p / (1.0 - p)


def prob_from_odds(o: float) -> float:
    """Inverse of :func:`odds`."""
    return o / (1.0 + o)


# --------------------------------------------------------------------------- input files
class ScenarioError(ValueError):
    """A scenario, source or target file is wrong. The message names file, key and fix."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = str(file), key, problem
        super().__init__(f"{file}: {key}: {problem}")


class InputError(ValueError):
    """A value given to a command or a library function is wrong (``nrmsim`` exits with code
    2); the message names the option and what is allowed."""


def suggest(word: str, options: Iterable[str]) -> str:
    """Return ' Did you mean X?' for a close match, else ''."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; every failure is a :class:`ScenarioError` naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(path, "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "-", f"malformed TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, "-", f"not UTF-8 text: {exc}") from None
    except IsADirectoryError:
        raise ScenarioError(
            path, "-", "is a folder; give a scenario name or a .toml file"
        ) from None
    except OSError as exc:
        raise ScenarioError(path, "-", f"cannot read: {exc.strerror}") from None


def check_keys(path: Path, where: str, got: Any, allowed: set[str]) -> None:
    """``got`` must be a table whose keys are all in ``allowed`` (else the error names the
    key, the allowed keys and a close match)."""
    if not isinstance(got, dict):
        raise ScenarioError(path, where or "-", f"value {got!r} must be a table")
    for key in got:
        if key not in allowed:
            raise ScenarioError(
                path,
                f"{where}.{key}" if where else key,
                f"unknown key; allowed: {sorted(allowed)}." + suggest(key, allowed),
            )


def toml_date(path: Path | str, where: str, value: Any, example: str = "2023-01-01") -> dt.date:
    """A TOML date (not a date-time, string or number), else a :class:`ScenarioError`."""
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ScenarioError(path, where, f"value {value!r} must be a TOML date like {example}")
    return value


def parse_date(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` string, else ``ValueError`` saying so."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a date; use YYYY-MM-DD") from None


# --------------------------------------------------------------------------- keywords
def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_run_keywords(
    *, reps: Any, seed: Any, workers: Any, effects: Any, shape: Any = "long"
) -> None:
    """The checks ``nrmsim``'s option parser makes on ``--reps``, ``--seed``, ``--workers``,
    ``--effects`` and ``--table-shape``, for a use case called from Python (``run_folder``,
    ``run_comparison``).

    Raises:
        InputError: a value the parser would refuse, naming the keyword and what is allowed.
    """
    if reps is not None and not (_whole(reps) and 1 <= reps <= MAX_REPLICATES):
        raise InputError(f"reps {reps!r}: allowed: a whole number from 1 to {MAX_REPLICATES:,}")
    if seed is not None and not (_whole(seed) and seed >= 0):
        raise InputError(f"seed {seed!r}: allowed: a whole number, 0 or more")
    if not (_whole(workers) and workers >= 1):
        raise InputError(f"workers {workers!r}: allowed: a whole number, 1 or more")
    if effects not in EFFECTS:
        raise InputError(f"effects {effects!r} is not allowed; allowed: {list(EFFECTS)}")
    if shape not in SHAPES:
        raise InputError(f"table_shape {shape!r} is not allowed; allowed: {list(SHAPES)}")


def as_date(key: str, value: dt.date | str | None) -> dt.date | None:
    """A date given as a date or a ``YYYY-MM-DD`` string (None stays None).

    Raises:
        InputError: anything else, naming ``key``.
    """
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, str):
        try:
            return parse_date(value)
        except ValueError as exc:
            raise InputError(f"{key}: {exc}") from None
    raise InputError(f"{key} {value!r}: allowed: a date or a YYYY-MM-DD string")


def describe_call(
    function: str, labels: Sequence[str], given: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[str]:
    """The manifest's ``command`` for a use case called from Python: the function's dotted
    name, its positional arguments (``labels``) and the keywords of ``given`` that differ
    from ``defaults`` (``reps=4``, ``ensemble=none``), in the order of ``defaults``."""
    keywords = [f"{k}={given[k]}" for k, v in defaults.items() if given[k] != v]
    return [function, *labels, *keywords]
