"""The parameter schema: every parameter's type, unit and role, declared once in code.

Values and their provenance (source, locator, plausible range, null) live in
``scenarios/baseline.toml``; this module says what may be set there and what each value
means. Nothing here has a default: a number without a cited source cannot slip in.

Roles (issue 9, after EMA Workbench's XLRM framing):

* ``lever``: what a policy changes (scenario files set it on a date);
* ``uncertain``: an assumption with a plausible range, or a value fitted by calibration;
  sweeps vary these by default;
* ``fixed``: taken from a source; varied only on request.

``effect=True`` marks the size of an assumed effect (a hazard ratio, an odds ratio, a
multiplier, a share that switches a mechanism on). ``baseline.toml`` must give each one a
``null``: the value at which the mechanism does nothing (``--effects null`` sets them all).

Why attrs: frozen, slotted classes keep the hot-path reads (``params.care.x``) plain attribute
lookups, ``attrs.evolve`` makes a timeline change a cheap copy, mypy understands the classes,
and validation stays in ``model.scenario`` where errors can name the file and key.
"""

from __future__ import annotations

import bisect
import datetime as dt
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

import attrs

Role = Literal["lever", "uncertain", "fixed"]
ROLES: tuple[str, ...] = get_args(Role)
_SPEC = "nrmsim"


@dataclass(frozen=True, slots=True)
class Share:
    """A categorical distribution: category -> share, summing to 1. Picks by inverse CDF."""

    keys: tuple[str, ...]
    probs: tuple[float, ...]
    cum: tuple[float, ...]

    @classmethod
    def of(cls, mapping: Mapping[str, float]) -> Share:
        keys = tuple(mapping)
        probs = tuple(float(mapping[k]) for k in keys)
        total, cum = sum(probs), []
        acc = 0.0
        for p in probs:
            acc += p
            cum.append(acc / total)
        cum[-1] = 1.0
        return cls(keys, probs, tuple(cum))

    def pick(self, u: float) -> str:
        """Category for a uniform draw ``u`` in [0, 1)."""
        return self.keys[bisect.bisect_right(self.cum, u)]

    def __getitem__(self, key: str) -> float:
        return self.probs[self.keys.index(key)]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.keys, self.probs, strict=True))


@dataclass(frozen=True, slots=True)
class Spec:
    unit: str
    role: str
    doc: str
    effect: bool = False
    categories: tuple[str, ...] = ()


def param(unit: str, role: Role, doc: str = "", *, effect: bool = False) -> Any:
    """A parameter field (no default): its unit, role and meaning."""
    return attrs.field(metadata={_SPEC: Spec(unit, role, doc, effect)})


def share(categories: tuple[str, ...], role: Role, doc: str = "") -> Any:
    """A categorical-share field whose categories the engine knows."""
    return attrs.field(metadata={_SPEC: Spec("share", role, doc, False, categories)})


# ------------------------------------------------------------------ choices the engine knows
DecisionRegime = Literal["pre_nba", "nba_objective", "nba_amended"]
PodPolicy = Literal["none", "s63_original", "paused", "s63_revised"]

SEXES = ("female", "male")
AGE_BANDS = ("0-11", "12-14", "15-17")
NATIONALITIES = ("uk", "albania", "vietnam", "eritrea", "sudan", "afghanistan", "other")
EXPLOITATION_TYPES = ("criminal", "sexual", "labour", "domestic_servitude", "mixed")
NATIONS = ("england", "wales", "scotland", "northern_ireland")
PLACEMENT_TYPES = ("foster", "childrens_home", "supported_accommodation", "secure", "hotel")


# ------------------------------------------------------------------ groups
@attrs.frozen(slots=True)
class Policy:
    """Which rules are in force (set on their dates by timeline entries)."""

    decision_regime: DecisionRegime = param("choice", "lever", "RG evidence standard")
    pod_policy: PodPolicy = param("choice", "lever", "public-order disqualification policy")
    ima_in_force: bool = param("flag", "lever", "Illegal Migration Act 2023 provisions commenced")
    hotels_in_use: bool = param("flag", "lever", "Home Office hotels for unaccompanied children")
    reconsideration_window_days: float = param("days", "lever", "time allowed for a request")


@attrs.frozen(slots=True)
class Identification:
    """Stage 1: who is referred, and with which attributes."""

    child_referrals_per_year: float = param("children/year", "uncertain", "referral rate")
    repeat_share_of_referrals: float = param("probability", "fixed", "repeat share")
    awareness_multiplier: float = param("factor", "lever", "identification multiplier")
    sex: Share = share(SEXES, "fixed")
    age_band: Share = share(AGE_BANDS, "fixed")
    youngest_age_years: float = param("years", "uncertain")
    nationality: Share = share(NATIONALITIES, "fixed")
    exploitation_male: Share = share(EXPLOITATION_TYPES, "fixed")
    exploitation_female: Share = share(EXPLOITATION_TYPES, "fixed")
    nation: Share = share(NATIONS, "uncertain")
    p_parental_responsibility_uk: float = param("probability", "uncertain")
    p_parental_responsibility_non_uk: float = param("probability", "uncertain")
    p_exploited_overseas_uk: float = param("probability", "uncertain")
    p_exploited_overseas_non_uk: float = param("probability", "uncertain")


@attrs.frozen(slots=True)
class LocalAuthorities:
    """Synthetic local authorities (rollout order of ICTGs and the pilot)."""

    count_england: int = param("count", "fixed")
    count_wales: int = param("count", "fixed")
    count_scotland: int = param("count", "fixed")
    count_northern_ireland: int = param("count", "fixed")
    weight_sigma: float = param("factor", "uncertain", "log-normal spread of LA volumes")


@attrs.frozen(slots=True)
class RgDecision:
    """Stage 2: Home Office Reasonable Grounds decisions."""

    capacity_ratio_to_referrals: float = param("factor", "uncertain")
    mean_work_days: float = param("days", "uncertain")
    extra_days_objective_evidence: float = param("days", "uncertain")
    p_positive_pre_nba: float = param("probability", "fixed")
    p_positive_nba: float = param("probability", "uncertain")
    nba_amended_odds_ratio: float = param("odds ratio", "uncertain", effect=True)


@attrs.frozen(slots=True)
class DevolvedPilot:
    """Stage 2: devolved local panels."""

    la_count: int = param("count", "lever")
    exclusion_days_before_18: float = param("days", "lever")
    capacity_per_year_per_la: float = param("decisions/year", "uncertain")
    mean_work_days: float = param("days", "uncertain")
    p_rg_positive: float = param("probability", "uncertain")
    p_cg_positive: float = param("probability", "uncertain")
    p_cg_same_meeting: float = param("probability", "uncertain")


@attrs.frozen(slots=True)
class Disqualification:
    """Stage 3: public-order disqualification."""

    p_if_criminalised_original: float = param("probability", "uncertain")
    p_if_criminalised_revised: float = param("probability", "uncertain")
    p_ima_irregular_arrival: float = param("probability", "uncertain")


@attrs.frozen(slots=True)
class CgDecision:
    """Stage 4: recovery period and Conclusive Grounds decisions."""

    min_recovery_days: float = param("days", "lever")
    capacity_per_year: float = param("decisions/year", "fixed")
    capacity_multiplier: float = param("factor", "uncertain")
    mean_work_days: float = param("days", "uncertain")
    p_positive_pre_nba: float = param("probability", "fixed")
    p_positive_nba: float = param("probability", "uncertain")


@attrs.frozen(slots=True)
class Reconsideration:
    """Stage 5: reconsideration of negative decisions."""

    p_request_rg: float = param("probability", "uncertain")
    p_request_cg: float = param("probability", "uncertain")
    mean_days_to_prepare: float = param("days", "uncertain")
    mean_days_to_decide: float = param("days", "uncertain")
    p_overturned: float = param("probability", "fixed")


@attrs.frozen(slots=True)
class Care:
    """Stage 6: placements and going missing."""

    p_placed_separated: float = param("probability", "uncertain")
    p_placed_with_parental_responsibility: float = param("probability", "uncertain")
    mean_stay_days_with_parental_responsibility: float = param("days", "uncertain")
    p_hotel_if_separated_non_uk: float = param("probability", "uncertain")
    type_under_16: Share = share(PLACEMENT_TYPES, "uncertain")
    type_16_17: Share = share(PLACEMENT_TYPES, "uncertain")
    capacity_foster: int = param("count", "uncertain")
    capacity_childrens_home: int = param("count", "uncertain")
    capacity_supported_accommodation: int = param("count", "uncertain")
    capacity_secure: int = param("count", "uncertain")
    capacity_hotel: int = param("count", "lever")
    missing_rate_foster: float = param("per year", "uncertain")
    missing_rate_childrens_home: float = param("per year", "uncertain")
    missing_rate_supported_accommodation: float = param("per year", "uncertain")
    missing_rate_secure: float = param("per year", "uncertain")
    missing_rate_hotel: float = param("per year", "uncertain")
    missing_prone_share: float = param("probability", "uncertain")
    missing_prone_rate_ratio: float = param("factor", "uncertain")
    mean_missing_days: float = param("days", "uncertain")
    p_re_trafficked_per_missing_episode: float = param("probability", "uncertain")


@attrs.frozen(slots=True)
class Guardianship:
    """Stage 7: ICTGs, Guardianship Scotland, the Northern Ireland service."""

    ictg_coverage_share: float = param("probability", "lever")
    p_referred_to_ictg: float = param("probability", "uncertain")
    ictg_direct_caseload: int = param("count", "uncertain")
    ictg_indirect_support: bool = param("flag", "lever")
    max_support_days: float = param("days", "lever")
    post18_support_days: float = param("days", "lever")
    missing_hazard_ratio_direct: float = param("factor", "uncertain", effect=True)
    scotland_service: bool = param("flag", "lever")
    northern_ireland_service: bool = param("flag", "lever")


@attrs.frozen(slots=True)
class Justice:
    """Stage 8: criminalisation of children; investigations of exploiters."""

    p_criminalised_if_criminal: float = param("probability", "uncertain")
    p_investigation: float = param("probability", "uncertain")
    mean_days_to_investigation: float = param("days", "uncertain")
    p_charged: float = param("probability", "uncertain")
    mean_days_to_charge: float = param("days", "uncertain")
    mean_days_charge_to_outcome: float = param("days", "uncertain")
    p_convicted: float = param("probability", "fixed")


@attrs.frozen(slots=True)
class Leave:
    """Stage 9: immigration leave for confirmed victims."""

    p_grant_confirmed_child: float = param("probability", "lever")
    mean_days_to_grant: float = param("days", "uncertain")


@attrs.frozen(slots=True)
class Transition:
    """Stage 10a: turning 18 with a case open."""

    p_withdrawn: float = param("probability", "fixed")
    p_suspended: float = param("probability", "fixed")


@attrs.frozen(slots=True)
class Retrafficking:
    """Stage 10b: re-trafficking and repeat referral."""

    rate_per_year_open_case: float = param("per year", "uncertain")
    rate_per_year_after_exit: float = param("per year", "uncertain")
    rate_per_year_confirmed: float = param("per year", "uncertain")
    p_re_referred: float = param("probability", "uncertain")
    mean_days_to_re_referral: float = param("days", "uncertain")


@attrs.frozen(slots=True)
class Cost:
    """Unit costs (GBP), applied on the date a cost is incurred."""

    per_day_foster: float = param("gbp/day", "uncertain")
    per_day_childrens_home: float = param("gbp/day", "uncertain")
    per_day_supported_accommodation: float = param("gbp/day", "uncertain")
    per_day_secure: float = param("gbp/day", "uncertain")
    per_day_hotel: float = param("gbp/day", "uncertain")
    per_rg_decision: float = param("gbp/case", "uncertain")
    per_cg_decision: float = param("gbp/case", "uncertain")
    per_ictg_direct_day: float = param("gbp/day", "uncertain")
    per_ictg_indirect_case: float = param("gbp/case", "uncertain")
    per_missing_episode: float = param("gbp/case", "uncertain")
    per_prosecution: float = param("gbp/case", "uncertain")


@attrs.frozen(slots=True)
class Params:
    """All parameter values in force at one moment. Immutable; ``with_values`` copies."""

    policy: Policy
    identification: Identification
    local_authorities: LocalAuthorities
    rg_decision: RgDecision
    devolved_pilot: DevolvedPilot
    disqualification: Disqualification
    cg_decision: CgDecision
    reconsideration: Reconsideration
    care: Care
    guardianship: Guardianship
    justice: Justice
    leave: Leave
    transition: Transition
    retrafficking: Retrafficking
    cost: Cost

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> Params:
        """Build from ``{"group.name": value}``; every schema key must be present."""
        by_group: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
        for key, value in flat.items():
            group, name = key.split(".", 1)
            by_group[group][name] = value
        return cls(**{g: GROUPS[g](**values) for g, values in by_group.items()})

    def with_values(self, changes: Mapping[str, Any]) -> Params:
        """A copy with ``{"group.name": value}`` changes applied (values already validated)."""
        by_group: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            group, name = key.split(".", 1)
            by_group.setdefault(group, {})[name] = value
        return attrs.evolve(
            self, **{g: attrs.evolve(getattr(self, g), **v) for g, v in by_group.items()}
        )

    @property
    def flat(self) -> dict[str, Any]:
        return {key: getattr(getattr(self, f.group), f.name) for key, f in SCHEMA.items()}

    def get(self, key: str) -> Any:
        group, name = key.split(".", 1)
        return getattr(getattr(self, group), name)


# ------------------------------------------------------------------ the registry
@dataclass(frozen=True, slots=True)
class Field:
    """One parameter of the schema, with everything known about it in code."""

    key: str
    group: str
    name: str
    kind: str  # float | int | bool | date | choice | share
    unit: str
    role: str
    doc: str
    effect: bool
    choices: tuple[str, ...]
    categories: tuple[str, ...]


GROUPS: dict[str, type] = {
    f.name: typing.get_type_hints(Params)[f.name] for f in attrs.fields(Params)
}
_KINDS = {float: "float", int: "int", bool: "bool", dt.date: "date", Share: "share"}


def _fields() -> Iterator[Field]:
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        for f in attrs.fields(cls):
            spec: Spec = f.metadata[_SPEC]
            hint = hints[f.name]
            if get_origin(hint) is Literal:
                kind, choices = "choice", tuple(str(c) for c in get_args(hint))
            else:
                kind, choices = _KINDS[hint], ()
            yield Field(
                f"{group}.{f.name}", group, f.name, kind, spec.unit, spec.role, spec.doc,
                spec.effect, choices, spec.categories,
            )  # fmt: skip


SCHEMA: dict[str, Field] = {f.key: f for f in _fields()}
