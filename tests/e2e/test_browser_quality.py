"""Quality triage in headless Chromium against the local stack, on conversations whose
defects the simulator planted (defect rate 1.0 for the first batch, then 0):

- the score histogram matches the API's stats, a bar filters the table to its range;
- flagged rows carry their first reason; "Needs attention first" sorts them first;
- a flagged conversation opens with its reasons above the turns, the offending turns
  highlighted, a reason jumping to its turn, and the simulated judge said plainly;
- the generation dialog shows the judge's share of the estimate;
- the diversity view, and a click through to a conversation and to a phrase search;
- the calibration view before and after 30+ review decisions (the suggested threshold);
- a dataset's quality rules and judge mode saved from the Datasets page.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.browser_support import (
    VIEWPORT,
    build_frontend,
    in_ci,
    launch,
    missing_browser,
    missing_frontend,
    open_app,
)

pytestmark = pytest.mark.e2e

SIMULATED_NOTE = "Simulated judge (offline simulator): shown for the demo, not counted in the score"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = missing_browser()
    if reason:
        if in_ci():
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    build_frontend()
    reason = missing_frontend()
    if reason:
        pytest.fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: Any, stack: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=VIEWPORT, base_url=stack.url)
    ctx.set_default_timeout(20_000)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def wait_job(api: Any, job_id: str) -> None:
    deadline = time.time() + 180
    while time.time() < deadline:
        job = api.get(f"/api/jobs/{job_id}")[1]
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            assert job["status"] == "completed", job
            return
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish")


def generate(api: Any, ids: list[str]) -> None:
    status, accepted, _ = api.post(
        "/api/conversations/generate-batch", {"conversation_ids": ids, "confirm": True}
    )
    assert status == 202, accepted
    wait_job(api, accepted["job_id"])


def listing(api: Any, dataset_id: str, **params: Any) -> list[dict[str, Any]]:
    qs = urllib.parse.urlencode({"dataset_id": dataset_id, "page_size": 100, **params})
    status, body, _ = api.get(f"/api/conversations?{qs}")
    assert status == 200, body
    items: list[dict[str, Any]] = body["items"]
    return items


def row_ids(page: Any) -> list[str]:
    return [
        t.removeprefix("conv-row-")
        for t in page.locator('[data-testid^="conv-row-"]').evaluate_all(
            "els => els.map(e => e.dataset.testid)"
        )
    ]


def wait_table(page: Any) -> None:
    page.locator('[data-testid^="conv-row-"]').first.wait_for()
    page.get_by_test_id("table-loading").wait_for(state="detached")


def wait_url(page: Any, key: str, value: str | None) -> None:
    page.wait_for_function(
        "([k, v]) => new URLSearchParams(location.search).get(k) === v", arg=[key, value]
    )


def decide(api: Any, action: str, ids: list[str]) -> None:
    if not ids:
        return
    status, result, _ = api.post("/api/conversations/bulk-action", {"action": action, "ids": ids})
    assert status == 200 and len(result["succeeded"]) == len(ids), result


def test_quality_triage_in_the_browser(page: Any, api: Any, stack: Any) -> None:
    status, ds, _ = api.post("/api/datasets/sample")
    assert status == 201, ds
    dsid = ds["dataset_id"]
    api.patch(f"/api/datasets/{dsid}", {"budget_usd": 1000})
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 40})
    assert status == 201, plan
    ids = plan["conversation_ids"]
    defective, clean = ids[:22], ids[22:]
    stack.simulator.configure(defect_rate=1.0)
    try:
        generate(api, defective)
    finally:
        stack.simulator.configure(defect_rate=0.0)

    # The generation dialog shows what the judge adds to the estimate (still 18 to write).
    open_app(page, f"/?dataset_id={dsid}")
    page.get_by_test_id("btn-generate-all").click()
    page.get_by_test_id("estimate-count").wait_for()
    assert page.get_by_test_id("estimate-count").inner_text() == str(len(clean))
    share = page.get_by_test_id("estimate-judge").inner_text()
    assert share.startswith("$") and float(share.split()[0][1:]) > 0, share
    page.get_by_test_id("btn-cancel").click()
    generate(api, clean)

    _, stats, _ = api.get(f"/api/conversations/quality-stats?dataset_id={dsid}")
    flagged = listing(api, dsid, flagged="true")
    assert stats["flagged"] == len(flagged) >= 15, (stats, len(flagged))

    # 1. The histogram: one bar per bucket, counts as the API has them, flagged ones red.
    open_app(page, f"/?dataset_id={dsid}")
    page.get_by_test_id("quality-histogram").wait_for()
    wait_table(page)
    for bucket in range(1, 11):
        bar = page.get_by_test_id(f"histogram-bar-{bucket}")
        assert int(bar.get_attribute("data-count")) == stats["histogram"][str(bucket)]
        assert bar.get_attribute("data-flagged") == ("true" if bucket < 6 else "false")
    page.get_by_test_id("flagged-count").wait_for()
    assert page.get_by_test_id("flagged-count").inner_text() == str(stats["flagged"])
    red = page.locator('[data-testid^="histogram-bar-"][data-flagged="true"] .histogram-fill')
    colours = set(red.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)"))
    assert colours == {"rgb(198, 40, 40)"}, colours

    # A flagged bar filters the table to its score range.
    bucket = next(b for b in range(1, 6) if stats["histogram"][str(b)] > 0)
    page.get_by_test_id(f"histogram-bar-{bucket}").click()
    wait_url(page, "quality_min", str(bucket))
    wait_table(page)
    expected = listing(api, dsid, quality_min=bucket, quality_max=bucket + 0.99)
    assert len(expected) == stats["histogram"][str(bucket)]
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid^=\"conv-row-\"]').length === n",
        arg=len(expected),
    )
    assert set(row_ids(page)) == {c["conversation_id"] for c in expected}
    page.get_by_test_id(f"histogram-bar-{bucket}").click()  # again: every score
    wait_url(page, "quality_min", None)

    # 2. Needs attention first: flagged first, lowest score first; kept in the URL.
    page.get_by_test_id("btn-sort-attention").click()
    wait_url(page, "sort", "attention")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["order"] == ["asc"]
    page.wait_for_function(
        "id => document.querySelector('[data-testid^=\"conv-row-\"]')?.dataset.testid === 'conv-row-' + id",
        arg=listing(api, dsid, sort="attention", order="asc")[0]["conversation_id"],
    )
    wait_table(page)
    shown = row_ids(page)
    attention = [
        c["conversation_id"] for c in listing(api, dsid, sort="attention", order="asc")[:25]
    ]
    assert shown == attention
    by_id = {c["conversation_id"]: c for c in listing(api, dsid)}
    first = by_id[shown[0]]
    assert first["flagged"] and first["quality_reasons"]
    assert page.get_by_test_id(f"quality-{shown[0]}").get_attribute("data-band") == "red"
    # Reasons beside the score: the first one shown, all of them on hover.
    cell = page.get_by_test_id(f"quality-reasons-{shown[0]}")
    assert first["quality_reasons"][0] in cell.inner_text()
    assert cell.get_attribute("title") == "\n".join(first["quality_reasons"])
    page.reload()
    wait_table(page)
    assert row_ids(page) == attention  # the sort survived the reload

    # 3. A flagged conversation: reasons above the turns, offending turns highlighted.
    page.get_by_test_id(f"conv-row-{shown[0]}").click()
    page.locator(f'[data-testid="panel-body"][data-conversation-id="{shown[0]}"]').wait_for()
    _, conv, _ = api.get(f"/api/conversations/{shown[0]}")
    quality = conv["quality"]
    reasons = page.get_by_test_id("panel-reasons")
    reasons.wait_for()
    items = reasons.locator("li")
    assert items.count() == len(quality["reasons"])
    texts = [t.replace("Turn ", "turn ", 1) for t in items.all_inner_texts()]
    assert texts == quality["reasons"]
    assert page.evaluate(
        """() => {
          const r = document.querySelector('[data-testid="panel-reasons"]');
          const t = document.querySelector('[data-testid="turns"]');
          return Boolean(r.compareDocumentPosition(t) & Node.DOCUMENT_POSITION_FOLLOWING)
            && r.getBoundingClientRect().bottom <= t.getBoundingClientRect().top;
        }"""
    )
    assert reasons.is_visible() and reasons.bounding_box()["y"] < VIEWPORT["height"]
    flagged_turns = page.locator('[data-testid^="turn-"][data-flagged="true"]')
    assert sorted(
        int(t.removeprefix("turn-"))
        for t in flagged_turns.evaluate_all("els => els.map(e => e.dataset.testid)")
    ) == sorted(quality["flag_turns"])
    turn = quality["flag_turns"][-1]
    link = page.get_by_test_id(f"reason-turn-{turn}")
    if link.count():
        link.first.click()
        page.wait_for_function(
            "n => document.activeElement?.dataset.testid === 'turn-' + n", arg=turn
        )
        # scrolled into view (smoothly: wait for it to get there)
        page.wait_for_function(
            """n => {
              const r = document.querySelector(`[data-testid="turn-${n}"]`).getBoundingClientRect();
              return r.top >= 0 && r.top < window.innerHeight;
            }""",
            arg=turn,
        )
    # The judge's verdict, said plainly to be simulated.
    judge = page.get_by_test_id("panel-judge")
    judge.scroll_into_view_if_needed()
    assert SIMULATED_NOTE in page.get_by_test_id("judge-simulated").inner_text()
    for dim in quality["judge"]["dimensions"]:
        assert page.get_by_test_id(f"judge-dim-{dim}").is_visible()
    # Failed checks come first.
    first_check = page.locator('[data-testid="quality-checks"] li').first
    assert first_check.get_attribute("data-passed") == "false"

    # 4. Diversity: the view lists the repeats; an id opens the conversation.
    page.get_by_test_id("btn-close-panel").click()
    _, diversity, _ = api.get(f"/api/conversations/diversity?dataset_id={dsid}")
    page.get_by_test_id("btn-open-diversity").click()
    view = page.get_by_test_id("diversity-view")
    view.wait_for()
    wait_url(page, "insight", "diversity")
    assert not page.get_by_test_id("conversation-table").is_visible()
    openers = diversity["openers"]["user"] or diversity["openers"]["assistant"]
    assert openers, diversity["openers"]  # the sample's users open alike
    role = "user" if diversity["openers"]["user"] else "assistant"
    entry = page.get_by_test_id(f"opener-{role}-0")
    assert f"{openers[0]['count']} conversations" in entry.inner_text()
    entry.locator("summary").click()
    target = openers[0]["conversation_ids"][0]
    entry.get_by_test_id(f"open-conv-{target}").click()
    page.locator(f'[data-testid="panel-body"][data-conversation-id="{target}"]').wait_for()
    assert view.is_visible()  # the view stays beside the panel
    page.get_by_test_id("btn-close-panel").click()
    # A repeated phrase filters the table with a phrase search.
    page.get_by_test_id(f"btn-filter-opener-{role}-0").click()
    wait_url(page, "insight", None)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["q"][0]
    assert q.startswith('"') and q.endswith('"')
    wait_table(page)
    matching = listing(api, dsid, q=q)
    assert len(matching) >= openers[0]["count"]
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid^=\"conv-row-\"]').length === n",
        arg=min(25, len(matching)),
    )

    # 5. Calibration: a note until 30 decisions, then the suggested threshold.
    scored = listing(api, dsid, status="generated")
    bad = [c["conversation_id"] for c in scored if c["flagged"]]
    good = [c["conversation_id"] for c in scored if not c["flagged"]]
    decide(api, "reject", bad[:5])
    decide(api, "approve", good[:5])
    open_app(page, f"/?dataset_id={dsid}&insight=calibration")
    page.get_by_test_id("calibration-view").wait_for()
    assert "30" in page.get_by_test_id("calibration-note").inner_text()
    # Reviewers reject most flagged ones and approve most clean ones, with a few
    # disagreements either way.
    decide(api, "reject", bad[5:-2] + good[5:7])
    decide(api, "approve", bad[-2:] + good[7:])
    _, calibration, _ = api.get(f"/api/conversations/calibration?dataset_id={dsid}")
    assert calibration["decisions"] >= 30 and calibration["suggested"], calibration
    page.reload()
    page.get_by_test_id("calibration-view").wait_for()
    suggested = page.get_by_test_id("calibration-suggested")
    suggested.wait_for()
    threshold = f"{calibration['suggested']['threshold']:g}"
    assert threshold in suggested.inner_text()
    assert page.get_by_test_id("calibration-suggested-threshold").inner_text().strip() == threshold
    assert (
        f"{calibration['decisions']} review decisions"
        in page.get_by_test_id("calibration-decisions").inner_text()
    )
    for band in calibration["bands"]:
        assert page.get_by_test_id(f"band-{band['band']}").is_visible()
    for check in calibration["checks"]:
        assert page.get_by_test_id(f"check-precision-{check['check']}").is_visible()
    page.get_by_test_id("btn-close-insight").click()
    wait_url(page, "insight", None)
    page.get_by_test_id("conversation-table").wait_for()

    # 6. Quality rules and the judge mode from the Datasets page.
    open_app(page, f"/?view=datasets&dataset_id={dsid}")
    rules = page.get_by_test_id("quality-rules")
    rules.wait_for()
    rules.scroll_into_view_if_needed()
    page.get_by_test_id("rules-banned").fill("guaranteed returns\nrisk-free")
    page.get_by_test_id("btn-add-disclaimer").click()
    page.get_by_test_id("disclaimer-text-0").fill("ok")  # too short: the API refuses
    page.get_by_test_id("btn-save-rules").click()
    errors = page.get_by_test_id("rules-errors")
    errors.wait_for()
    assert "Disclaimer 1, wording" in errors.inner_text()
    assert api.get(f"/api/datasets/{dsid}")[1]["quality_rules"]["banned_phrases"] == []
    topic = ds["taxonomy"]["topics"][0]["name"]
    page.get_by_test_id("disclaimer-text-0").fill(
        "Past performance does not guarantee future results."
    )
    page.get_by_test_id("disclaimer-topics-0-button").click()
    page.get_by_test_id(f"disclaimer-topics-0-option-{topic}").check()
    page.keyboard.press("Escape")
    page.get_by_test_id("btn-add-brand").click()
    page.get_by_test_id("brand-term-0").fill("Harbor & Pine")
    page.get_by_test_id("brand-wrong-0").fill("Harbour and Pine, Harbor Pine")
    page.get_by_test_id("judge-mode").select_option("off")
    page.get_by_test_id("btn-save-rules").click()
    page.locator('[data-testid="toast"][data-kind="success"]', has_text="rules saved").wait_for()
    assert not errors.is_visible()
    saved = api.get(f"/api/datasets/{dsid}")[1]
    assert saved["judge_mode"] == "off"
    assert saved["quality_rules"] == {
        "banned_phrases": ["guaranteed returns", "risk-free"],
        "required_disclaimers": [
            {"text": "Past performance does not guarantee future results.", "topics": [topic]}
        ],
        "brand_terms": [{"term": "Harbor & Pine", "wrong": ["Harbour and Pine", "Harbor Pine"]}],
    }
    # What was saved is what the page shows after a reload.
    page.reload()
    page.get_by_test_id("quality-rules").wait_for()
    assert page.get_by_test_id("rules-banned").input_value() == "guaranteed returns\nrisk-free"
    assert page.get_by_test_id("judge-mode").input_value() == "off"
