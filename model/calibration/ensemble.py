"""The calibration ensemble: parameter sets consistent with every fit target (history
matching's non-implausible region).

Proposals alternate between a random walk from a random accepted set (Gaussian steps of
``step`` x each parameter's range, starting at 2% and adapted to keep 35-60% accepted) and,
once ten sets are accepted, Latin-hypercube points in the box spanned by the accepted sets
(widened by 2% of each range), so the ensemble explores the region rather than only the fitted
point's neighbourhood. Candidate ``i`` draws its random numbers from
``SeedSequence(optimiser_seed, spawn_key=(PROPOSAL_STREAM, i))`` and the step is recomputed
from the candidates before it, so a proposal depends only on the seed, the starting sets and
the earlier candidates' outcomes: a search stopped and continued (``nrmsim calibrate
--extend-ensemble``) proposes exactly what one uninterrupted search would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.calibration.targets import Target
from model.scenario import ScenarioError

# run(values) -> (simulated values per replicate, comparison with the targets)
RunCandidate = Callable[[Mapping[str, float]], tuple[pd.DataFrame, pd.DataFrame]]
FIRST_STEP = 0.02  # the random walk's first step, a share of each parameter's range
BOX_MARGIN = 0.02  # the history-matching box: the accepted sets' span +- this share of range
MIN_SETS_FOR_BOX = 10  # accepted sets before history-matching proposals begin
GIVE_UP_AFTER = 24  # candidates without any accepted set before the search stops
# spawn key of the proposals' random numbers: SeedSequence([seed, 0]) would equal
# SeedSequence(seed) (trailing zeros add no entropy), the stream the fits before the
# extension drew their proposals from, so candidate 0 would repeat their first proposal
PROPOSAL_STREAM = 0x656E73  # "ens"
PROVENANCE = ("source", "trial")  # columns of a set besides set_id and the parameters
# columns of a progress record besides the parameters and what ``record`` is given as extra
RECORD_COLUMNS = ("candidate", "source", "accepted", "set_id", "step")


class EnsembleSearch:
    """The state of an ensemble search: the accepted sets (``accepted``: the starting sets,
    then the accepted candidates, each a dict of parameter values, ``source`` and ``trial``)
    and one record per candidate run (``history``).

    Args:
        free: (key, value, low, high) per parameter; proposals stay inside [low, high].
        start: sets accepted before the search (optimiser trials, an earlier ensemble).
        optimiser_seed: the seed of every candidate's random numbers.
        fallback: where the random walk starts while no set is accepted (parameter values).
    """

    def __init__(
        self,
        free: Sequence[tuple[str, float, float, float]],
        start: Sequence[Mapping[str, Any]],
        optimiser_seed: int,
        fallback: Mapping[str, float] | None = None,
    ) -> None:
        self.keys = [k for k, *_ in free]
        self.low = np.array([lo for *_, lo, _ in free], dtype=float)
        self.high = np.array([hi for *_, hi in free], dtype=float)
        self.width = self.high - self.low
        self.seed = optimiser_seed
        self.accepted: list[dict[str, Any]] = [dict(s) for s in start]
        self.starting_sets = len(self.accepted)
        points = [[s[k] for k in self.keys] for s in start]
        if not points:
            points = [[(fallback or {})[k] for k in self.keys]] if fallback else []
        self.anchor = np.array(points, dtype=float).reshape(-1, len(self.keys))
        self.history: list[dict[str, Any]] = []
        self.step = FIRST_STEP
        self._walked = self._walked_ok = 0

    @property
    def spent(self) -> int:
        """Candidates run so far (the next candidate's index)."""
        return len(self.history)

    def propose(self) -> tuple[str, dict[str, float]]:
        """(source, parameter values) of the next candidate: a pure function of the seed,
        the candidate's index, the starting sets and the earlier candidates' outcomes."""
        index = self.spent
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(PROPOSAL_STREAM, index))
        )
        # history-matching proposals only once the accepted sets span a region worth filling
        if len(self.accepted) < MIN_SETS_FOR_BOX or index % 2 == 0:
            if not len(self.anchor):
                raise ValueError("no accepted set and no fallback point to walk from")
            origin = self.anchor[rng.integers(len(self.anchor))]
            noise = rng.normal(0.0, self.step, len(self.keys))
            point = np.clip(origin + noise * self.width, self.low, self.high)
            source = "random-walk"
        else:
            from scipy.stats import qmc

            box_lo = np.maximum(self.anchor.min(axis=0) - BOX_MARGIN * self.width, self.low)
            box_hi = np.minimum(self.anchor.max(axis=0) + BOX_MARGIN * self.width, self.high)
            lhs = qmc.LatinHypercube(d=len(self.keys), seed=rng)
            point = qmc.scale(lhs.random(1), box_lo, box_hi)[0]
            source = "history-matching"
        return source, dict(zip(self.keys, point.tolist(), strict=True))

    def record(
        self, source: str, values: Mapping[str, float], ok: bool, **extra: Any
    ) -> dict[str, Any]:
        """Add a candidate's outcome (``extra``: more columns for its record); an accepted
        one becomes a set. Every four random-walk candidates the step is adapted towards
        35-60% accepted. Returns the record."""
        row = {
            "candidate": self.spent,
            "source": source,
            "accepted": bool(ok),
            "set_id": len(self.accepted) if ok else -1,
            "step": self.step,
            **{k: float(values[k]) for k in self.keys},
            **extra,
        }
        self.history.append(row)
        if ok:
            self.accepted.append(
                {**{k: float(values[k]) for k in self.keys}, "source": source, "trial": -1}
            )
            point = np.array([[values[k] for k in self.keys]], dtype=float)
            self.anchor = np.vstack([self.anchor, point])
        if source == "random-walk":
            self._walked, self._walked_ok = self._walked + 1, self._walked_ok + ok
            if self._walked >= 4:
                rate = self._walked_ok / self._walked
                self.step *= 1.3 if rate > 0.6 else 0.75 if rate < 0.35 else 1.0
                self._walked = self._walked_ok = 0
        return row

    def replay(self, rows: Sequence[Mapping[str, Any]], where: Path | str) -> None:
        """Recompute the candidates recorded in ``rows`` (a progress file's, in order) without
        running them: each proposal must be the one recorded (else the file was made with
        other inputs: ``ScenarioError`` naming ``where``); its recorded outcome is taken."""
        for row in rows:
            source, values = self.propose()
            recorded = np.array([row.get(k, np.nan) for k in self.keys], dtype=float)
            proposed = np.array([values[k] for k in self.keys])
            if (
                int(row["candidate"]) != self.spent
                or row["source"] != source
                or not np.allclose(recorded, proposed, rtol=1e-12, atol=0.0)
            ):
                raise ScenarioError(
                    where,
                    f"candidate {self.spent}",
                    f"recorded {row['source']} proposal differs from the one these inputs make "
                    f"({source}): the file was written for another fit, seed or parameter "
                    "list; move it away to start the extension afresh",
                )
            extra = {k: v for k, v in row.items() if k not in (*self.keys, *RECORD_COLUMNS)}
            self.record(source, values, _truthy(row["accepted"]), **extra)

    def frame(self) -> pd.DataFrame:
        """The accepted sets: ``set_id``, one column per parameter, ``source``, ``trial``."""
        frame = pd.DataFrame(self.accepted)
        if frame.empty:
            frame = pd.DataFrame(columns=[*self.keys, *PROVENANCE])
        frame.insert(0, "set_id", range(len(frame)))
        return frame


def run_search(
    search: EnsembleSearch,
    run: RunCandidate,
    *,
    ensemble_size: int,
    ensemble_budget: int,
    after_each: Callable[[EnsembleSearch], None] | None = None,
) -> None:
    """Run candidates until ``ensemble_size`` sets are accepted or ``ensemble_budget``
    candidates have run (counting those in ``search.history`` already); ``after_each`` is
    called after every candidate (to save progress)."""
    while len(search.accepted) < ensemble_size and search.spent < ensemble_budget:
        if not search.accepted and search.spent >= GIVE_UP_AFTER:
            print(
                f"ensemble: no parameter set near the best is consistent with every fit target "
                f"after {GIVE_UP_AFTER} runs; stopping (the ensemble is empty)",
                file=sys.stderr,
            )
            break
        source, values = search.propose()
        _, table = run(values)
        ok = not_implausible(table)
        search.record(
            source,
            values,
            ok,
            max_implausibility=max_implausibility(table),
            **dict(zip("d:" + table["id"], table["distance"], strict=True)),
        )
        if after_each is not None:
            after_each(search)
        print(
            f"ensemble: {len(search.accepted)} sets consistent with every fit target after "
            f"{search.spent} extra runs ({source}, step {search.step:.3f})",
            file=sys.stderr,
        )


def build_ensemble(
    trials: list[dict[str, Any]],
    free: list[tuple[str, float, float, float]],
    targets: Sequence[Target],
    run: RunCandidate,
    *,
    optimiser_seed: int,
    ensemble_size: int,
    ensemble_budget: int,
    ensemble_from: Path | str | None = None,
    progress: Path | None = None,
) -> pd.DataFrame:
    """Parameter sets consistent with every fit target (the non-implausible region).

    First every optimiser trial with all fit targets inside (and the sets of
    ``ensemble_from``, an earlier ``ensemble.parquet``); then, while fewer than
    ``ensemble_size``, proposals (see the module docstring) run with the same seeds and kept
    if no fit target is implausible (``not_implausible``: inside its tolerance widened by the
    candidate's Monte Carlo standard error). Stops after ``ensemble_budget`` extra runs.
    ``progress``: a CSV that records every candidate (``write_progress``; started afresh,
    and ``nrmsim calibrate --extend-ensemble`` continues from it). ``targets`` is unused (the
    comparison ``run`` returns carries them).
    """
    keys = [k for k, *_ in free]
    accepted = [
        dict(t["params"], source="optimiser", trial=t["trial"]) for t in trials if t["all_inside"]
    ]
    if ensemble_from:
        accepted += _earlier_sets(Path(ensemble_from), keys, accepted)
    best = min(trials, key=lambda t: t["cost"])["params"] if trials else None
    search = EnsembleSearch(free, accepted, optimiser_seed, fallback=best)
    if progress is not None:
        progress.unlink(missing_ok=True)
    run_search(
        search,
        run,
        ensemble_size=ensemble_size,
        ensemble_budget=ensemble_budget,
        after_each=None if progress is None else lambda s: write_progress(progress, s.history),
    )
    return search.frame()


def _earlier_sets(
    path: Path, keys: Sequence[str], accepted: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The sets of an earlier ensemble, less the optimiser trials already ``accepted``."""
    earlier = pd.read_parquet(path)
    missing = sorted(set(keys) - set(earlier.columns))
    if missing:
        raise ScenarioError(path, "columns", f"missing parameters {missing}")
    out: list[dict[str, Any]] = []
    for row in earlier.to_dict(orient="records"):
        if row.get("source") == "optimiser" and any(
            all(abs(row[k] - a[k]) < 1e-12 for k in keys) for a in accepted
        ):
            continue  # the same optimiser trial, already accepted above
        out.append(
            {**{k: float(row[k]) for k in keys}, "source": row.get("source", "earlier")}
            | {"trial": int(row.get("trial", -1))}
        )
    return out


def implausibility(table: pd.DataFrame) -> pd.Series:
    """Per target: |simulated - observed| / sqrt(tolerance^2 + mc_se^2) (dimensionless)."""
    tol = table["tolerance"].astype(float)
    se = table["mc_se"].astype(float).fillna(0.0)
    return (table["distance"].astype(float) * tol).abs() / np.sqrt(tol**2 + se**2)


def max_implausibility(table: pd.DataFrame) -> float:
    """The largest implausibility over the targets (nan if one is undefined)."""
    values = implausibility(table).to_numpy(float)
    return float(values.max()) if np.isfinite(values).all() else float("nan")


def not_implausible(table: pd.DataFrame) -> bool:
    """History matching's test for one candidate: every fit target's implausibility
    |simulated - observed| / sqrt(tolerance^2 + mc_se^2) is at most 1, so the candidate's few
    replicates are allowed their Monte Carlo error (the gate, ``nrmsim check``, allows none)."""
    return bool((implausibility(table) <= 1.0).all())


def write_progress(path: Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Every candidate's record (``EnsembleSearch.history``) as a CSV, replaced atomically
    (a temporary file, then ``os.replace``), so a kill leaves the previous version whole."""
    from model.output import write_atomic

    write_atomic(pd.DataFrame(list(history)).to_csv(index=False).encode(), path)


def read_progress(path: Path) -> list[dict[str, Any]]:
    """The records of a progress file, in candidate order (empty if there is none)."""
    if not path.is_file():
        return []
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors
        raise ScenarioError(path, "-", f"not a readable progress file ({exc})") from None
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if missing:
        raise ScenarioError(path, "columns", f"missing {missing}; expected {list(RECORD_COLUMNS)}")
    return frame.to_dict(orient="records")


def _truthy(value: Any) -> bool:
    """A CSV's accepted flag (bool, or the text True/False)."""
    return value is True or str(value).strip().lower() in ("true", "1")
