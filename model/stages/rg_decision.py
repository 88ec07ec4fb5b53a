"""Stage 2: the Reasonable Grounds (RG) decision, by the Home Office or a devolved panel.

Route: a child whose local authority is in the devolved pilot on the referral date, who is
more than ``devolved_pilot.exclusion_days_before_18`` days from 18 and is not being considered
for public-order disqualification (see ``disqualification.considered``) goes to the local
panel; everyone else to the Home Office Single Competent Authority. Both are finite-capacity
queues, so waits emerge.

The evidence standard in force on the *decision* date (``policy.decision_regime``) applies to
both routes. Home Office probability of a positive RG:

* ``pre_nba``: ``rg_decision.p_positive_pre_nba``;
* ``nba_objective`` (Jan-Jul 2023): the NBA-era rate, lower for exploitation overseas
  (``rg_decision.nba_overseas_odds_ratio``) with its mean over cases held at
  ``rg_decision.p_positive_nba`` (so the overseas effect is fitted jointly with the published
  2023 rate); a case waits ``extra_days_objective_evidence`` for evidence first (no
  decision-maker held);
* ``nba_amended`` (from Jul 2023): the same, times ``nba_amended_odds_ratio`` on the odds.

While the revised referral form is in use (``policy.referral_form_2025``, from 30 April
2025), the odds of a positive RG are multiplied by ``rg_decision.referral_form_odds_ratio``
on either route and under any test: an assumed effect (null 1) standing for the rise of the
all-ages RG positive rate in 2025 with no change in law (issue 14).

Legal advice before the RG (``policy.legal_aid_before_rg``; taken up with
``legal_aid.p_take_up``) multiplies the odds by ``legal_aid.rg_positive_odds_ratio``. A panel
decides with the Home Office probability of the same regime times
``devolved_pilot.rg_odds_ratio`` on the odds. The pilot's 45 days is a deadline, not a mean:
panel work time is gamma(2) with ``devolved_pilot.p_within_deadline`` of decisions inside
``devolved_pilot.deadline_days`` when panels have spare capacity; waits for a panel come on top.

The decision itself (positive or not, given the probability above and the child's uniform)
is a replaceable rule: ``default_rg_decision`` unless a run passes another through
``model.rules`` (``NRMModel(..., rules={"rg_decision": f}``), which is then called with an
``RGContext`` in its place.

Parameters: groups ``rg_decision``, ``devolved_pilot``, ``legal_aid``; ``policy``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import simpy
from scipy.special import gammaincinv

from model.common import DAYS_PER_YEAR
from model.common import expit as expit  # kept importable here
from model.common import logit as logit
from model.events import Event
from model.rng import Stream
from model.rules import check_decision
from model.stages import wait_for_decision

if TYPE_CHECKING:
    from model.agents import Child
    from model.params import DevolvedPilot, Params
    from model.simulation import NRMModel

HOME_OFFICE, DEVOLVED_PILOT = 1, 2
ROUTE_NAMES = {HOME_OFFICE: "home_office", DEVOLVED_PILOT: "devolved_pilot"}
RG_SLOTS = 8  # 0-1 work time, 2 decision, 3 legal advice take-up; 4-7 reserved


def servers_for(capacity_per_year: float, mean_work_days: float) -> int:
    """Case workers needed for a throughput: Little's law, capacity x time in service."""
    if capacity_per_year <= 0:
        return 0
    return max(1, round(capacity_per_year * mean_work_days / DAYS_PER_YEAR))


def overseas_share(p: Params) -> float:
    """Share of referred children exploited wholly or partly overseas (from the mix in force)."""
    i = p.identification
    uk = i.nationality["uk"]
    return uk * i.p_exploited_overseas_uk + (1.0 - uk) * i.p_exploited_overseas_non_uk


def nba_logits(p: Params) -> tuple[float, float]:
    """(domestic, overseas) logits of a positive Home Office RG under the NBA test, such that
    their mean over cases equals ``rg_decision.p_positive_nba`` (Newton's method)."""
    mean = p.rg_decision.p_positive_nba
    shift = math.log(p.rg_decision.nba_overseas_odds_ratio)
    w = overseas_share(p)
    b = logit(mean)
    for _ in range(50):
        lo, hi = expit(b), expit(b + shift)
        f = (1.0 - w) * lo + w * hi - mean
        if abs(f) < 1e-12:
            break
        b -= f / ((1.0 - w) * lo * (1.0 - lo) + w * hi * (1.0 - hi))
    return b, b + shift


def p_positive(model: NRMModel, child: Child, panel: bool) -> float:
    """Probability of a positive RG under the regime in force now (a pure function of the
    parameters in force, the child's attributes and the route)."""
    p = model.params
    regime = p.policy.decision_regime
    if regime == "pre_nba":
        x = logit(p.rg_decision.p_positive_pre_nba)
    else:
        x = model.nba_logits[1 if child.exploited_overseas else 0]
        if regime == "nba_amended":
            x += math.log(p.rg_decision.nba_amended_odds_ratio)
    if p.policy.referral_form_2025:
        x += math.log(p.rg_decision.referral_form_odds_ratio)
    if child.legal_advice:
        x += math.log(p.legal_aid.rg_positive_odds_ratio)
    if panel:
        x += math.log(p.devolved_pilot.rg_odds_ratio)
    return expit(x)


def panel_scale_days(pilot: DevolvedPilot) -> float:
    """Scale of the gamma(2) panel work time that puts ``p_within_deadline`` of decisions
    inside ``deadline_days``."""
    return pilot.deadline_days / float(gammaincinv(2.0, pilot.p_within_deadline))


def panel_work_days(model: NRMModel, u1: float, u2: float) -> float:
    """A gamma(2) draw: the sum of two exponentials of the panel scale."""
    return -model.panel_scale_days * (math.log1p(-u1) + math.log1p(-u2))


def at_referral(model: NRMModel, child: Child) -> None:
    """Whether the child gets legal advice before the RG (if the policy offers it)."""
    p = model.params
    u = model.row(Stream.RG, child)
    child.legal_advice = p.policy.legal_aid_before_rg and u[3] < p.legal_aid.p_take_up


def choose_route(model: NRMModel, child: Child) -> int:
    pilot = model.params.devolved_pilot
    if not model.local_authorities.in_pilot(child.local_authority, pilot.la_count):
        return HOME_OFFICE
    if child.day18 - model.env.now <= pilot.exclusion_days_before_18:
        return HOME_OFFICE
    if child.pod_considered:
        return HOME_OFFICE  # children being considered for disqualification are excluded
    if child.age_disputed and model.env.now < child.age_assessed_at:
        return HOME_OFFICE  # age-disputed young people are excluded (ecpat-2024-pilot-evaluation)
    return DEVOLVED_PILOT


@dataclass(frozen=True, slots=True)
class RGContext:
    """What a Reasonable Grounds decision rule sees (read it; do not change the child).

    Attributes:
        child: the child (``model.agents.Child``): attributes drawn at first referral
            (``sex``, ``age_years``, ``nationality_group``, ``exploitation_type``,
            ``exploited_overseas``, ``nation``, ``legal_advice``, ``day18``, ...).
        day: the decision day (days since the simulation start, ``model.env.now``).
        date: the decision date.
        route: ``"home_office"`` or ``"devolved_pilot"``.
        regime: the evidence standard in force (``policy.decision_regime``).
        params: the parameters in force on the decision date (``model.params.Params``).
        p_positive: the package's probability of a positive decision for this child now.
        u: the child's own uniform on [0, 1) for this decision (the one the default rule
            uses), so runs with and without a replacement share it (common random numbers).
    """

    child: Child
    day: float
    date: dt.date
    route: str
    regime: str
    params: Params
    p_positive: float
    u: float


def default_rg_decision(ctx: RGContext) -> bool:
    """The package's rule: positive with probability ``ctx.p_positive``."""
    return ctx.u < ctx.p_positive


def decide(model: NRMModel, child: Child) -> Generator[simpy.Event, Any, bool | None]:
    """Queue for a decision-maker, then decide. Returns None if the case closed meanwhile."""
    u = model.row(Stream.RG, child)
    panel = child.route == DEVOLVED_PILOT
    if panel:
        work, queue = panel_work_days(model, u[0], u[1]), model.pilot_queue
    else:
        p = model.params.rg_decision
        work, queue = -p.mean_work_days * math.log1p(-u[0]), model.rg_queue
        if model.params.policy.decision_regime == "nba_objective":
            episode = child.episode  # waiting for evidence, not for a decision-maker
            yield model.env.timeout(p.extra_days_objective_evidence)
            if not model.active(child, episode):
                return None
    if not (yield from wait_for_decision(model, child, queue, work)):
        return None
    rule = model.rules.get("rg_decision")
    if rule is None:
        positive = u[2] < p_positive(model, child, panel)
    else:
        ctx = RGContext(
            child,
            model.env.now,
            model.calendar.date(model.env.now),
            ROUTE_NAMES[child.route],
            model.params.policy.decision_regime,
            model.params,
            p_positive(model, child, panel),
            u[2],
        )
        positive = check_decision("rg_decision", rule, rule(ctx))
    model.record(child, Event.RG_DECIDED, positive, model.params.policy.decision_regime)
    return positive
