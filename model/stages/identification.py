"""Stage 1: exploitation, identification and referral into the NRM.

New children arrive as a Poisson process whose rate is read from the parameters in force
(``identification.child_referrals_per_year``, changed by timeline entries each year).
Repeat referrals are not generated here: they come from the re-trafficking stage, so the
rate of new children is the published total minus the expected repeat share.

Parameters (group ``identification``): child_referrals_per_year, repeat_share_of_referrals,
awareness_multiplier, sex, age_band, youngest_age_years, nationality, exploitation_male,
exploitation_female, nation, p_parental_responsibility_uk,
p_parental_responsibility_non_uk, p_exploited_overseas_uk, p_exploited_overseas_non_uk,
and group ``local_authorities``.
"""

from __future__ import annotations

import bisect
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from model.agents import Child
from model.calendar import DAYS_PER_YEAR
from model.params import Share
from model.rng import Stream

if TYPE_CHECKING:
    from model.simulation import NRMModel

NATIONS = ("england", "wales", "scotland", "northern_ireland")
SINGLE_TYPES = ("criminal", "sexual", "labour", "domestic_servitude")
AGE_BANDS = {"0-11": (None, 12.0), "12-14": (12.0, 15.0), "15-17": (15.0, 18.0)}
ATTRIBUTE_SLOTS = 11


class LocalAuthorities:
    """Synthetic local authorities: how many per nation, their relative referral volumes,
    and the fixed order in which ICTG coverage and the devolved pilot reach them.

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
        # rank of each LA in the ICTG rollout (England and Wales only) and the pilot rollout
        self.n_england_wales = len(ew)
        self.ictg_rank = [n] * n
        for rank, la in enumerate(rng.permutation(ew).tolist()):
            self.ictg_rank[la] = rank
        pilot_eligible = [i for i in range(n) if self.nation_of[i] != "northern_ireland"]
        self.pilot_rank = [n] * n
        for rank, la in enumerate(rng.permutation(pilot_eligible).tolist()):
            self.pilot_rank[la] = rank

    def pick(self, nation: str, u: float) -> int:
        first, cum = self.cum_by_nation[nation]
        return first + min(bisect.bisect_right(cum, u), len(cum) - 1)

    def ictg_covered(self, la: int, coverage_share: float) -> bool:
        return self.ictg_rank[la] < coverage_share * self.n_england_wales

    def in_pilot(self, la: int, pilot_la_count: int) -> bool:
        return self.pilot_rank[la] < pilot_la_count


def new_child_rate_per_day(model: NRMModel) -> float:
    p = model.params.identification
    return (
        p.child_referrals_per_year
        * p.awareness_multiplier
        * (1.0 - p.repeat_share_of_referrals)
        / DAYS_PER_YEAR
    )


def arrivals(model: NRMModel) -> Generator[simpy.Event, Any, None]:
    """SimPy process: new children referred at the rate in force; stops at the run end."""
    env = model.env
    rng = model.streams.rng(Stream.ARRIVALS)
    gaps: list[float] = []
    index = 0
    while True:
        rate = new_child_rate_per_day(model)
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
