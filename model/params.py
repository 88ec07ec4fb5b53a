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

from model.common import PLACEMENT_TYPES as PLACEMENT_TYPES

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
CgRegime = Literal["pre_nba", "nba"]
PodPolicy = Literal["none", "s63_original", "paused", "s63_revised"]
ReconsiderationPolicy = Literal["pre_feb_2024", "feb_2024"]

SEXES = ("female", "male")
AGE_BANDS = ("0-11", "12-14", "15-17")
NATIONALITIES = ("uk", "albania", "vietnam", "eritrea", "sudan", "afghanistan", "other")
EXPLOITATION_TYPES = ("criminal", "sexual", "labour", "domestic_servitude", "mixed")
NATIONS = ("england", "wales", "scotland", "northern_ireland")
GUARDIAN_KINDS = (
    "ictg_direct",
    "ictg_indirect",
    "scottish_guardianship",
    "ni_independent_guardian",
)


# ------------------------------------------------------------------ groups
@attrs.frozen(slots=True)
class Policy:
    """Which rules are in force (set on their dates by timeline entries)."""

    decision_regime: DecisionRegime = param("choice", "lever", "RG evidence standard (s.60 NBA)")
    cg_regime: CgRegime = param("choice", "lever", "CG standard: before or after Jan 2023")
    pod_policy: PodPolicy = param("choice", "lever", "public-order disqualification (s.63 NBA)")
    ima_in_force: bool = param("flag", "lever", "Illegal Migration Act 2023 provisions commenced")
    hotels_in_use: bool = param("flag", "lever", "Home Office hotels for unaccompanied children")
    unregulated_accommodation: bool = param(
        "flag", "lever", "supported (formerly unregulated) accommodation used for 16-17s"
    )
    reconsideration_policy: ReconsiderationPolicy = param(
        "choice", "lever", "reconsideration criteria: before or from Feb 2024"
    )
    reconsideration_window_days: float = param("days", "lever", "time allowed for a request")
    legal_aid_before_rg: bool = param("flag", "lever", "legal advice offered before the RG")
    referral_form_2025: bool = param(
        "flag", "lever", "the revised NRM referral form (from 30 Apr 2025) is in use"
    )
    age_benefit_of_doubt: bool = param(
        "flag", "lever", "age-disputed children placed in care pending the age assessment"
    )


@attrs.frozen(slots=True)
class Identification:
    """Stage 1: who is exploited, who is referred, and with which attributes."""

    child_referrals_per_year: float = param("children/year", "uncertain", "published referrals")
    repeat_share_of_referrals: float = param("probability", "fixed", "repeat share of referrals")
    awareness_multiplier: float = param(
        "factor", "lever", "identification rate relative to as observed", effect=True
    )
    mean_years_to_identification: float = param(
        "years", "uncertain", "mean time from exploitation onset to referral"
    )
    unidentified_exit_rate_per_year: float = param(
        "per year", "uncertain", "rate an unidentified exploited child leaves childhood (18)"
    )
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
    p_arrived_irregularly_non_uk: float = param(
        "probability", "uncertain", "non-UK children who arrived irregularly (IMA cohort)"
    )


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

    capacity_ratio_to_referrals: float = param("factor", "uncertain", "RG capacity / referrals")
    mean_work_days: float = param("days", "uncertain")
    extra_days_objective_evidence: float = param("days", "uncertain")
    p_positive_pre_nba: float = param("probability", "fixed")
    p_positive_nba: float = param("probability", "uncertain", "mean NBA-era RG positive rate")
    nba_amended_odds_ratio: float = param("odds ratio", "uncertain", effect=True)
    nba_overseas_odds_ratio: float = param(
        "odds ratio", "uncertain", "NBA test: overseas vs domestic exploitation", effect=True
    )
    referral_form_odds_ratio: float = param(
        "odds ratio",
        "uncertain",
        "positive RG odds while policy.referral_form_2025 is in force",
        effect=True,
    )


@attrs.frozen(slots=True)
class DevolvedPilot:
    """Stage 2 and 4: devolved local panels."""

    la_count: int = param("count", "lever", "local authorities whose panels decide in the pilot")
    exclusion_days_before_18: float = param(
        "days", "lever", "a child this close to 18 at referral stays with the Home Office"
    )
    capacity_per_year_per_la: float = param("decisions/year", "uncertain")
    deadline_days: float = param("days", "fixed", "decision due within this many days")
    p_within_deadline: float = param("probability", "uncertain", "share decided by the deadline")
    rg_odds_ratio: float = param("odds ratio", "uncertain", "panel vs Home Office", effect=True)
    cg_odds_ratio: float = param("odds ratio", "uncertain", "panel vs Home Office", effect=True)
    p_cg_same_meeting: float = param("probability", "uncertain")
    mean_days_to_panel_cg: float = param(
        "days", "uncertain", "from a panel's positive RG to its CG taken with it (reports, meeting)"
    )


@attrs.frozen(slots=True)
class Disqualification:
    """Stage 3: public-order disqualification (s.63 NBA; s.29 IMA)."""

    p_considered_if_criminalised: float = param(
        "probability", "uncertain", "criminal record qualifying for POD consideration"
    )
    p_if_considered_original: float = param("probability", "uncertain")
    p_if_considered_revised: float = param("probability", "uncertain")
    p_ima_irregular_arrival: float = param(
        "probability", "uncertain", "IMA: irregular arrivals disqualified", effect=True
    )


@attrs.frozen(slots=True)
class CgDecision:
    """Stage 4: recovery period and Conclusive Grounds decisions."""

    min_recovery_days: float = param("days", "lever", "minimum recovery period")
    min_recovery_days_scotland: float = param("days", "fixed")
    capacity_per_year: float = param("decisions/year", "fixed", "child share of SCA decisions")
    capacity_multiplier: float = param("factor", "uncertain", "child cases' share of capacity")
    capacity_published: bool = param("flag", "lever", "capacity_per_year is a published count")
    capacity_scale_unpublished: float = param(
        "factor", "uncertain", "scales capacity_per_year while it is an assumption (before 2021)"
    )
    after_published_years: bool = param("flag", "lever", "use capacity_after_2025")
    capacity_after_2025: float = param("decisions/year", "uncertain")
    added_capacity_share: float = param("factor", "lever", "extra capacity bought by a policy")
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
    p_overturned: float = param("probability", "fixed", "Feb 2024 policy (2024 figure)")
    p_overturned_pre_2024: float = param("probability", "uncertain")


@attrs.frozen(slots=True)
class Care:
    """Stage 6: placements, moves, going missing, Home Office hotels."""

    p_placed_separated: float = param("probability", "uncertain")
    p_placed_with_parental_responsibility: float = param("probability", "uncertain")
    mean_stay_days_with_parental_responsibility: float = param("days", "uncertain")
    p_hotel_if_separated_non_uk: float = param("probability", "uncertain")
    mean_hotel_stay_days: float = param("days", "fixed")
    hotel_arrivals_per_year: float = param("children/year", "fixed", "all children in hotels")
    hotel_share_referred: float = param("probability", "fixed", "hotel children in the NRM")
    type_under_16: Share = share(PLACEMENT_TYPES, "uncertain")
    type_16_17: Share = share(PLACEMENT_TYPES, "uncertain")
    capacity_foster: int = param("count", "uncertain")
    capacity_childrens_home: int = param("count", "uncertain")
    capacity_supported_accommodation: int = param("count", "uncertain")
    capacity_secure: int = param("count", "uncertain")
    capacity_hotel: int = param("count", "lever", "places in Home Office hotels")
    moves_per_year: float = param("per year", "uncertain", "placement moves while placed")
    missing_rate_foster: float = param("per year", "uncertain", "episodes a year, foster")
    missing_rate_ratio_childrens_home: float = param("factor", "uncertain", effect=True)
    missing_rate_ratio_supported_accommodation: float = param("factor", "uncertain", effect=True)
    missing_rate_ratio_secure: float = param("factor", "uncertain", effect=True)
    missing_rate_hotel: float = param("per year", "fixed", "episodes a year in hotels")
    early_missing_window_days: float = param("days", "uncertain")
    early_missing_rate_ratio: float = param("factor", "uncertain", "hazard early in a placement")
    missing_prone_share: float = param("probability", "uncertain")
    missing_prone_rate_ratio: float = param("factor", "uncertain")
    mean_missing_days: float = param("days", "uncertain")
    p_unfound_per_episode: float = param("probability", "uncertain", "long-term missing")
    p_unfound_hotel: float = param("probability", "fixed", "long-term missing from hotels")


@attrs.frozen(slots=True)
class Guardianship:
    """Stage 7: ICTGs (direct, indirect), Guardianship Scotland, the NI service."""

    ictg_coverage_share: float = param(
        "probability", "lever", "share of E&W child referrals in LAs with ICTG sites"
    )
    ictg_all_separated: bool = param("flag", "lever", "ICTGs for every separated child")
    p_referred_to_ictg: float = param("probability", "uncertain")
    ictg_direct_caseload: int = param("count", "uncertain", "children a direct worker team holds")
    ictg_indirect_support: bool = param(
        "flag", "lever", "indirect ICTG support for children with a parent or carer"
    )
    max_support_days: float = param("days", "lever", "longest direct ICTG support from allocation")
    post18_support_days: float = param("days", "lever", "direct support continues after 18")
    mean_days_to_first_contact: float = param("days", "uncertain")
    scotland_service: bool = param("flag", "lever", "Guardianship Scotland")
    scotland_support_days_after_decision: float = param("days", "fixed")
    northern_ireland_service: bool = param(
        "flag", "lever", "Northern Ireland Independent Guardian Service"
    )
    missing_hazard_ratio_direct: float = param("factor", "uncertain", effect=True)
    missing_hazard_ratio_indirect: float = param("factor", "uncertain", effect=True)
    missing_hazard_ratio_scotland: float = param("factor", "uncertain", effect=True)
    missing_hazard_ratio_ni: float = param("factor", "uncertain", effect=True)
    retrafficking_hazard_ratio_direct: float = param("factor", "uncertain", effect=True)
    retrafficking_hazard_ratio_indirect: float = param("factor", "uncertain", effect=True)
    retrafficking_hazard_ratio_scotland: float = param("factor", "uncertain", effect=True)
    retrafficking_hazard_ratio_ni: float = param("factor", "uncertain", effect=True)
    dropout_at_18_odds_ratio_direct: float = param("odds ratio", "uncertain", effect=True)
    dropout_at_18_odds_ratio_indirect: float = param("odds ratio", "uncertain", effect=True)
    dropout_at_18_odds_ratio_scotland: float = param("odds ratio", "uncertain", effect=True)
    dropout_at_18_odds_ratio_ni: float = param("odds ratio", "uncertain", effect=True)
    criminalisation_hazard_ratio_direct: float = param("factor", "uncertain", effect=True)
    criminalisation_hazard_ratio_indirect: float = param("factor", "uncertain", effect=True)
    criminalisation_hazard_ratio_scotland: float = param("factor", "uncertain", effect=True)
    criminalisation_hazard_ratio_ni: float = param("factor", "uncertain", effect=True)
    msvcc_referral_odds_ratio_post18: float = param("odds ratio", "uncertain", effect=True)
    rollout_share_existing_referred: float = param(
        "probability",
        "uncertain",
        "share of open cases newly within ICTG reach at an expansion that are referred to it",
    )
    rollout_mean_days_to_refer_existing: float = param(
        "days", "uncertain", "mean days from an expansion to an open case's referral to it"
    )


@attrs.frozen(slots=True)
class Justice:
    """Stage 8: criminalisation of children; investigations of exploiters."""

    p_criminalised_if_criminal: float = param("probability", "uncertain", "record at referral")
    criminalisation_rate_per_year: float = param("per year", "uncertain", "after referral")
    confirmed_criminalisation_hazard_ratio: float = param(
        "factor", "uncertain", "s.45 defence after a positive CG", effect=True
    )
    p_investigation: float = param("probability", "uncertain")
    mean_days_to_investigation: float = param("days", "uncertain")
    p_charged: float = param("probability", "uncertain")
    mean_days_to_charge: float = param("days", "uncertain")
    mean_days_charge_to_outcome: float = param("days", "uncertain")
    p_convicted: float = param("probability", "fixed")


@attrs.frozen(slots=True)
class Leave:
    """Stage 9: immigration leave for confirmed victims subject to immigration control."""

    p_grant_confirmed_child: float = param(
        "probability", "lever", "victim leave granted after a positive CG (non-UK child)"
    )
    mean_days_to_grant: float = param("days", "uncertain")
    duration_days: float = param("days", "lever", "length of a grant")
    retrafficking_hazard_ratio_after_18: float = param("factor", "uncertain", effect=True)
    dropout_at_18_odds_ratio: float = param("odds ratio", "uncertain", effect=True)
    msvcc_support_odds_ratio: float = param("odds ratio", "uncertain", effect=True)


@attrs.frozen(slots=True)
class Transition:
    """Stage 10a: turning 18 with a case open, and life after 18."""

    p_withdrawn: float = param("probability", "fixed")
    p_suspended: float = param("probability", "fixed")
    followup_years: float = param("years", "fixed", "years each child is followed after 18")
    p_msvcc_referral: float = param("probability", "fixed", "of those who continue at 18")
    p_msvcc_supported_if_referred: float = param("probability", "fixed")
    msvcc_support_days: float = param("days", "uncertain")


@attrs.frozen(slots=True)
class Retrafficking:
    """Stage 10b: re-trafficking (before and after 18) and repeat referral."""

    rate_per_year_child: float = param("per year", "uncertain", "in the community, under 18")
    confirmed_hazard_ratio: float = param("factor", "uncertain", effect=True)
    female_hazard_ratio: float = param("factor", "uncertain", "girls relative to boys")
    rate_per_year_after_18: float = param("per year", "uncertain", "young adults, follow-up")
    msvcc_hazard_ratio: float = param("factor", "uncertain", effect=True)
    p_re_referred: float = param("probability", "uncertain")
    mean_days_to_re_referral: float = param("days", "uncertain")
    p_duplicate_referral: float = param("probability", "uncertain", "a second referral, same case")
    mean_days_to_duplicate: float = param("days", "uncertain")


@attrs.frozen(slots=True)
class AgeDispute:
    """Stage 6b: children treated as adults on arrival, until a local authority assesses them."""

    p_disputed: float = param(
        "probability",
        "uncertain",
        "separated irregular non-UK arrivals aged 15-17 treated as adults on arrival",
    )
    mean_days_in_adult_settings: float = param(
        "days", "uncertain", "from the first referral to the local authority's age assessment"
    )
    p_found_child: float = param("probability", "uncertain", "assessments that find a child")
    retrafficking_hazard_ratio_adult_settings: float = param(
        "factor", "uncertain", "re-trafficking while housed as an adult", effect=True
    )


@attrs.frozen(slots=True)
class Ima:
    """Illegal Migration Act 2023 provisions as they would act on children."""

    p_removed_at_18: float = param(
        "probability", "uncertain", "irregular arrivals without leave removed at 18", effect=True
    )
    p_home_office_accommodation: float = param(
        "probability",
        "uncertain",
        "separated irregular arrivals housed by the Home Office",
        effect=True,
    )


@attrs.frozen(slots=True)
class LegalAid:
    """Legal advice before the RG decision (lever: policy.legal_aid_before_rg)."""

    p_take_up: float = param("probability", "uncertain")
    rg_positive_odds_ratio: float = param("odds ratio", "uncertain", effect=True)
    reconsideration_request_ratio: float = param("factor", "uncertain", effect=True)
    leave_grant_ratio: float = param("factor", "uncertain", effect=True)


@attrs.frozen(slots=True)
class Cost:
    """Unit costs (GBP), applied on the date a cost is incurred."""

    per_day_foster: float = param("gbp/day", "uncertain")
    per_day_childrens_home: float = param("gbp/day", "uncertain")
    per_day_supported_accommodation: float = param("gbp/day", "uncertain")
    per_day_secure: float = param("gbp/day", "uncertain")
    per_day_hotel: float = param("gbp/day", "uncertain")
    per_rg_decision: float = param("gbp/case", "uncertain", "marginal cost of a decision")
    per_cg_decision: float = param("gbp/case", "uncertain", "marginal cost of a decision")
    per_rg_capacity_year: float = param("gbp", "uncertain", "a decision a year of RG capacity")
    per_cg_capacity_year: float = param("gbp", "uncertain", "a decision a year of CG capacity")
    per_panel_capacity_year: float = param("gbp", "uncertain", "a decision a year, panels")
    per_ictg_direct_day: float = param("gbp/day", "uncertain")
    per_ictg_indirect_case: float = param("gbp/case", "uncertain")
    per_guardian_day_scotland_ni: float = param("gbp/day", "uncertain")
    per_missing_episode: float = param("gbp/case", "uncertain")
    per_investigation: float = param("gbp/case", "uncertain")
    per_prosecution: float = param("gbp/case", "uncertain")
    per_msvcc_day: float = param("gbp/day", "uncertain")
    per_legal_aid_case: float = param("gbp/case", "uncertain")


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
    age_dispute: AgeDispute
    ima: Ima
    legal_aid: LegalAid
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
                f"{group}.{f.name}",
                group,
                f.name,
                kind,
                spec.unit,
                spec.role,
                spec.doc,
                spec.effect,
                choices,
                spec.categories,
            )


SCHEMA: dict[str, Field] = {f.key: f for f in _fields()}
