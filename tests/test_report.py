"""The comparison report: common random numbers across several scenarios, the chosen baseline,
the saved pathways, report.html (self-contained, re-rendered byte for byte, and shown in a real
headless Chromium with every figure), and the NBA counterfactual."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from model.cli import main
from model.compare import compare_summaries
from model.report.evidence import cited_sources, option_evidence
from model.report.metrics import CHILDREN
from model.report.pathways import pathway_flows
from model.results import METRICS, REGISTRY
from model.runner import RunSpec, run_one
from model.scenario import SCENARIO_DIR, load_scenario

BASELINE = (SCENARIO_DIR / "baseline.toml").resolve().as_posix()
LEVER_DATE = "2024-04-01"
NBA_ENTRIES = {
    "nba_objective_evidence",
    "pod_introduced",
    "rg_guidance_amended",
    "pod_paused",
    "pod_revised",
}
# NBA entries the engine rewrite adds to historical; historical_without_nba removes them too
PENDING_NBA_ENTRIES = {"recovery_period_30_days", "cg_standard_2023"}
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def tiny(folder: Path, name: str, extra: str = "") -> Path:
    """Baseline policy, 18 months, a fifth of the referrals (a second per run)."""
    path = folder / f"{name}.toml"
    path.write_text(
        f'[meta]\nname = "{name}"\nextends = "{BASELINE}"\n'
        "[run]\nstart = 2023-07-01\nend = 2024-12-31\n"
        "[params.identification]\n"
        'child_referrals_per_year = { value = 1000, source = "ho-nrm-eoy-2023" }\n' + extra,
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`compare b a a_copy --baseline a --with-null`: b tightens the RG test from LEVER_DATE,
    a_copy is a under another name. Run once for the module."""
    folder = tmp_path_factory.mktemp("report")
    a = tiny(folder, "a")
    b = tiny(
        folder,
        "b",
        f'[[timeline]]\ndate = {LEVER_DATE}\nname = "stricter_rg"\nsource = "assumption"\n'
        'set = { "rg_decision.p_positive_nba" = 0.5 }\n',
    )
    copy = tiny(folder, "a_copy")
    out = folder / "out"
    args = [
        "compare",
        str(b),
        str(a),
        str(copy),
        "--baseline",
        "a",
        "--reps",
        "2",
        "--ensemble",
        "none",
    ]
    assert main([*args, "--with-null", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def comparison(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "comparison.csv", dtype={"group": str})


@pytest.fixture(scope="module")
def html(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


# ----------------------------------------------------------------- common random numbers
def test_identical_scenario_gives_exactly_zero_differences(run_dir: Path) -> None:
    for path in (run_dir / "comparison.csv", run_dir / "null" / "comparison.csv"):
        table = pd.read_csv(path, dtype={"group": str})
        copy = table[table["scenario"] == "a_copy"]
        defined = copy[copy["diff_vs_baseline"].notna()]
        assert len(defined) > 500  # every year, group and metric, not a handful
        assert (defined["diff_vs_baseline"] == 0).all()
        paired = defined[defined["n"] == 2]
        assert (paired["diff_ci_low"] == 0).all() and (paired["diff_ci_high"] == 0).all()
        # and the levels are not trivially zero: the copy did run
        assert (
            copy.set_index(["metric", "group_by", "period"]).loc[("referrals", "all", 2024), "mean"]
            > 0
        )


def test_baseline_option_names_the_comparator(run_dir: Path, comparison: pd.DataFrame) -> None:
    meta = json.loads((run_dir / "manifest.json").read_text())
    assert meta["comparison"]["baseline"] == "a"
    assert meta["comparison"]["scenarios"] == ["a", "b", "a_copy"]  # baseline first
    assert set(meta["scenario"]) == {"a", "b", "a_copy"}
    assert comparison["scenario"].iloc[0] == "a"
    assert (comparison.loc[comparison["scenario"] == "a", "diff_vs_baseline"].dropna() == 0).all()
    # b's difference is b - a replicate by replicate, computed here from summary.csv
    summary = pd.read_csv(run_dir / "summary.csv", dtype={"group": str})
    pick = summary[
        (summary["metric"] == "rg_positive_rate")
        & (summary["group_by"] == "all")
        & (summary["year"] == 2024)
    ].set_index(["scenario", "replicate"])["value"]
    by_hand = ((pick["b"] - pick["a"]).mean(), pick["a"].mean())
    row = comparison[
        (comparison["scenario"] == "b")
        & (comparison["metric"] == "rg_positive_rate")
        & (comparison["group_by"] == "all")
        & (comparison["period"] == 2024)
    ].iloc[0]
    assert row["diff_vs_baseline"] == pytest.approx(by_hand[0], abs=1e-9)
    assert row["mean_a"] == pytest.approx(by_hand[1], abs=1e-9)
    assert row["diff_ci_high"] < 0  # the stricter RG test lowers the positive rate clearly


def test_pathways_are_saved_per_scenario_and_replicate(run_dir: Path) -> None:
    flows = pd.read_csv(run_dir / "pathways.csv", keep_default_na=False)
    assert list(flows.columns) == ["scenario", "replicate", "rg_stage", "cg_stage", "referrals"]
    assert sorted(set(zip(flows["scenario"], flows["replicate"], strict=True))) == [
        (s, r) for s in ("a", "a_copy", "b") for r in (0, 1)
    ]
    meta = json.loads((run_dir / "manifest.json").read_text())
    assert meta["comparison"]["pathways_since"] == LEVER_DATE  # from the first policy change
    total = flows.groupby(["scenario", "rg_stage"])["referrals"].sum()
    assert total["a"].equals(total["a_copy"])
    assert total[("b", "rg_positive")] < total[("a", "rg_positive")]
    assert total[("b", "rg_negative")] > total[("a", "rg_negative")]


# ----------------------------------------------------------------------------- pathways
def test_pathway_flows_place_each_episode_by_its_outcome() -> None:
    scenario = load_scenario("baseline").with_run(
        start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 31)
    )
    rows = [
        # child, episode, day, event, positive, decision_type
        (1, 0, 10, "referred", None, None),
        (1, 0, 20, "rg_decided", True, None),
        (1, 0, 200, "cg_decided", True, None),  # rg_positive -> cg_positive
        (2, 0, 11, "referred", None, None),
        (2, 0, 30, "rg_decided", False, None),
        (2, 0, 60, "reconsideration_decided", True, "rg"),  # overturned: rg_positive
        (2, 0, 300, "cg_decided", False, None),
        (2, 0, 330, "reconsideration_decided", True, "cg"),  # overturned: cg_positive
        (3, 0, 12, "referred", None, None),
        (3, 0, 25, "rg_decided", True, None),
        (3, 0, 25, "disqualified", None, None),  # disqualified
        (4, 0, 13, "referred", None, None),
        (4, 0, 40, "rg_decided", True, None),
        (4, 0, 90, "turned_18", None, None),
        (4, 0, 90, "withdrawn", None, None),  # rg_positive -> withdrawn
        (5, 0, 14, "referred", None, None),
        (5, 0, 50, "superseded", None, None),  # closed before RG
        (5, 1, 50, "referred", None, None),  # its repeat referral: still awaiting RG
        (6, 0, 15, "referred", None, None),
        (6, 0, 45, "rg_decided", False, None),  # rg_negative, reconsideration upheld
        (6, 0, 80, "reconsideration_decided", False, "rg"),
        (7, 0, 16, "referred", None, None),
        (7, 0, 46, "rg_decided", True, None),  # rg_positive -> awaiting CG at the end
        (8, 0, 17, "referred", None, None),
        (8, 0, 47, "rg_decided", True, None),
        (8, 0, 100, "cg_decided", False, None),  # cg_negative, later suspended: still negative
        (8, 0, 120, "suspended", None, None),
        (9, 0, 400, "referred", None, None),  # after the end of the run: not counted
        (-1, 0, 5, "investigation_opened", None, None),  # not a child's case
    ]
    events = pd.DataFrame(
        rows, columns=["child_id", "episode", "t_days", "event", "positive", "decision_type"]
    ).astype({"t_days": float, "positive": "boolean"})
    flows = pathway_flows(events, pd.DataFrame(), scenario, since=dt.date(2024, 1, 1))
    got = {(r.rg_stage, r.cg_stage): r.referrals for r in flows.itertuples()}
    assert got == {
        ("rg_positive", "cg_positive"): 2,
        ("disqualified", ""): 1,
        ("rg_positive", "withdrawn"): 1,
        ("closed_before_rg", ""): 1,
        ("awaiting_rg", ""): 1,
        ("rg_negative", ""): 1,
        ("rg_positive", "awaiting_cg"): 1,
        ("rg_positive", "cg_negative"): 1,
    }
    # a later window start drops the referrals made before it
    later = pathway_flows(events, pd.DataFrame(), scenario, since=dt.date(2024, 1, 16))
    assert later["referrals"].sum() == 4  # children 6, 7, 8 and the repeat referral of 5


# ------------------------------------------------------------------------------ the page
class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_report_is_one_self_contained_file(run_dir: Path, html: str) -> None:
    parser = _Tags()
    parser.feed(html)
    tags = parser.tags
    images = [a for t, a in tags if t == "img"]
    figures = sorted((run_dir / "figures").glob("*.png"))
    # every figure saved as a PNG is also embedded in the page
    assert len(images) == len(figures) >= 8
    assert all(str(a["src"]).startswith("data:image/png;base64,") for a in images)
    assert all(a.get("alt") for a in images)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    urls = [v for _, a in tags for k, v in a.items() if k in ("src", "href") and v]
    assert not [u for u in urls if not u.startswith(("data:", "#"))]
    assert "default-src 'none'" in html  # the page may not fetch anything, even by mistake


def test_report_sections_come_in_order_summary_first(html: str) -> None:
    ids = ["summary", "headline", "children", "breakdowns", "costs", "evidence"]
    positions = [html.index(f'<section id="{i}">') for i in ids]
    assert positions == sorted(positions)
    header_end = html.index("</header>")
    assert positions[0] > header_end and html.index("How sure") < header_end


def test_report_says_what_changes_how_sure_and_what_it_rests_on(html: str) -> None:
    summary = html[html.index('<section id="summary">') : html.index('<section id="headline">')]
    b_part = summary[summary.index("b compared with a") : summary.index("a_copy compared with a")]
    copy_part = summary[summary.index("a_copy compared with a") :]
    assert "Positive RG decisions (share): " in b_part and "95% interval" in b_part
    assert "rg_decision.p_positive_nba" in b_part and "0.5 from 2024-04-01" in b_part
    assert "1 assumed" in b_part  # the lever's value is an assumption
    assert "with every assumed effect at its null" in b_part  # the --with-null comparison
    assert "it changes no parameter" in copy_part
    assert "No detectable difference in any of the headline" in copy_part
    assert "Monte Carlo only" in html and "do not include uncertainty about the param" in html
    assert "Unit costs are assumptions where they are" in html


def test_report_shows_children_metrics_or_says_they_are_not_available(html: str) -> None:
    children = html[html.index('<section id="children">') : html.index('<section id="break')]
    table = children[: children.find("</table>")]
    for metric in CHILDREN:
        label = REGISTRY[metric].title
        if metric in METRICS:
            assert label in table, metric
        else:
            missing = children[children.index("Not available in this run") :]
            assert label in missing[: missing.index("</p>")], metric


def test_report_re_renders_byte_identical_without_running(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "saved"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink()
    shutil.rmtree(copy / "figures")
    (copy / "summary.csv").touch()  # newer mtime: nothing may depend on file times
    assert main(["report", str(copy), "--quiet"]) == 0
    assert (copy / "report.html").read_bytes() == (run_dir / "report.html").read_bytes()
    for png in sorted((run_dir / "figures").glob("*.png")):
        assert (copy / "figures" / png.name).read_bytes() == png.read_bytes(), png.name


def test_report_on_a_folder_that_is_not_a_comparison_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a saved comparison" in err and "comparison.csv" in err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _open_in_chromium(path: Path) -> dict[str, object]:
    """Load a page in Debian's Chromium (headless, no network) and report what it showed."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, list] = {"console": [], "errors": [], "requests": [], "failed": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("requestfailed", lambda r: seen["failed"].append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            seen["images"] = page.evaluate(
                "() => Array.from(document.images).map(i => "
                "[i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
            )
            seen["svgs"] = page.evaluate(
                "() => Array.from(document.querySelectorAll('svg')).map(s => "
                "[s.getBoundingClientRect().width, s.getBoundingClientRect().height])"
            )
            seen["visible"] = {
                sel: page.locator(sel).first.is_visible()
                for sel in ("#summary", "#headline-table", "#children-table", "#cost-table")
            }
            seen["headline_rows"] = page.locator("#headline-table tbody tr").count()
            seen["summary_text"] = page.locator("#summary").inner_text()
        finally:
            browser.close()
    return seen


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does this)",
)
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    seen = _open_in_chromium(run_dir / "report.html")
    assert seen["errors"] == [] and seen["failed"] == []
    assert [m for m in seen["console"] if m.startswith(("error", "warning"))] == []
    assert seen["requests"] == [(run_dir / "report.html").as_uri()]  # nothing else fetched
    assert all(seen["visible"].values()), seen["visible"]
    assert seen["headline_rows"] >= 5
    assert "b compared with a" in seen["summary_text"]
    images = seen["images"]
    assert len(images) == len(list((run_dir / "figures").glob("*.png")))
    assert all(done and w > 0 and h > 0 for _alt, done, w, h in images), images
    assert all(w > 0 and h > 0 for w, h in seen["svgs"])

    # the same check fails on a page that fetches from the network or has a broken figure
    broken = tmp_path / "broken.html"
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    broken.write_text(
        text.replace(
            "</body>",
            '<img src="https://example.invalid/x.png" alt="x">'
            '<img src="data:image/png;base64,AAAA" alt="y"></body>',
        ),
        encoding="utf-8",
    )
    bad = _open_in_chromium(broken)
    assert [m for m in bad["console"] if m.startswith("error")]  # the CSP blocks the fetch
    assert not all(done and w > 0 and h > 0 for _alt, done, w, h in bad["images"])


# ----------------------------------------------------------------------- the counterfactual
def test_historical_without_nba_removes_exactly_the_nba_entries() -> None:
    historical = load_scenario("historical")
    without = load_scenario("historical_without_nba")
    assert (without.start, without.end) == (historical.start, historical.end)
    pending = PENDING_NBA_ENTRIES & {t.name for t in historical.timeline}
    removed = {t.name for t in historical.timeline} - {t.name for t in without.timeline}
    assert removed == NBA_ENTRIES | pending
    facts = option_evidence(
        historical.resolved(), without.resolved(), cited_sources([historical, without])
    )
    assert {t["name"] for t in facts["timeline"]} == NBA_ENTRIES | pending
    assert {t["change"] for t in facts["timeline"]} == {"removed"}
    changed = {r["key"]: (r["from"], r["option"]) for r in facts["changed"]}
    assert changed["policy.decision_regime"] == ("2023-01-30", "pre_nba")
    assert changed["policy.pod_policy"] == ("2023-01-31", "none")
    by_pending = {k for t in historical.timeline if t.name in pending for k in t.changes}
    assert set(changed) == {"policy.decision_regime", "policy.pod_policy"} | by_pending


def test_without_nba_differs_only_from_the_law_coming_into_force() -> None:
    """Common random numbers: at a tenth of the volume, the years before the first NBA change
    are identical in both; in 2023 positive RG decisions rise and no child is disqualified
    without the Act."""
    nba = NBA_ENTRIES | PENDING_NBA_ENTRIES
    first_year = min(t.date for t in load_scenario("historical").timeline if t.name in nba).year
    runs = {}
    for name in ("historical", "historical_without_nba"):
        sc = load_scenario(name).with_run(start=dt.date(2021, 1, 1), end=dt.date(2023, 12, 31))
        sc = sc.with_scaled({"identification.child_referrals_per_year": 0.1})
        runs[name] = pd.concat(
            [run_one(RunSpec(sc, r, group_bys=("all",))).summary for r in range(2)],
            ignore_index=True,
        )
    table = compare_summaries(runs, "historical").set_index(["scenario", "metric", "period"])
    without = table.loc["historical_without_nba"]
    periods = without.index.get_level_values("period")
    before = without[periods < first_year]["diff_vs_baseline"].dropna()
    assert len(before) > 20 and (before == 0).all()
    assert (without[periods == 2023]["diff_vs_baseline"].dropna() != 0).any()
    # more positive RG decisions in 2023 in each replicate (two replicates give a t-interval
    # too wide to use at this size, so the paired differences are checked one by one)
    rate = {
        name: s[(s["metric"] == "rg_positive_rate") & (s["year"] == 2023)].set_index("replicate")
        for name, s in runs.items()
    }
    gain = rate["historical_without_nba"]["value"] - rate["historical"]["value"]
    assert len(gain) == 2 and (gain > 0.05).all()
    assert without.loc[("disqualifications", 2023), "mean"] == 0
    assert table.loc[("historical", "disqualifications", 2023), "mean"] > 0


def test_the_baseline_line_names_the_status_quo_and_its_capacity_assumption() -> None:
    """Catches: a report whose baseline line does not say which status quo it stands on, or
    shows the capacity of another status quo (the surge variant's, or none)."""
    from model.report.build import status_quo_line

    line = status_quo_line(load_scenario("status_quo_2027").resolved())
    assert line.startswith("status_quo_2027:")
    assert "end of 2025" in line and "10,460" in line and "assumption" in line
    surge = status_quo_line(load_scenario("status_quo_2027_surge").resolved())
    assert surge.startswith("status_quo_2027_surge:") and "11,850" in surge
    plan = status_quo_line(load_scenario("status_quo_backlog_plan").resolved())
    assert plan.startswith("status_quo_backlog_plan:")
    assert status_quo_line(load_scenario("historical").resolved()).startswith("no status quo")
