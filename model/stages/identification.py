"""Stage 1: exploitation, identification and referral into the NRM.

Exploitation begins before anyone notices. Exploited children wait in an **unidentified pool**
until a first responder refers them (rate ``1 / identification.mean_years_to_identification``
times ``identification.awareness_multiplier``), or leave childhood unidentified
(``identification.unidentified_exit_rate_per_year``). Nobody observes this pool child by
child, so it is a compartment integrated on a daily grid (``Pool``), while every referred
child is an agent.

At the observed identification rate the referral stream is the published one: new children
arrive as a Poisson process at ``child_referrals_per_year x (1 - repeat_share_of_referrals)``
(repeat referrals come from the re-trafficking stage). A faster identification rate
(``awareness_multiplier > 1``, the earlier-identification lever) drains the pool faster:
referrals rise by ``awareness x pool / pool_at_observed_rate``, first sharply then towards a
new steady level, and the child-days exploited unidentified fall. Harm accrues in the pool and
while a re-trafficked child waits to be identified again (``child_days_exploited_unidentified``).

Parameters (group ``identification``): child_referrals_per_year, repeat_share_of_referrals,
awareness_multiplier, mean_years_to_identification, unidentified_exit_rate_per_year, sex,
age_band, youngest_age_years, nationality, exploitation_male, exploitation_female, nation,
p_parental_responsibility_uk, p_parental_responsibility_non_uk, p_exploited_overseas_uk,
p_exploited_overseas_non_uk, p_arrived_irregularly_non_uk; group ``local_authorities``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from model.agents import Child
from model.common import DAYS_PER_YEAR
from model.events import Event
from model.params import EXPLOITATION_TYPES, NATIONS, Params, Share
from model.rng import Stream

if TYPE_CHECKING:
    from model.simulation import NRMModel

SINGLE_TYPES = tuple(t for t in EXPLOITATION_TYPES if t != "mixed")
AGE_BANDS = {"0-11": (None, 12.0), "12-14": (12.0, 15.0), "15-17": (15.0, 18.0)}
ATTRIBUTE_SLOTS = 16  # 12 used; the rest reserved so a new attribute does not move others


class LocalAuthorities:
    """Synthetic local authorities: how many per nation, their relative referral volumes,
    and the fixed order in which ICTG coverage and the devolved pilot reach them. ICTG
    coverage is a share of England-and-Wales referral volume, so the covered share of
    children does not depend on which (large or small) LAs happen to come first.

    Assumptions:
        LAs are anonymous; referral weights are log-normal (``local_authorities.weight_sigma``);
        rollout order is random but fixed for a root seed (the same in every replicate).
    """

    def __init__(self, model: NRMModel) -> None:
        p = model.params.local_authorities
        rng = np.random.default_rng(model.streams.structural_seed(Stream.LOCAL_AUTHORITIES))
        counts = {n: int(getattr(p, f"count_{n}")) for n in NATIONS}
        self.nation_of: list[str] = []
        self.cum_by_nation: dict[str, tuple[int, list[float]]] = {}
        for nation in NATIONS:
            first = len(self.nation_of)
            self.nation_of += [nation] * counts[nation]
            w = rng.lognormal(0.0, p.weight_sigma, counts[nation])
            self.cum_by_nation[nation] = (first, (np.cumsum(w) / w.sum()).tolist())
        n = len(self.nation_of)
        ew = [i for i in range(n) if self.nation_of[i] in ("england", "wales")]
        # each LA's share of England-and-Wales referrals (nation share x weight within nation)
        nation_share = model.params.identification.nation
        ew_total = nation_share["england"] + nation_share["wales"] or 1.0  # none: no ICTG use
        volume = [0.0] * n
        for nation in ("england", "wales"):
            first, cum = self.cum_by_nation[nation]
            prev = 0.0
            for k, c in enumerate(cum):
                volume[first + k] = nation_share[nation] / ew_total * (c - prev)
                prev = c
        # rank of each LA in the ICTG rollout (England and Wales only) and the pilot rollout;
        # ``ictg_reach`` is the share of E&W referrals covered once rollout reaches that LA
        # (measured at the LA's midpoint, so coverage share s covers about s of referrals)
        self.n_england_wales = len(ew)
        self.ictg_rank = [n] * n
        self.ictg_reach = [2.0] * n
        done = 0.0
        for rank, la in enumerate(rng.permutation(ew).tolist()):
            self.ictg_rank[la] = rank
            self.ictg_reach[la] = done + volume[la] / 2.0
            done += volume[la]
        pilot_eligible = [i for i in range(n) if self.nation_of[i] != "northern_ireland"]
        self.pilot_rank = [n] * n
        for rank, la in enumerate(rng.permutation(pilot_eligible).tolist()):
            self.pilot_rank[la] = rank

    def pick(self, nation: str, u: float) -> int:
        first, cum = self.cum_by_nation[nation]
        return first + min(bisect.bisect_right(cum, u), len(cum) - 1)

    def ictg_covered(self, la: int, coverage_share: float) -> bool:
        """Whether the LA is inside an ICTG site when sites cover ``coverage_share`` of
        England-and-Wales child referrals (LAs join in the fixed rollout order)."""
        return self.ictg_reach[la] < coverage_share

    def in_pilot(self, la: int, pilot_la_count: int) -> bool:
        return self.pilot_rank[la] < pilot_la_count


# --------------------------------------------------------------------------- the pool
def published_new_child_rate(p: Params) -> float:
    """New children referred a year at the observed identification rate."""
    i = p.identification
    return i.child_referrals_per_year * (1.0 - i.repeat_share_of_referrals)


def pool_step(
    pool: float, inflow_per_year: float, outflow_rate_per_year: float, days: float
) -> float:
    """Exact solution of dP/dt = inflow - rate * P over ``days`` (rates per year)."""
    if outflow_rate_per_year <= 0.0:
        return pool + inflow_per_year * days / DAYS_PER_YEAR
    steady = inflow_per_year / outflow_rate_per_year
    return steady + (pool - steady) * math.exp(-outflow_rate_per_year * days / DAYS_PER_YEAR)


class Pool:
    """Exploited children not yet identified: a compartment with the observed identification
    rate (``reference``) and the one in force (``size``), integrated day by day.

    Onset inflow is what keeps the reference pool at ``referrals / identification rate``, so
    at the observed rate the pool implies exactly the published referral stream.
    """

    def __init__(self, model: NRMModel) -> None:
        self.model = model
        p = model.params.identification
        h0 = 1.0 / p.mean_years_to_identification
        self.reference = published_new_child_rate(model.params) / h0
        self.size = self.reference
        self.onsets = 0.0  # cumulative, for the balance check
        self.identified = 0.0
        self.left_unidentified = 0.0
        self.start_size = self.size

    @property
    def referral_factor(self) -> float:
        """New-child referral rate relative to the published one."""
        if self.reference <= 0.0:
            return 1.0
        m = self.model.params.identification.awareness_multiplier
        return m * self.size / self.reference

    def run(self) -> Generator[simpy.Event, Any, None]:
        """SimPy process: one step a day; records the pool size (child-days) each day."""
        model = self.model
        env = model.env
        while env.now < model.end_day:
            p = model.params.identification
            h0 = 1.0 / p.mean_years_to_identification
            a = p.unidentified_exit_rate_per_year
            m = p.awareness_multiplier
            target = published_new_child_rate(model.params) / h0
            inflow = (h0 + a) * target  # onsets per year
            model._system(Event.POOL_SIZE, "", self.size)
            before = self.size
            self.reference = pool_step(self.reference, inflow, h0 + a, 1.0)
            self.size = pool_step(self.size, inflow, m * h0 + a, 1.0)
            mean = 0.5 * (before + self.size)
            self.onsets += inflow / DAYS_PER_YEAR
            self.identified += m * h0 * mean / DAYS_PER_YEAR
            self.left_unidentified += a * mean / DAYS_PER_YEAR
            yield env.timeout(1.0)


def arrivals(model: NRMModel) -> Generator[simpy.Event, Any, None]:
    """SimPy process: new children referred at the rate in force; stops at the run end."""
    env = model.env
    rng = model.streams.rng(Stream.ARRIVALS)
    gaps: list[float] = []
    index = 0
    while True:
        rate = published_new_child_rate(model.params) * model.pool.referral_factor / DAYS_PER_YEAR
        if rate <= 0:
            yield model.params_changed
            continue
        if not gaps:
            gaps = rng.standard_exponential(4096).tolist()
            gaps.reverse()
        yield env.timeout(gaps.pop() / rate)
        if env.now >= model.end_day:
            return
        child = Child(model, index)
        index += 1
        model.start_episode(child)


# --------------------------------------------------------------------------- attributes
def draw_attributes(model: NRMModel, child: Child) -> None:
    """Draw the child's attributes from the mix in force at referral (one table row)."""
    p = model.params.identification
    u = model.row(Stream.ATTRIBUTES, child)
    child.sex = p.sex.pick(u[0])
    band = p.age_band.pick(u[1])
    lo, hi = AGE_BANDS[band]
    lo = p.youngest_age_years if lo is None else lo
    child.age_years = lo + (hi - lo) * u[2]
    child.day18 = model.env.now + (18.0 - child.age_years) * DAYS_PER_YEAR
    child.nationality_group = p.nationality.pick(u[3])
    mix = p.exploitation_male if child.sex == "male" else p.exploitation_female
    primary = mix.pick(u[4])
    child.exploitation_type = primary
    if primary == "mixed":
        child.exploitation_types = "+".join(sorted(two_types(mix, u[5], u[6])))
    else:
        child.exploitation_types = primary
    child.nation = p.nation.pick(u[7])
    child.local_authority = model.local_authorities.pick(child.nation, u[8])
    uk = child.nationality_group == "uk"
    p_pr = p.p_parental_responsibility_uk if uk else p.p_parental_responsibility_non_uk
    child.has_parental_responsibility = u[9] < p_pr
    p_over = p.p_exploited_overseas_uk if uk else p.p_exploited_overseas_non_uk
    child.exploited_overseas = u[10] < p_over
    child.arrived_irregularly = (not uk) and u[11] < p.p_arrived_irregularly_non_uk


def two_types(mix: Share, u1: float, u2: float) -> tuple[str, str]:
    """Two distinct single types for a 'mixed' child, drawn from the same sex-specific mix
    (without replacement), so a mixed case looks like the single-type cases of its group."""
    weights = [mix[t] for t in SINGLE_TYPES]
    first = _weighted(weights, u1)
    rest = [0.0 if i == first else w for i, w in enumerate(weights)]
    second = _weighted(rest, u2)
    return SINGLE_TYPES[first], SINGLE_TYPES[second]


def _weighted(weights: list[float], u: float) -> int:
    total = sum(weights)
    if total <= 0:
        return min(int(u * len(weights)), len(weights) - 1)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w / total
        if u < acc and w > 0:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)
