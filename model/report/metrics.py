"""Where the report shows each metric, and how it formats values.

A metric listed here is shown when the comparison's ``summary.csv`` has it and listed as
"not available in this run" otherwise, so the report keeps working while the engine gains
metrics. Everything else about a metric (its title, display format, whether it adds over
groups and years) is its entry in ``model.results.REGISTRY``; to show a metric, add its name
to a section tuple.
"""

from __future__ import annotations

import math

from model.results import PAYER_METRICS, REGISTRY

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
COST_BY_PAYER = PAYER_METRICS  # their sum is public_cost_gbp
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


def fmt_value(value: float, metric: str) -> str:
    """A level, formatted for its display format ('-' when undefined)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    display = REGISTRY[metric].display
    if display == "share":
        return f"{value:.1%}"
    if display == "gbp":
        return f"£{value / 1e6:,.1f}m"
    if display == "years":
        return f"{value:.1f}"
    if abs(value) >= 100 or display == "days":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def fmt_diff(value: float, metric: str) -> str:
    """A difference with its sign; percentage points for rates and shares."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    display = REGISTRY[metric].display
    sign = "+" if value > 0 else "\N{MINUS SIGN}" if value < 0 else "\N{PLUS-MINUS SIGN}"
    size = abs(value)
    if display == "share":
        return f"{sign}{size * 100:.1f} pts"
    if display == "gbp":
        return f"{sign}£{size / 1e6:,.1f}m"
    if display == "years":
        return f"{sign}{size:.2f}"
    if size >= 100:
        return f"{sign}{size:,.0f}"
    return f"{sign}{size:,.1f}"
