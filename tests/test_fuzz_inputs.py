"""Fuzzed input files and options (issue 18, item 3): every generated scenario, experiment and
targets file either loads into something usable or ends in the project's own error
(``ScenarioError``: exit code 2 in the CLI) naming the file, the key and what is allowed;
never a raw Python exception from deep inside, never a file written.

Cases are valid files with one generated mutation: a value replaced by a value of another type
or an extreme one (NaN, infinities, 1e308, 5e-324, 2**63 - 1, negatives, unicode, dates and
date-times, lists, tables), a key removed, an unknown key close to a real one, duplicate keys,
deep or cyclic ``extends`` chains. The bulk calls the loaders in-process; a handful go through
the CLI in a subprocess (exit 2, the message, nothing written).

Default run: about 200 generated cases. ``-m scale``: the same properties at over 1,000.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import math
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from model.calibration import TARGETS_FILE, load_targets
from model.cli import main
from model.scenario import MAX_EXTENDS, SCENARIO_DIR, ScenarioError, load_scenario
from model.sweeps.design import make_design
from model.sweeps.spec import load_experiment

BASELINE = (SCENARIO_DIR / "baseline.toml").resolve().as_posix()
ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count()

# words by which a message says what is expected (the allowed values, the form, the fix)
GUIDANCE = ("allowed", "must", "missing", "Did you mean", "needs", "write ", "give ", "malformed",
            "not valid TOML", "not UTF-8", "circular", "no such", "unknown", "does not exist",
            "outside", "no scenario named", "not in scenarios/sources.toml", "repeat", "twice",
            "only", "duplicate", "not found")  # fmt: skip


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )


# --------------------------------------------------------------------------- TOML writer
def toml_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def toml_value(v: Any) -> str:
    """A value as TOML text (inline tables and arrays), including nan, inf and date-times."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_doc(doc: dict[str, Any]) -> str:
    """Top-level keys as ``key = <inline value>`` lines (valid TOML for any nesting)."""
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items())


def write(folder: Path, text: str | bytes, stem: str = "case") -> Path:
    path = folder / f"{stem}-{next(_counter)}.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- strategies
UNICODE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63), 2**31, 2**32]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 0.5, 1.5]),
    UNICODE,
    st.booleans(),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.sampled_from([dt.date(2023, 12, 31), dt.date(2024, 1, 1), dt.date(2024, 2, 29)]),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
)
JUNK = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(UNICODE, SCALARS, max_size=3),
    st.just([]),
    st.just({}),
)


def paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list index in a parsed document, outermost first."""
    out: list[tuple[Any, ...]] = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for k, v in items:
        out.append((*prefix, k))
        if isinstance(v, dict | list):
            out.extend(paths(v, (*prefix, k)))
    return out


def mutate(doc: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """One generated change: replace a value, delete a key or item, or add a junk key."""
    doc = copy.deepcopy(doc)
    where = data.draw(st.sampled_from(paths(doc)), label="path")
    parent = doc
    for k in where[:-1]:
        parent = parent[k]
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]), label="op")
    if op == "replace":
        parent[where[-1]] = data.draw(JUNK, label="value")
    elif op == "delete":
        del parent[where[-1]]
    else:
        target = parent[where[-1]]
        if isinstance(target, dict):
            target[data.draw(UNICODE, label="new key")] = data.draw(JUNK, label="value")
        elif isinstance(target, list):
            target.append(data.draw(JUNK, label="item"))
        else:
            parent[where[-1]] = data.draw(JUNK, label="value")
    return doc


def typo(word: str, data: st.DataObject) -> str:
    """A close misspelling: two letters swapped, one dropped or one doubled."""
    i = data.draw(st.integers(0, len(word) - 1), label="position")
    how = data.draw(st.sampled_from(["swap", "drop", "double"]), label="typo")
    if how == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if how == "drop" and len(word) > 2:
        return word[:i] + word[i + 1 :]
    return word[: i + 1] + word[i] + word[i + 1 :]


# --------------------------------------------------------------------------- base documents
def base_scenario() -> dict[str, Any]:
    """A valid scenario: extends the baseline, a short run, an override, two timeline entries
    (out of date order), a mechanism. With a mechanism it is a policy scenario, so the
    override of an uncertain parameter is declared (issue 16: roles enforced)."""
    return {
        "meta": {
            "name": "fuzz",
            "description": "fuzz case",
            "extends": BASELINE,
            "changes_assumptions": ["identification.child_referrals_per_year"],
        },
        "run": {"start": dt.date(2024, 1, 1), "end": dt.date(2024, 3, 31), "replicates": 2},
        "params": {
            "identification": {
                "child_referrals_per_year": {
                    "value": 700,
                    "source": "assumption",
                    "range": [400, 1000],
                    "note": "fuzz",
                }
            }
        },
        "timeline": [
            {
                "date": dt.date(2024, 3, 1),
                "name": "later",
                "source": "nba-2022-s60",
                "set": {"policy.decision_regime": "pre_nba"},
            },
            {
                "date": dt.date(2024, 2, 1),
                "name": "earlier",
                "source": "assumption",
                "set": {"identification.child_referrals_per_year": 800},
            },
        ],
        "mechanism": [
            {"name": "volume", "parameters": ["identification.child_referrals_per_year"]}
        ],
    }


def base_experiment(scenario: Path) -> dict[str, Any]:
    return {
        "experiment": {
            "name": "fuzz",
            "scenario": scenario.as_posix(),
            "method": "sobol",
            "samples": 2,
            "replicates": 2,
            "root_seed": 7,
            "end": dt.date(2024, 1, 31),
            "outputs": [{"metric": "referrals", "year": 2024}],
        },
        "factor": [
            {"param": "identification.child_referrals_per_year", "low": 500, "high": 900},
            {"param": "rg_decision.mean_work_days", "scale": [0.8, 1.2]},
            {"param": "rg_decision.p_positive_nba", "distribution": "uniform"},
        ],
    }


def base_targets() -> dict[str, Any]:
    """Three real targets: a flow, a flow with a denominator, a cohort stock."""
    real = tomllib.loads(TARGETS_FILE.read_text(encoding="utf-8"))["target"]
    flow = next(t for t in real if t["kind"] == "flow" and "denominator" not in t)
    ratio = next(t for t in real if "denominator" in t)
    stock = next(t for t in real if t.get("view") == "cohort_awaiting_share")
    return {"target": [flow, ratio, stock]}


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def tiny_scenario(fuzz_dir: Path) -> Path:
    path = fuzz_dir / "tiny.toml"
    path.write_text(toml_doc({k: v for k, v in base_scenario().items() if k != "timeline"}))
    load_scenario(path)  # the base must be valid, else every case tests nothing
    return path


# --------------------------------------------------------------------------- the property
def assert_clear(exc: ScenarioError, files: set[Path], text: str) -> None:
    """The error names a file we gave (or the file it extends), a key, and what is expected."""
    named = Path(exc.file).resolve()
    assert named in {f.resolve() for f in files} | {Path(BASELINE)}, (exc.file, text)
    assert exc.key.strip(), f"no key named: {exc}\n{text}"
    assert str(exc).startswith(f"{exc.file}: {exc.key}: "), exc
    assert any(w in exc.problem for w in GUIDANCE), f"says nothing about the fix: {exc}\n{text}"


def load_or_clear_error(
    load: Callable[[Path], Any], path: Path, files: set[Path], text: str
) -> Any:
    """Load; a ScenarioError must be clear; any other exception fails the case."""
    try:
        return load(path)
    except ScenarioError as exc:
        assert_clear(exc, files, text)
        return None
    except Exception as exc:  # the bug this file looks for
        pytest.fail(f"raw {type(exc).__name__} escaped the loader: {exc!r}\ninput:\n{text}")


def check_scenario_case(folder: Path, doc: dict[str, Any]) -> None:
    text = toml_doc(doc)
    path = write(folder, text, "scenario")
    scenario = load_or_clear_error(load_scenario, path, {path}, text)
    if scenario is not None:  # accepted: then it must be usable and hold only finite numbers
        scenario.initial_params()
        json.dumps(scenario.resolved(), allow_nan=False)
        assert scenario.start <= scenario.end
        assert all(scenario.sim_start < t.date for t in scenario.future_timeline())


def check_experiment_case(folder: Path, doc: dict[str, Any]) -> None:
    text = toml_doc(doc)
    path = write(folder, text, "experiment")
    exp = load_or_clear_error(load_experiment, path, {path}, text)
    if exp is not None:
        json.dumps(exp.canonical(), allow_nan=False)
        assert all(math.isfinite(f.low) and math.isfinite(f.high) for f in exp.factors)
        n = len(exp.factors)
        if exp.method != "grid" and exp.samples * (2 * n + 2) <= 5_000:
            design = make_design(exp)
            assert design.frame.notna().all(axis=None) and len(design.frame) > 0


def check_targets_case(folder: Path, doc: dict[str, Any]) -> None:
    text = toml_doc(doc)
    path = write(folder, text, "targets")
    targets = load_or_clear_error(load_targets, path, {path}, text)
    if targets is not None:
        for t in targets:
            assert math.isfinite(t.value) and 0 < t.tolerance_value < math.inf, t
            assert type(t.start) is dt.date and type(t.end) is dt.date and t.start <= t.end, t


# --------------------------------------------------------------------------- fuzz tests
def _scenario_mutations(fuzz_dir: Path, data: st.DataObject) -> None:
    check_scenario_case(fuzz_dir, mutate(base_scenario(), data))


def _experiment_mutations(fuzz_dir: Path, tiny: Path, data: st.DataObject) -> None:
    check_experiment_case(fuzz_dir, mutate(base_experiment(tiny), data))


def _targets_mutations(fuzz_dir: Path, data: st.DataObject) -> None:
    check_targets_case(fuzz_dir, mutate(base_targets(), data))


@fuzz_settings(50)
@given(data=st.data())
def test_fuzzed_scenario_files_load_or_fail_clearly(fuzz_dir: Path, data: st.DataObject) -> None:
    """Catches: a loader that lets a raw TypeError/KeyError/AttributeError out (e.g. ``allowed
    = 5`` made ``tuple(5)`` raise), accepts a value the engine cannot use (a number as
    [meta].name, NaN anywhere), or an error that names no key or no fix."""
    _scenario_mutations(fuzz_dir, data)


@fuzz_settings(35)
@given(data=st.data())
def test_fuzzed_experiment_files_load_or_fail_clearly(
    fuzz_dir: Path, tiny_scenario: Path, data: st.DataObject
) -> None:
    """Catches: a spec accepted with a factor range whose scaled values overflow to inf (the
    sweep then wrote design.parquet and manifest.json before failing), a sample size or
    replicate count that exhausts memory in the sampler, or a raw exception."""
    _experiment_mutations(fuzz_dir, tiny_scenario, data)


@fuzz_settings(35)
@given(data=st.data())
def test_fuzzed_targets_files_load_or_fail_clearly(fuzz_dir: Path, data: st.DataObject) -> None:
    """Catches: a NaN or infinite tolerance accepted (every comparison then passes or fails
    silently), a date-time compared with a date (raw TypeError), a list as `view` (unhashable)."""
    _targets_mutations(fuzz_dir, data)


@pytest.mark.scale
@fuzz_settings(400)
@given(data=st.data())
def test_scale_fuzzed_scenario_files(fuzz_dir: Path, data: st.DataObject) -> None:
    """As the default scenario fuzz test, with 400 cases."""
    _scenario_mutations(fuzz_dir, data)


@pytest.mark.scale
@fuzz_settings(300)
@given(data=st.data())
def test_scale_fuzzed_experiment_files(
    fuzz_dir: Path, tiny_scenario: Path, data: st.DataObject
) -> None:
    """As the default experiment fuzz test, with 300 cases."""
    _experiment_mutations(fuzz_dir, tiny_scenario, data)


@pytest.mark.scale
@fuzz_settings(300)
@given(data=st.data())
def test_scale_fuzzed_targets_files(fuzz_dir: Path, data: st.DataObject) -> None:
    """As the default targets fuzz test, with 300 cases."""
    _targets_mutations(fuzz_dir, data)


EXTREMES = (math.nan, math.inf, -math.inf, 1e308, 5e-324, -1)  # default run
MORE_EXTREMES = (-1e308, 2**63 - 1, -(2**63), 0)  # -m scale


def numeric_leaves(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    def leaf(p: tuple[Any, ...]) -> Any:
        node: Any = doc
        for k in p:
            node = node[k]
        return node

    return [p for p in paths(doc) if type(leaf(p)) in (int, float)]


def _extreme_cases(extremes: tuple[float, ...]) -> list[tuple[str, tuple[Any, ...], float]]:
    docs = {"scenario": base_scenario(), "experiment": base_experiment(Path("tiny.toml")),
            "targets": base_targets()}  # fmt: skip
    return [(kind, p, x) for kind, doc in docs.items() for p in numeric_leaves(doc)
            for x in extremes]  # fmt: skip


@pytest.mark.parametrize(
    "kind,where,value",
    [
        *_extreme_cases(EXTREMES),
        *(pytest.param(*c, marks=pytest.mark.scale) for c in _extreme_cases(MORE_EXTREMES)),
    ],
    ids=lambda x: str(x),
)
def test_extreme_numbers_in_every_numeric_field(
    kind: str, where: tuple[Any, ...], value: float, fuzz_dir: Path, tiny_scenario: Path
) -> None:
    """Every number in the three files replaced in turn by NaN, +-inf, +-1e308, 5e-324,
    +-2**63 and 0/-1. Catches: a NaN tolerance accepted in targets (``nan <= 0`` is False),
    a factor scale of 1e308 accepted (scaled values overflow to inf, found only when a
    sweep had already written its folder), any raw exception."""
    doc = {"scenario": base_scenario(), "experiment": base_experiment(tiny_scenario),
           "targets": base_targets()}[kind]  # fmt: skip
    node: Any = doc
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    check = {"scenario": check_scenario_case, "experiment": check_experiment_case,
             "targets": check_targets_case}[kind]  # fmt: skip
    check(fuzz_dir, doc)


# unknown keys close to real ones: (document, path of a key-checked table) per file kind
def _key_checked_tables(kind: str, tiny: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    if kind == "scenario":
        return base_scenario(), [
            (),
            ("meta",),
            ("run",),
            ("params", "identification", "child_referrals_per_year"),
            ("timeline", 0),
            ("mechanism", 0),
        ]
    if kind == "experiment":
        return base_experiment(tiny), [(), ("experiment",), ("factor", 0), ("factor", 1)]
    return base_targets(), [("target", 0), ("target", 1), ("target", 1, "denominator")]


@fuzz_settings(20)
@given(data=st.data(), kind=st.sampled_from(["scenario", "experiment", "targets"]))
def test_unknown_key_close_to_a_real_one_is_named_with_the_match(
    fuzz_dir: Path, tiny_scenario: Path, data: st.DataObject, kind: str
) -> None:
    """Catches: a misspelt key silently ignored (it would leave the default in force; the
    targets' denominator table ignored unknown keys before this file), or an error without the
    close match."""
    doc, tables = _key_checked_tables(kind, tiny_scenario)
    where = data.draw(st.sampled_from(tables), label="table")
    table = doc
    for k in where:
        table = table[k]
    real = data.draw(st.sampled_from(sorted(table)), label="key")
    allowed = {
        "scenario": {"meta", "run", "params", "timeline", "mechanism", "name", "description",
                     "extends", "changes_assumptions", "start", "end", "seed", "replicates",
                     "warmup_start", "value", "unit", "source", "locator", "note", "range",
                     "calibrate", "allowed", "null", "null_ruled_out_by", "date", "set",
                     "enabled", "parameters"},
    }.get(kind, set())  # fmt: skip
    bad = typo(real, data)
    assume(bad not in table and bad not in allowed and bad.strip())
    table[bad] = table[real]
    text = toml_doc(doc)
    path = write(fuzz_dir, text, kind)
    load = {"scenario": load_scenario, "experiment": load_experiment, "targets": load_targets}
    with pytest.raises(ScenarioError) as info:
        load[kind](path)
    assert bad in info.value.key, (info.value, text)
    assert "Did you mean '" in info.value.problem, info.value


@pytest.mark.parametrize("kind", ["scenario", "experiment", "targets"])
def test_duplicate_keys_are_a_clean_parse_error(
    kind: str, fuzz_dir: Path, tiny_scenario: Path
) -> None:
    """Catches: a TOML parse error (a key given twice) escaping as tomllib.TOMLDecodeError, or
    a reader that keeps the last value silently."""
    docs = {"scenario": base_scenario(), "experiment": base_experiment(tiny_scenario),
            "targets": base_targets()}  # fmt: skip
    text = toml_doc(docs[kind])
    first = text.splitlines()[0]
    path = write(fuzz_dir, text + first + "\n", kind)
    load = {"scenario": load_scenario, "experiment": load_experiment, "targets": load_targets}
    with pytest.raises(ScenarioError) as info:
        load[kind](path)
    assert info.value.file == str(path)
    assert "TOML" in info.value.problem and "line" in info.value.problem, info.value


@pytest.mark.parametrize("kind", ["scenario", "experiment", "targets"])
def test_bytes_that_are_not_utf8_are_a_clean_error(
    kind: str, fuzz_dir: Path, tiny_scenario: Path
) -> None:
    """Catches: UnicodeDecodeError escaping from read_text (the experiment loader did)."""
    path = write(fuzz_dir, b'name = "caf\xe9"\n', kind)
    load = {"scenario": load_scenario, "experiment": load_experiment, "targets": load_targets}
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load[kind](path)


@fuzz_settings(10)
@given(n=st.integers(1, 6), data=st.data())
def test_cyclic_extends_of_any_length_is_named(fuzz_dir: Path, n: int, data: st.DataObject) -> None:
    """Catches: infinite recursion (RecursionError) on an extends cycle of any length, or a
    cycle reported without its files."""
    stems = [f"cycle{next(_counter)}" for _ in range(n)]
    for i, stem in enumerate(stems):
        parent = (fuzz_dir / f"{stems[(i + 1) % n]}.toml").as_posix()
        (fuzz_dir / f"{stem}.toml").write_text(f'[meta]\nname = "{stem}"\nextends = "{parent}"\n')
    start = data.draw(st.sampled_from(stems))
    with pytest.raises(ScenarioError) as info:
        load_scenario(fuzz_dir / f"{start}.toml")
    assert info.value.key == "meta.extends" and "circular" in info.value.problem
    assert f"{start}.toml" in str(info.value)


def test_deep_extends_chain_is_refused_beyond_the_limit_not_a_recursion_error(
    fuzz_dir: Path,
) -> None:
    """Catches: a chain of 1,200 files (each extending the next) raising RecursionError (it
    did), and a limit so low that a chain of MAX_EXTENDS files is refused."""
    prev = BASELINE
    chain = []
    for i in range(1200):
        path = fuzz_dir / f"deep{i}.toml"
        path.write_text(f'[meta]\nname = "deep{i}"\nextends = "{prev}"\n')
        prev = path.as_posix()
        chain.append(path)
    assert load_scenario(chain[MAX_EXTENDS - 2]).name == f"deep{MAX_EXTENDS - 2}"
    with pytest.raises(ScenarioError) as info:
        load_scenario(chain[-1])
    assert info.value.key == "meta.extends" and f"at most {MAX_EXTENDS}" in info.value.problem
    assert info.value.file == str(chain[-1])


# --------------------------------------------------------------------------- CLI options
NUMERIC = {
    "run": ("--reps", "--workers", "--seed"),
    "compare": ("--reps", "--workers", "--seed"),
    "sweep": ("--size", "--workers", "--chunk-size"),
    "calibrate": ("--budget", "--rounds", "--reps", "--workers", "--optimiser-seed",
                  "--ensemble-size", "--ensemble-budget"),
}  # fmt: skip
BAD_NUMBERS = st.one_of(
    st.integers(max_value=-1).map(str),
    st.just("0"),
    st.sampled_from(["1.5", "nan", "inf", "-inf", "1e3", "", " ", "two", "0x10", "\u0661\u0662x"]),
    st.integers(min_value=10**7, max_value=10**40).map(str),
    UNICODE.filter(lambda s: not s.strip().lstrip("-").isdigit()),
)


def _positional(command: str, tiny: Path) -> list[str]:
    return {
        "run": [str(tiny)],
        "compare": [str(tiny), str(tiny)],
        "sweep": [str(ROOT / "experiments" / "ci" / "sobol_small.toml")],
        "calibrate": [],
    }[command]


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@fuzz_settings(25)
@given(command=st.sampled_from(sorted(NUMERIC)), data=st.data(), value=BAD_NUMBERS)
def test_numeric_options_refuse_zero_negative_non_numbers_and_huge(
    command: str,
    data: st.DataObject,
    value: str,
    tiny_scenario: Path,
    fuzz_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Catches: an option that accepts 0, a negative, a non-number or a huge count (--reps
    10**30 built a list of that many runs; --workers 10**9 started a cluster of that size;
    --optimiser-seed 2**32 reached Optuna's RandomState and raised there)."""
    option = data.draw(st.sampled_from(NUMERIC[command]), label="option")
    if option in ("--seed",):  # any whole number >= 0 is a valid root seed
        assume(not value.strip().isdigit())
    if option == "--optimiser-seed":
        assume(not (value.strip().isdigit() and int(value) < 2**32))
    out = fuzz_dir / f"out-{next(_counter)}"
    # calibrate writes under calibration/: a missing targets file stops it before any write
    # should an option wrongly pass
    missing = fuzz_dir / "no-such-targets.toml"
    extra = ["--out", str(out)] if command != "calibrate" else ["--dry-run", "--targets", missing]
    code, err = run_main([command, *_positional(command, tiny_scenario), f"{option}={value}",
                          *map(str, extra)], capsys)  # fmt: skip
    assert code == 2, err
    assert "Traceback" not in err and option in err, err
    assert any(w in err for w in ("at least", "whole number", "allowed", "too large")), err
    assert not out.exists()


@pytest.mark.parametrize("value", ["2024-02-30", "2024-13-01", "tomorrow", "", "20240101x"])
@pytest.mark.parametrize("command", ["run", "compare"])
def test_date_options_refuse_non_dates(
    command: str,
    value: str,
    tiny_scenario: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Catches: a date option parsed leniently or raising a raw ValueError."""
    out = tmp_path / "out"
    args = [command, *_positional(command, tiny_scenario), f"--end={value}", "--out", str(out)]
    code, err = run_main(args, capsys)
    assert code == 2 and "--end" in err and "YYYY-MM-DD" in err, err
    assert not out.exists()


# --------------------------------------------------------------------------- CLI subprocess
def nrmsim(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "model", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_bad_files_exit_2_with_the_file_and_key_and_write_nothing(
    tiny_scenario: Path, tmp_path: Path
) -> None:
    """Catches, through the real command line: a sweep that writes design.parquet and
    manifest.json before failing on a factor whose scaled values overflow (it did), a bad
    scenario or targets file ending in a traceback or exit code 1."""
    exp = base_experiment(tiny_scenario)
    exp["factor"][1]["scale"] = [0, 1e308]
    sweep_file = write(tmp_path, toml_doc(exp), "overflow")
    scen = base_scenario()
    scen["params"]["identification"]["child_referrals_per_year"]["allowed"] = 5
    scen_file = write(tmp_path, toml_doc(scen), "allowed")
    targets = base_targets()
    targets["target"][0]["tolerance"] = {"kind": "relative", "value": math.nan}
    targets_file = write(tmp_path, toml_doc(targets), "targets")
    cases = [
        (["sweep", sweep_file, "--quiet"], sweep_file, "factor[1]", "finite"),
        (["run", scen_file, "--quiet"], scen_file, "allowed", "list of strings"),
        (["check", "--targets", targets_file], targets_file, "tolerance", "value = > 0"),
    ]
    for args, file, key, words in cases:
        out = tmp_path / f"out-{file.stem}"
        extra = ["--out", out] if args[0] != "check" else []
        done = nrmsim(*args, *extra, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        for word in (str(file), key, words):
            assert word in done.stderr, (word, done.stderr)
        assert not out.exists(), f"{out} written by a failed command"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".toml")) == []
