"""The metrics the report shows, in one place: plain labels, units, and where they appear.

A metric listed here is shown when the comparison's ``summary.csv`` has it and listed as
"not available in this run" otherwise, so the report keeps working while the engine gains
metrics. To show a new metric, add one line to ``REGISTRY`` and its name to a section tuple.

``additive`` marks metrics that add up over groups and years (counts and costs). Only those
are summed (non-UK children as one group; totals over the years after the policy change).
A metric whose definition is not known to be a sum stays False.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """How the report names and formats one metric of ``model.results.METRICS``."""

    label: str
    kind: str  # count | rate | share | days | years | gbp
    additive: bool = False


REGISTRY: dict[str, MetricInfo] = {
    "referrals": MetricInfo("Referrals of children", "count", True),
    "rg_positive_rate": MetricInfo("Positive RG decisions (share)", "rate"),
    "cg_positive_rate": MetricInfo("Positive CG decisions (share)", "rate"),
    "median_days_referral_to_cg": MetricInfo("Median days from referral to CG", "days"),
    "mean_days_referral_to_cg": MetricInfo("Mean days from referral to CG", "days"),
    "awaiting_cg_at_year_end": MetricInfo("Cases awaiting CG at year end", "count"),
    "aged_out_without_decision": MetricInfo("Children who turned 18 still waiting", "count", True),
    "children_gone_missing": MetricInfo("Children who went missing", "count", True),
    "missing_episodes": MetricInfo("Missing episodes", "count", True),
    "leave_grants": MetricInfo("Grants of victim leave", "count", True),
    "disqualifications": MetricInfo("Public-order disqualifications", "count", True),
    "public_cost_gbp": MetricInfo("Public cost (all payers)", "gbp", True),
    # what changes for children
    "mean_days_in_limbo": MetricInfo("Days in limbo (referral to final decision, mean)", "days"),
    "mean_age_at_final_decision": MetricInfo("Age at final decision (mean)", "years"),
    "placement_moves": MetricInfo("Placement moves", "count", True),
    "days_missing": MetricInfo("Days missing", "count", True),
    "share_guardian_within_24h": MetricInfo("Share with a guardian within 24 hours", "share"),
    "guardian_requests_unanswered": MetricInfo(
        "Referred to a guardian, never allocated one", "count", True
    ),
    "re_trafficked": MetricInfo("Re-trafficked before 18 (events)", "count", True),
    "children_re_trafficked": MetricInfo("Children re-trafficked before 18", "count", True),
    "age_disputed_children": MetricInfo("Children age-disputed on arrival", "count", True),
    "days_in_adult_settings": MetricInfo("Days housed as adults (age-disputed)", "count", True),
    "re_trafficked_after_18": MetricInfo("Re-trafficked after 18", "count", True),
    "withdrawn_or_suspended_at_18": MetricInfo("Cases withdrawn or suspended at 18", "count", True),
    "children_criminalised": MetricInfo("Children criminalised", "count", True),
    "child_days_exploited_unidentified": MetricInfo(
        "Child-days exploited before identification", "count", True
    ),
    "msvcc_referrals": MetricInfo("Referred to adult support (MSVCC) at 18", "count", True),
    "msvcc_supported": MetricInfo("Supported by MSVCC after 18", "count", True),
    # cost by payer (their sum is public_cost_gbp)
    "cost_home_office_gbp": MetricInfo("Home Office", "gbp", True),
    "cost_local_authorities_gbp": MetricInfo("Local authorities", "gbp", True),
    "cost_guardianship_gbp": MetricInfo("Guardianship (ICTG and others)", "gbp", True),
    "cost_police_cps_gbp": MetricInfo("Police and CPS", "gbp", True),
    "cost_post18_gbp": MetricInfo("Post-18 support", "gbp", True),
    "cost_legal_aid_gbp": MetricInfo("Legal aid", "gbp", True),
}

HEADLINE = (
    "referrals",
    "rg_positive_rate",
    "cg_positive_rate",
    "median_days_referral_to_cg",
    "awaiting_cg_at_year_end",
    "aged_out_without_decision",
    "children_gone_missing",
    "re_trafficked",
    "leave_grants",
    "public_cost_gbp",
)
CHILDREN = (
    "mean_days_in_limbo",
    "mean_age_at_final_decision",
    "placement_moves",
    "days_missing",
    "share_guardian_within_24h",
    "guardian_requests_unanswered",
    "re_trafficked",
    "children_re_trafficked",
    "re_trafficked_after_18",
    "age_disputed_children",
    "days_in_adult_settings",
    "withdrawn_or_suspended_at_18",
    "children_criminalised",
    "child_days_exploited_unidentified",
    "msvcc_referrals",
    "msvcc_supported",
)
COST_BY_PAYER = (
    "cost_home_office_gbp",
    "cost_local_authorities_gbp",
    "cost_guardianship_gbp",
    "cost_police_cps_gbp",
    "cost_post18_gbp",
    "cost_legal_aid_gbp",
)
TRENDS = (
    "awaiting_cg_at_year_end",
    "median_days_referral_to_cg",
    "mean_days_in_limbo",
    "rg_positive_rate",
    "children_gone_missing",
    "re_trafficked",
    "aged_out_without_decision",
    "public_cost_gbp",
)
BREAKDOWN_METRICS = (
    "mean_days_in_limbo",
    "median_days_referral_to_cg",
    "rg_positive_rate",
    "children_gone_missing",
    "re_trafficked",
    "aged_out_without_decision",
)
# (group_by in summary.csv, heading, reader-facing group labels)
BREAKDOWNS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("nationality_group", "UK and non-UK children", {"uk": "UK", "non_uk": "Non-UK (all)"}),
    ("sex", "Girls and boys", {"female": "Girls", "male": "Boys"}),
    ("exploitation_type", "Exploitation type", {}),
    ("nation", "Nation of the UK", {}),
    ("age_band", "Age at referral", {}),
)


def info(metric: str) -> MetricInfo:
    """The registry entry, or a plain fallback for a metric not listed."""
    return REGISTRY.get(metric, MetricInfo(metric.replace("_", " "), "count"))


def fmt_value(value: float, metric: str) -> str:
    """A level, formatted for its kind ('-' when undefined)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    kind = info(metric).kind
    if kind in ("rate", "share"):
        return f"{value:.1%}"
    if kind == "gbp":
        return f"£{value / 1e6:,.1f}m"
    if kind == "years":
        return f"{value:.1f}"
    if abs(value) >= 100 or kind == "days":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def fmt_diff(value: float, metric: str) -> str:
    """A difference with its sign; percentage points for rates and shares."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    kind = info(metric).kind
    sign = "+" if value > 0 else "\N{MINUS SIGN}" if value < 0 else "\N{PLUS-MINUS SIGN}"
    size = abs(value)
    if kind in ("rate", "share"):
        return f"{sign}{size * 100:.1f} pts"
    if kind == "gbp":
        return f"{sign}£{size / 1e6:,.1f}m"
    if kind == "years":
        return f"{sign}{size:.2f}"
    if size >= 100:
        return f"{sign}{size:,.0f}"
    return f"{sign}{size:,.1f}"
