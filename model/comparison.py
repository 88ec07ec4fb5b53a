"""Compare scenarios end to end: the library function behind ``nrmsim compare``.

:func:`run_comparison` runs every scenario with the baseline's root seed and the same
replicate numbers (common random numbers; with a calibration ensemble, replicate r of every
scenario uses parameter set r), and writes one folder: ``comparison.csv`` (paired differences
against the baseline with 95% intervals, :func:`model.compare.compare_summaries`),
``summary.csv``, ``pathways.csv``, ``manifest.json``, ``psa.json`` (if a committed PSA covers
the options), ``figures/*.png`` and ``report.html`` (and ``null/`` with ``with_null``). The
folder appears complete or not at all, under a lock (``model.output``). From a notebook::

    from model.comparison import run_comparison
    result = run_comparison(["status_quo_2027", "repeal_nba"], reps=4, workers=2)
    result.comparison  # comparison.csv as written

``model.compare`` stays pure statistics on summary tables (no runs, no files), so the report
and sweeps can use it without the runner; this module runs, writes and reports.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.common import EFFECTS as EFFECTS
from model.common import InputError, as_date, check_run_keywords, describe_call
from model.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    import pandas as pd

    from model.runner import RunResult, RunSpec

MAX_NAME = 80  # longest default folder name before options are counted instead of named
# run_comparison's keywords that the manifest's command names when they differ from these
CALL_DEFAULTS: dict[str, Any] = {
    "baseline": None,
    "reps": None,
    "seed": None,
    "start": None,
    "end": None,
    "workers": 1,
    "out": None,
    "force": False,
    "effects": "default",
    "with_null": False,
    "ensemble": "auto",
    "replicates_per_set": 1,
    "table_shape": "long",
}


@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """What :func:`run_comparison` wrote and computed.

    Attributes:
        out: the folder written.
        baseline: the comparator's scenario name.
        options: the other scenarios' names, in the order run.
        replicates: replicates per scenario.
        comparison: ``comparison.csv`` as written (read back, so its numbers are the file's).
        summaries: scenario name -> its replicates' summary (long form); ``summary.csv`` is
            their concatenation (``model.tables.to_wide`` of it with ``table_shape="wide"``).
        manifest: ``manifest.json`` as written.
        null_comparison: ``null/comparison.csv`` with ``with_null``, else None.
    """

    out: Path
    baseline: str
    options: list[str]
    replicates: int
    comparison: pd.DataFrame
    summaries: dict[str, pd.DataFrame]
    manifest: dict[str, Any]
    null_comparison: pd.DataFrame | None = None


def run_comparison(
    scenarios: Sequence[str | Path | Scenario],
    *,
    baseline: str | None = None,
    reps: int | None = None,
    seed: int | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    workers: int = 1,
    out: Path | str | None = None,
    force: bool = False,
    effects: str = "default",
    with_null: bool = False,
    ensemble: str | None = "auto",
    replicates_per_set: int = 1,
    table_shape: str = "long",
    quiet: bool = True,
    argv: Sequence[str] | None = None,
) -> ComparisonResult:
    """Run scenarios with common random numbers and write the comparison folder and report.

    Args:
        scenarios: names in ``scenarios/``, ``.toml`` paths or loaded scenarios (two or more);
            the first is the baseline unless ``baseline`` names another.
        baseline: which scenario is the comparator (its name, or the name or path given).
        reps: replicates per scenario; default the baseline's.
        seed: root seed of every scenario; default the baseline's.
        start: the first day (a date or ``YYYY-MM-DD``); default each scenario's, which must
            then agree.
        end: the last day, included; default each scenario's, which must then agree.
        workers: worker processes (results do not depend on it).
        out: the folder to write; default ``out/<baseline>-vs-<options>`` (replaced).
        force: replace ``out`` if it is a non-empty folder.
        effects: ``"default"``, or ``"null"`` for every assumed effect size at its null.
        with_null: also run everything with null effects into ``null/`` (twice the runs).
        ensemble: a fit id whose calibration ensemble gives replicate r parameter set r;
            ``"auto"`` the newest fit the baseline cites (if it has an ensemble); ``"none"``
            or None for Monte Carlo only.
        replicates_per_set: consecutive replicates sharing one ensemble set (``_Plan``).
        table_shape: ``summary.csv`` ``"long"`` or ``"wide"`` (``model.tables.to_wide``).
        quiet: no progress bar on standard error.
        argv: the command line the manifest and report record (``nrmsim``'s); default this call.

    Raises:
        InputError: fewer than two scenarios, a name twice, an unknown ``baseline``,
            different run windows, ``with_null`` with null effects, or a bad count.
        ScenarioError: a scenario or the ensemble cannot be loaded.
        OutputExistsError: ``out`` is a file, a non-empty folder without ``force``, or being
            written by another process.
    """
    from model.output import atomic_dir, out_folder, out_lock
    from model.report import build_report
    from model.report.psa import write_psa_summary

    scenarios = [scenarios] if isinstance(scenarios, str | Path | Scenario) else scenarios
    _check_counts(
        reps=reps, seed=seed, workers=workers, effects=effects, per_set=replicates_per_set,
        with_null=with_null, shape=table_shape,
    )  # fmt: skip
    start, end = as_date("start", start), as_date("end", end)
    given = {k: v for k, v in locals().items() if k in CALL_DEFAULTS}  # the keywords as given
    command = list(argv) if argv is not None else _call(scenarios, given)
    if len(scenarios) < 2:
        raise InputError("give at least two scenarios: the baseline and one or more options")
    ordered = _ordered(scenarios, baseline, start, end, seed)
    fit_id, sets = _ensemble(ensemble)
    modes = [effects, *(["null"] if with_null else [])]
    plan = _Plan(ordered, reps or ordered[0].replicates, modes, fit_id, sets, replicates_per_set)
    folder, force = out_folder(out, _folder_name(ordered), force)
    with out_lock(folder):
        started = time.perf_counter()
        results = plan.run(workers, quiet)
        wall = time.perf_counter() - started
        with atomic_dir(folder, force=force) as tmp:
            summaries = _write_tables(tmp, plan, results, table_shape)
            has_psa = write_psa_summary(tmp, ordered[0].name, [s.name for s in ordered[1:]])
            meta = _manifest(plan, results, command, has_psa, wall, workers)
            (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
            build_report(tmp)
    return _result(folder, plan, summaries, meta)


def _folder_name(ordered: Sequence[Scenario]) -> str:
    """The default folder: ``<baseline>-vs-<options>``, or with too long a name
    ``<baseline>-vs-<n>-options``."""
    options = [s.name for s in ordered[1:]]
    name = f"{ordered[0].name}-vs-{'-'.join(options)}"
    if len(name) > MAX_NAME:
        name = f"{ordered[0].name}-vs-{len(options)}-options"
    return name


def _result(
    folder: Path, plan: _Plan, summaries: dict[str, pd.DataFrame], meta: dict[str, Any]
) -> ComparisonResult:
    """What ``run_comparison`` returns, its tables read back from the files written."""
    import pandas as pd

    null = folder / "null" / "comparison.csv"
    return ComparisonResult(
        out=folder,
        baseline=plan.ordered[0].name,
        options=[s.name for s in plan.ordered[1:]],
        replicates=plan.reps,
        comparison=pd.read_csv(folder / "comparison.csv", dtype={"group": str}),
        summaries=summaries,
        manifest=meta,
        null_comparison=(pd.read_csv(null, dtype={"group": str}) if len(plan.modes) > 1 else None),
    )


def _ordered(
    scenarios: Sequence[str | Path | Scenario],
    baseline: str | None,
    start: dt.date | None,
    end: dt.date | None,
    seed: int | None,
) -> list[Scenario]:
    """The scenarios loaded, baseline first, all with its root seed and the given window.

    Raises:
        InputError: a name twice, an unknown ``baseline`` or different run windows.
    """
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    names = [s.name for s in loaded]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(
            f"scenario name(s) {twice} given more than once; each scenario needs its own "
            "[meta].name so its rows can be told apart"
        )
    base_i = 0
    if baseline is not None:
        matches = [
            i
            for i, (a, n) in enumerate(zip(scenarios, names, strict=True))
            if baseline in ((n,) if isinstance(a, Scenario) else (str(a), n))
        ]
        if not matches:
            raise InputError(f"--baseline {baseline!r} is not one of the scenarios {names}")
        base_i = matches[0]
    base = loaded[base_i].with_run(start=start, end=end, seed=seed)
    ordered = [base] + [
        s.with_run(start=start, end=end, seed=base.seed)
        for i, s in enumerate(loaded)
        if i != base_i
    ]
    for sc in ordered[1:]:
        if (sc.start, sc.end) != (base.start, base.end):
            raise InputError(
                f"{base.name} runs {base.start}..{base.end} but {sc.name} runs "
                f"{sc.start}..{sc.end}; give --start and --end to compare the same period"
            )
    return ordered


@dataclass
class _Plan:
    """The runs of one comparison: every effects mode (the chosen one, then ``null`` with
    ``with_null``), every scenario (baseline first) and every replicate, in that order.

    ``per_set`` consecutive replicates share one ensemble parameter set. With 2 or more the
    report can split each interval's width into parameter uncertainty and Monte Carlo noise,
    and the intervals are cluster-robust over the sets (``model.compare``).

    Raises:
        InputError: ``per_set`` above 1 without an ensemble, above ``reps``, or not dividing
            ``reps``.
    """

    ordered: list[Scenario]
    reps: int
    modes: list[str]
    fit_id: str | None
    sets: pd.DataFrame | None
    per_set: int = 1

    def __post_init__(self) -> None:
        k = self.per_set
        if k > 1 and self.sets is None:
            raise InputError(
                "--replicates-per-set above 1 needs a calibration ensemble (not --ensemble "
                "none): without one every replicate has the same parameters"
            )
        if k > self.reps:
            raise InputError(f"--replicates-per-set {k} is more than --reps {self.reps}")
        if self.reps % k:
            raise InputError(
                f"{self.reps} replicates cannot be split into groups of --replicates-per-set "
                f"{k}; give --reps as a multiple of it"
            )

    @cached_property
    def set_ids(self) -> list[int] | None:
        """Each replicate's ensemble parameter set (None without an ensemble)."""
        from model.ensemble import set_for_replicate

        if self.sets is None:
            return None
        return [
            int(set_for_replicate(self.sets, r, self.per_set)["set_id"]) for r in range(self.reps)
        ]

    @property
    def clusters(self) -> dict[int, int] | None:
        """replicate -> parameter set, for cluster-robust intervals (None: no ensemble)."""
        return None if self.set_ids is None else dict(enumerate(self.set_ids))

    @cached_property
    def since(self) -> dt.date:
        """The first policy date where an option departs from the baseline (the pathways
        table counts flows from it), else the baseline's start."""
        from model.report.evidence import policy_dates

        base = self.ordered[0]
        dates = sorted(
            {d for sc in self.ordered[1:] for d in policy_dates(base.resolved(), sc.resolved())}
        )
        return dt.date.fromisoformat(dates[0]) if dates else base.start

    def specs(self) -> list[RunSpec]:
        """One spec a run; the chosen mode's runs also derive the pathways table."""
        from model.report import flows_since
        from model.runner import RunSpec

        since = self.since
        return [
            RunSpec(
                _with_set(sc, self.sets, r, self.fit_id, self.per_set).with_effects(mode),
                r,
                derive=flows_since(since) if mode == self.modes[0] else None,
            )
            for mode in self.modes
            for sc in self.ordered
            for r in range(self.reps)
        ]

    def run(self, workers: int, quiet: bool) -> list[RunResult]:
        """Every run, through ``model.runner.run_with_progress``, in the plan's order."""
        from model.runner import run_with_progress

        base, options = self.ordered[0], [s.name for s in self.ordered[1:]]
        return run_with_progress(
            self.specs(),
            label=f"{base.name} vs {', '.join(options)}",
            workers=workers,
            quiet=quiet,
        )


def _write_tables(
    tmp: Path, plan: _Plan, results: list[RunResult], shape: str = "long"
) -> dict[str, pd.DataFrame]:
    """comparison.csv and summary.csv (``shape`` long or wide) of each mode (the null's in
    ``null/``) and pathways.csv; returns the chosen mode's summaries by scenario name."""
    import pandas as pd

    from model.compare import compare_summaries
    from model.output import write_table
    from model.tables import to_wide

    per_mode, reps = len(plan.ordered) * plan.reps, plan.reps
    summaries: dict[str, pd.DataFrame] = {}
    for m in range(len(plan.modes)):
        where = tmp if m == 0 else tmp / "null"
        where.mkdir(exist_ok=True)
        chunk = results[m * per_mode : (m + 1) * per_mode]
        by_name = {
            sc.name: pd.concat(
                [r.summary for r in chunk[i * reps : (i + 1) * reps]], ignore_index=True
            )
            for i, sc in enumerate(plan.ordered)
        }
        table = compare_summaries(by_name, plan.ordered[0].name, plan.clusters)
        write_table(table, where / "comparison.csv")
        summary = pd.concat(by_name.values(), ignore_index=True)
        write_table(to_wide(summary) if shape == "wide" else summary, where / "summary.csv")
        if m == 0:
            summaries = by_name
            flows = [
                r.derived.assign(scenario=r.scenario, replicate=r.replicate)
                for r in chunk
                if r.derived is not None
            ]
            table = pd.concat(flows, ignore_index=True)
            cols = ["scenario", "replicate", "rg_stage", "cg_stage", "referrals"]
            write_table(table[cols], tmp / "pathways.csv")
    return summaries


def _manifest(
    plan: _Plan,
    results: list[RunResult],
    command: list[str],
    has_psa: bool,
    wall: float,
    workers: int,
) -> dict[str, Any]:
    """manifest.json: ``model.output.manifest`` of the resolved scenarios with the
    comparison's settings, files and timings (``wall`` in seconds)."""
    from model.output import manifest
    from model.report.evidence import cited_sources
    from model.results import METRICS

    base, ordered, reps, effects = plan.ordered[0], plan.ordered, plan.reps, plan.modes[0]
    with_null = len(plan.modes) > 1
    return manifest(
        {sc.name: sc.with_effects(effects).resolved() for sc in ordered},
        base.seed,
        range(reps),
        {
            "command": command,
            "effects": effects,
            "comparison": {
                "baseline": base.name,
                "scenarios": [sc.name for sc in ordered],
                "replicates": reps,
                "root_seed": base.seed,
                "effects": effects,
                "with_null": with_null,
                "ensemble": plan.fit_id,
                "ensemble_sets": plan.set_ids,
                "replicates_per_set": plan.per_set,
                "pathways_since": plan.since.isoformat(),
                "sources": cited_sources(ordered),
                "metrics": dict(sorted(METRICS.items())),
            },
            "outputs": [
                "comparison.csv",
                "summary.csv",
                "pathways.csv",
                "manifest.json",
                "report.html",
                "figures/",
                *(["null/"] if with_null else []),
                *(["psa.json"] if has_psa else []),
            ],
            "timing": {
                "wall_s": round(wall, 3),
                "workers": workers,
                "runs": len(results),
                "per_run": [
                    {
                        "scenario": r.scenario,
                        "replicate": r.replicate,
                        **{k: round(v, 3) for k, v in r.timing.items()},
                    }
                    for r in results
                ],
            },
        },
    )


def _check_counts(
    *,
    reps: int | None,
    seed: int | None,
    workers: int,
    effects: str,
    per_set: int = 1,
    with_null: bool = False,
    shape: str = "long",
) -> None:
    """The checks ``nrmsim``'s option parser makes, for calls from Python
    (``model.common.check_run_keywords`` and ``replicates_per_set``), and that ``with_null``
    (a second run at null effects) does not go with null effects."""
    check_run_keywords(reps=reps, seed=seed, workers=workers, effects=effects, shape=shape)
    if not (isinstance(per_set, int) and not isinstance(per_set, bool) and per_set >= 1):
        raise InputError(f"replicates_per_set {per_set!r}: allowed: a whole number, 1 or more")
    if with_null and effects == "null":
        raise InputError(
            "--with-null adds a run with null effects; it cannot go with --effects null"
        )


def _ensemble(ensemble: str | None) -> tuple[str | None, pd.DataFrame | None]:
    """The fit id (``"auto"``: the newest the baseline cites; ``"none"``/None: no fit) and
    its ensemble of parameter sets (None without a fit).

    Raises:
        ScenarioError: the fit has no saved ensemble.
    """
    from model.ensemble import latest_fit_id, load_ensemble

    fit_id = latest_fit_id() if ensemble == "auto" else None if ensemble == "none" else ensemble
    return fit_id, None if fit_id is None else load_ensemble(fit_id)


def _with_set(
    scenario: Scenario,
    ensemble: pd.DataFrame | None,
    replicate: int,
    fit_id: str | None,
    per_set: int = 1,
) -> Scenario:
    """The scenario with replicate ``replicate``'s ensemble parameter set, if any."""
    if ensemble is None or fit_id is None:
        return scenario
    from model.ensemble import apply_set, set_for_replicate

    return apply_set(scenario, set_for_replicate(ensemble, replicate, per_set), fit_id)


def _call(scenarios: Sequence[str | Path | Scenario], given: dict[str, Any]) -> list[str]:
    """The manifest's ``command`` for a call from Python (``model.common.describe_call``)."""
    labels = [s.name if isinstance(s, Scenario) else str(s) for s in scenarios]
    return describe_call(f"{__name__}.run_comparison", labels, given, CALL_DEFAULTS)
