"""``NRMModel``: a Mesa model that owns a SimPy environment, the services and the children.

SimPy owns time (``env.now``, days since the scenario start). Mesa owns the population of
``Child`` agents (and never-referred ``UnaccompaniedChild`` agents in Home Office hotels) and
the periodic snapshots: one ``step()`` advances SimPy by one reporting period
(``REPORT_EVERY_DAYS``) and collects counts with a ``mesa.DataCollector``.

Simultaneous events follow SimPy's scheduling order; nothing relies on it except that a
timeline change on a date applies before anything else that day (it is scheduled first).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import mesa
import simpy

from model.agents import OPEN_STATES, Child
from model.calendar import Calendar
from model.events import EVENTS, Event, EventLog
from model.params import Params
from model.pathway import referral_episode
from model.queues import DecisionQueue, SlotPool
from model.rng import DrawAudit, StageDraws, Stream, Streams, fresh_uniforms
from model.rules import Rule, resolve
from model.scenario import Scenario, TimelineEntry
from model.stages import (
    age_dispute,
    care,
    cg_decision,
    disqualification,
    guardianship,
    hotels,
    identification,
    justice,
    leave,
    reconsideration,
    retrafficking,
    rg_decision,
    transition,
)
from model.stages.identification import LocalAuthorities

# streams of the processes every referral (re)starts beside the case: care and guardianship
SIDE_STREAMS = frozenset((Stream.CARE, Stream.GUARDIANSHIP))
REPORT_EVERY_DAYS = 30.4375  # one reporting period: a twelfth of a year
EVENT_CODE = {e: i for i, e in enumerate(EVENTS)}
SLOTS = {
    Stream.ATTRIBUTES: identification.ATTRIBUTE_SLOTS,
    Stream.RG: rg_decision.RG_SLOTS,
    Stream.DISQUALIFICATION: disqualification.DISQUALIFICATION_SLOTS,
    Stream.CG: cg_decision.CG_SLOTS,
    Stream.RECONSIDERATION: reconsideration.RECONSIDERATION_SLOTS,
    Stream.CARE: care.CARE_SLOTS,
    Stream.GUARDIANSHIP: guardianship.GUARDIANSHIP_SLOTS,
    Stream.JUSTICE: justice.JUSTICE_SLOTS,
    Stream.LEAVE: leave.LEAVE_SLOTS,
    Stream.TRANSITION: transition.TRANSITION_SLOTS,
    Stream.RETRAFFICKING: retrafficking.RETRAFFICKING_SLOTS,
    Stream.AGE_DISPUTE: age_dispute.AGE_DISPUTE_SLOTS,
}


class NRMModel(mesa.Model):
    """Children (Mesa agents) moving through SimPy processes; time is in days on ``env.now``."""

    def __init__(
        self,
        scenario: Scenario,
        replicate: int = 0,
        audit: bool = False,
        rules: Mapping[str, Rule] | None = None,
    ) -> None:
        # replacement decision rules (``model.rules``); empty: the package's own
        self.rules = resolve(rules)
        self.streams = Streams(scenario.seed, replicate)
        # debug mode: record every uniform read (``model.rng.DrawAudit``); off in normal runs
        self.audit: DrawAudit | None = DrawAudit(lambda: self.env.now) if audit else None
        super().__init__(rng=self.streams.seed(Stream.MESA))
        self.nrm_scenario, self.replicate = scenario, replicate
        self.calendar = Calendar(scenario.sim_start)
        self.end_day = self.calendar.day(scenario.end) + 1.0  # the end date is included
        self.params: Params = scenario.initial_params()
        self.env = simpy.Environment()
        self.log = EventLog()
        self._rows = self.log.rows
        self.counts: Counter[str] = Counter()
        # per-referral uniforms: all stages in one row fetched at a child's first referral;
        # missing episodes have their own table. Later referrals of a child (repeat or linked)
        # draw fresh rows keyed by (child, referral number): see ``referral_draws``.
        self.draws = StageDraws(self.streams, SLOTS)
        self._offsets = self.draws.offsets
        self._width = max(b for _a, b in self._offsets.values())
        self.missing_draws = self.streams.table(Stream.MISSING, care.MISSING_SLOTS)
        self.local_authorities = LocalAuthorities(self)
        self.rg_queue = DecisionQueue(self.env, 0, "rg")
        self.cg_queue = DecisionQueue(self.env, 0, "cg")
        self.pilot_queue = DecisionQueue(self.env, 0, "devolved_pilot")
        self._capacity_logged: dict[str, float] = {}
        self._costs_logged: dict[str, float] = {}
        self._derive()
        p = self.params
        self.placements = {
            k: SlotPool(self.env, getattr(p.care, f"capacity_{k}"), k) for k in care.PLACEMENT_TYPES
        }
        self.ictg_direct = SlotPool(self.env, p.guardianship.ictg_direct_caseload, "ictg_direct")
        self.params_changed = self.env.event()
        self.hotels_closed = self.env.event()  # fires when policy.hotels_in_use turns off
        self._timeline_generation = 0
        self.branched_wall_s = 0.0  # wall clock when this copy branched (``model.branching``)
        self.branches_wall_s = 0.0  # time spent waiting for copies that branched from this run
        self._period_end: float | None = None  # set while paused inside a reporting period
        self.env.process(self._timeline(scenario.future_timeline(), 0))
        self.pool = identification.Pool(self)
        self.env.process(self.pool.run())
        self.env.process(identification.arrivals(self))
        self.env.process(hotels.arrivals(self))
        self.n_expansions = 0  # guardian service expansions so far (keys their draws)
        self.birthdays: dict[int, list[Child]] = {}
        self.followup_ends: dict[int, list[Child]] = {}
        self.env.process(transition.daily(self))

        def state_count(state: str) -> Any:
            return lambda m: m.counts[state]

        self.datacollector = mesa.DataCollector(
            model_reporters={
                "date": lambda m: m.calendar.date(m.env.now).isoformat(),
                **{state: state_count(state) for state in OPEN_STATES},
                "in_care": lambda m: m.counts["in_care"],
                "ictg_direct_active": lambda m: m.counts["ictg_direct"],
                "unidentified_pool": lambda m: m.pool.size,
                "rg_queue": lambda m: len(m.rg_queue),
                "cg_queue": lambda m: len(m.cg_queue),
            }
        )

    # ------------------------------------------------------------------ run control
    def step(self) -> None:
        """Advance one reporting period (or the rest of it, after a pause); SimPy decides
        what happens inside it."""
        until = self._period_end
        if until is None:
            until = min(self.env.now + REPORT_EVERY_DAYS, self.end_day)
        self._period_end = None
        self.env.run(until=until)
        self.datacollector.collect(self)

    def run(self, pause_at: float | None = None) -> None:
        """Run to the end, or only to day ``pause_at`` (then ``run()`` again goes on from
        there exactly as if it had not stopped: same events, same order)."""
        while self.env.now < self.end_day:
            if pause_at is not None:
                period_end = self._period_end
                if period_end is None:
                    period_end = min(self.env.now + REPORT_EVERY_DAYS, self.end_day)
                if period_end > pause_at:  # the pause falls inside this period
                    if self.env.now < pause_at:
                        self.env.run(until=pause_at)
                    self._period_end = period_end
                    return
            self.step()

    def branch(self, scenario: Scenario) -> None:
        """Go on as ``scenario`` from now: a model paused at the day where ``scenario``'s
        timeline first differs from the one it ran (``model.branching.divergence_day``),
        so that a policy option shares the status quo's history instead of simulating it
        again. The rest of the old timeline is dropped; ``scenario``'s entries from today
        apply, the first at once (a timeline change applies before anything else on its
        date), the others by a timeline process as in a run from the start."""
        self.nrm_scenario = scenario
        self._timeline_generation += 1
        today = self.env.now
        items = [t for t in scenario.future_timeline() if self.calendar.day(t.date) >= today]
        if items and self.calendar.day(items[0].date) == today:
            self._apply(items[0])
            items = items[1:]
        self.env.process(self._timeline(items, self._timeline_generation))

    def _derive(self) -> None:
        """Quantities that follow from the parameters in force: decision teams (Little's
        law), the NBA-era RG logits, the panel work-time scale; log capacities and unit costs
        when they change (the costs of capacity and the dated unit costs come from these)."""
        p = self.params
        rg_capacity = (
            p.rg_decision.capacity_ratio_to_referrals * p.identification.child_referrals_per_year
        )
        self.rg_queue.set_servers(
            rg_decision.servers_for(rg_capacity, p.rg_decision.mean_work_days)
        )
        cg_capacity = cg_decision.capacity_per_year(p)
        self.cg_queue.set_servers(cg_decision.servers_for_cg(cg_capacity, p))
        self.panel_scale_days = rg_decision.panel_scale_days(p.devolved_pilot)
        panel_capacity = p.devolved_pilot.capacity_per_year_per_la * p.devolved_pilot.la_count
        self.pilot_queue.set_servers(
            rg_decision.servers_for(panel_capacity, 2.0 * self.panel_scale_days)
        )
        self.nba_logits = rg_decision.nba_logits(p)
        for name, value in (("rg", rg_capacity), ("cg", cg_capacity), ("panel", panel_capacity)):
            if self._capacity_logged.get(name) != value:
                self._capacity_logged[name] = value
                self._system(Event.CAPACITY, name, value)
        for field in attrs.fields(type(p.cost)):
            value = getattr(p.cost, field.name)
            if self._costs_logged.get(field.name) != value:
                self._costs_logged[field.name] = value
                self._system(Event.UNIT_COST, field.name, value)

    def _timeline(self, items: Sequence[TimelineEntry], generation: int) -> Any:
        """SimPy process: apply each timeline entry on its date, then resize services. A
        process of an earlier ``generation`` (replaced by ``branch``) stops at its next wake."""
        for item in items:
            yield self.env.timeout(max(0.0, self.calendar.day(item.date) - self.env.now))
            if generation != self._timeline_generation:
                return
            self._apply(item)

    def _apply(self, item: TimelineEntry) -> None:
        """One timeline entry in force from now."""
        before = self.params
        hotels_before = before.policy.hotels_in_use
        self.params = self.params.with_values(item.changes)
        if hotels_before and not self.params.policy.hotels_in_use:
            self.hotels_closed.succeed()
        elif not hotels_before and self.params.policy.hotels_in_use:
            self.hotels_closed = self.env.event()
        p = self.params
        self._derive()
        for kind, pool in self.placements.items():
            pool.set_capacity(getattr(p.care, f"capacity_{kind}"))
        self.ictg_direct.set_capacity(p.guardianship.ictg_direct_caseload)
        guardianship.on_expansion(self, before)
        changed, self.params_changed = self.params_changed, self.env.event()
        changed.succeed()

    # ------------------------------------------------------------------ used by the stages
    def row(self, stream: Stream, child: Child) -> Sequence[float]:
        """The child's uniforms for this stage: the case's row for the decisions, the current
        referral's row for the processes a referral (re)starts (care, missing, guardian)."""
        if stream is Stream.MISSING:
            if child.missing_u is None:  # the first referral's stay: the run's missing table
                row: Sequence[float] = self.missing_draws.row(child.index)
                if self.audit is not None:
                    row = self.audit.wrap(row, "missing", 0, child.index)
                child.missing_u = row
            return child.missing_u
        a, b = self._offsets[stream]
        if stream in SIDE_STREAMS:
            return child.side_u[a:b]
        return child.u[a:b]

    def referral_draws(self, child: Child) -> tuple[Sequence[float], Sequence[float]]:
        """Fresh uniforms for a referral after the child's first: a stage row (laid out as the
        first referral's, each stage in its slots) and a missing-episode row, keyed by
        (child, referral number) alone, so no earlier referral's draws are replayed and the
        same referral of the same child gets the same draws in every scenario."""
        n = child.n_referrals
        row = fresh_uniforms(
            self.streams, Stream.REFERRAL, self._width + care.MISSING_SLOTS, child.index, n
        )
        stage, missing = row[: self._width], row[self._width :]
        if self.audit is None:
            return stage, missing
        return (
            self.audit.wrap(stage, "referral", child.index, n),
            self.audit.wrap(missing, "referral_missing", child.index, n),
        )

    def fresh(self, stream: Stream, n: int, *entity: int) -> Sequence[float]:
        """``n`` uniforms of one occasion keyed by ``entity`` (``model.rng.fresh_uniforms``)."""
        row = fresh_uniforms(self.streams, stream, n, *entity)
        return row if self.audit is None else self.audit.wrap(row, "fresh", int(stream), *entity)

    def record(
        self,
        child: Any,
        event: Event,
        positive: bool | int = -1,
        detail: str = "",
        value: float = math.nan,
        episode: int | None = None,
    ) -> None:
        self._rows.append(
            (
                self.env.now,
                child.unique_id,
                child.episode if episode is None else episode,
                EVENT_CODE[event],
                int(positive),
                child.route,
                detail,
                value,
            )
        )

    def record_at(
        self,
        t_days: float,
        child: Any,
        event: Event,
        positive: bool | int = -1,
        detail: str = "",
        value: float = math.nan,
        episode: int | None = None,
    ) -> None:
        """Record an event that happened at ``t_days`` (<= now); the log is sorted on output."""
        self._rows.append(
            (
                t_days,
                child.unique_id,
                child.episode if episode is None else episode,
                EVENT_CODE[event],
                int(positive),
                child.route,
                detail,
                value,
            )
        )

    def _system(self, event: Event, detail: str, value: float) -> None:
        """A system row (child_id -1): a series the metrics need (pool, capacity, unit cost)."""
        self._rows.append((self.env.now, -1, -1, EVENT_CODE[event], -1, 0, detail, value))

    def active(self, child: Child, episode: int) -> bool:
        return child.episode == episode and child.state in OPEN_STATES

    def set_state(self, child: Child, state: str) -> None:
        self.counts[child.state] -= 1
        child.state = state
        self.counts[state] += 1

    def cancel_job(self, child: Child) -> None:
        """Take the child's case out of whatever decision queue holds it."""
        if child.job is not None:
            job, child.job = child.job, None
            job.queue.cancel(job)

    def close_episode(self, child: Child, state: str) -> None:
        self.cancel_job(child)
        self.set_state(child, state)
        self.record(child, Event.CASE_CLOSED, -1, state)
        if state == "confirmed":
            child.confirmed = True
        guardianship.on_case_closed(self, child)
        self.update_hazards(child)

    def update_hazards(self, child: Child) -> None:
        """Re-read every time-varying hazard of the child after its situation changed."""
        retrafficking.update(self, child)
        justice.update(self, child)

    def start_episode(self, child: Child, kind: str = "new") -> None:
        """A referral that opens a case: route, log, start the side processes and the
        decision pathway."""
        now = self.env.now
        first = child.episode == 0
        if first:
            child.u = self.draws.row(child.index)
            if self.audit is not None:
                child.u = self.audit.wrap(child.u, "episode", 0, child.index)
            child.missing_u = None  # the missing table's row, fetched if the child is placed
        else:
            child.u, child.missing_u = self.referral_draws(child)
        child.side_u = child.u
        if first:
            identification.draw_attributes(self, child)
            care.draw_traits(self, child)
            age_dispute.draw(self, child)
            child.followup_end = child.day18 + transition.followup_days(self.params)
        child.referred_at = now
        child.episode_starts.append(now)
        child.state = "awaiting_rg"
        child.exploited = False
        self.counts["awaiting_rg"] += 1
        criminalised_now = justice.criminalise(self, child)
        child.pod_considered = disqualification.considered(self, child)
        rg_decision.at_referral(self, child)
        child.route = rg_decision.choose_route(self, child)
        self.record(child, Event.REFERRED, -1, kind)
        child.n_referrals += 1
        if first:
            age_dispute.start(self, child)
        if criminalised_now:
            self.record(child, Event.CRIMINALISED)
        if child.legal_advice:
            self.record(child, Event.LEGAL_ADVICE)
        justice.start(self, child)
        care.start(self, child)
        guardianship.start(self, child)
        retrafficking.start(self, child, first)
        if first:
            transition.schedule(self, child)
        self.update_hazards(child)
        self.env.process(referral_episode(self, child))

    def re_trafficked(self, child: Child, where: str) -> None:
        self.record(child, Event.RE_TRAFFICKED, -1, where)
        if where != "after_18":
            child.exploited = True
            care.give_up_waiting(child)  # with the exploiters: not there to be placed
            retrafficking.maybe_re_refer(self, child)
        self.update_hazards(child)

    def repeat_referral(self, child: Child) -> None:
        """A child re-trafficked and identified again. With a case open, the new instance is
        recorded on it (``linked``; the case keeps its referral date); otherwise a new episode
        opens and goes through the decisions again."""
        if child.adult or self.env.now >= child.followup_end:
            return
        if child.is_open:
            # the processes this referral restarts get its own draws, not the case's again
            child.side_u, child.missing_u = self.referral_draws(child)
            self.record(child, Event.REFERRED, -1, "linked")
            child.n_referrals += 1
            child.exploited = False
            child.missing_long_term = False
            retrafficking.restart_clock(self, child)
            care.start(self, child)
            guardianship.start(self, child)
            self.update_hazards(child)
            return
        self.counts[child.state] -= 1
        child.episode += 1
        child.missing_long_term = False
        retrafficking.restart_clock(self, child)
        self.start_episode(child, "repeat")

    def duplicate_referral(self, child: Child, episode: int) -> None:
        """A second referral about the same instance: joins the case, no new decision."""
        if child.adult or self.env.now >= child.followup_end or child.episode != episode:
            return
        self.record(child, Event.REFERRED, -1, "duplicate")
        child.n_referrals += 1


def children_frame(model: NRMModel) -> Any:
    """One row per child: attributes at first referral and the state at the end of the run."""
    import pandas as pd

    rows = (
        [
            (
                c.unique_id,
                c.index,
                c.sex,
                c.age_years,
                c.day18,
                c.nationality_group,
                c.exploitation_type,
                c.exploitation_types,
                c.nation,
                c.local_authority,
                c.has_parental_responsibility,
                c.exploited_overseas,
                c.arrived_irregularly,
                c.criminalised,
                c.guardian_kind,
                c.n_referrals,
                c.state,
                c.confirmed,
                c.removed,
                c.age_disputed,
            )
            for c in model.agents_by_type[Child]
        ]
        if Child in model.agents_by_type
        else []
    )
    columns = [
        "child_id",
        "new_child_index",
        "sex",
        "age_years_at_first_referral",
        "day18",
        "nationality_group",
        "exploitation_type",
        "exploitation_types",
        "nation",
        "local_authority",
        "has_parental_responsibility",
        "exploited_overseas",
        "arrived_irregularly",
        "criminalised",
        "guardian_kind",
        "referrals",
        "final_state",
        "confirmed",
        "removed_at_18",
        "age_disputed",
    ]
    data: dict[str, Any] = (
        dict(zip(columns, zip(*rows, strict=True), strict=True))
        if rows
        else {c: [] for c in columns}
    )
    df = pd.DataFrame(data)
    for column in ("sex", "nationality_group", "exploitation_type", "nation"):
        df[column] = df[column].astype("category")
    return df.sort_values("child_id", kind="stable").reset_index(drop=True)
