"""The web app at a desk (1280x800) and on a phone (390x844), in headless Debian Chromium
against the session's local stack:

- the layout: no sideways scroll, the main actions on screen, a compact header, the
  conversation full-screen with previous/next on a phone;
- undo of a review decision (the toast's Undo and the ``u`` key), toasts never over the
  conversation's text;
- "select all N matching": the filter acted on server-side, confirmed with counts, undone;
- per-turn feedback: mark a turn bad, note it, edit its text (versioned, the original kept);
- the coverage page: tier shortfalls above the heatmaps, a cell opens its conversations,
  a gap planned from its own button;
- axe-core (frontend/node_modules/axe-core, injected into each page) finds no serious or
  critical violation on any page.

``BRIGHTRUN_UPDATE_DOCS=1`` also writes the screenshots to docs/screenshots/ and the axe
results to docs/accessibility.md.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.browser_support import (
    ROOT,
    build_frontend,
    in_ci,
    launch,
    missing_browser,
    missing_frontend,
    open_app,
)

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 20_000
WIDTHS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}
AXE_JS = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
UPDATE_DOCS = os.environ.get("BRIGHTRUN_UPDATE_DOCS", "") not in ("", "0", "false")
SHOTS = ROOT / "docs" / "screenshots"
# page name -> width -> violations (each: id, impact, help, nodes)
AXE_RESULTS: dict[str, dict[str, list[dict[str, Any]]]] = {}

PERSONAS = ["Anxious Investor", "Retiree", "Student"]
EMOTIONS = ["Fear", "Hope", "Doubt"]
TOPICS = ["Fees", "Taxes"]


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
    if not AXE_JS.is_file():
        pytest.fail(
            f"{AXE_JS} is missing: run `npm --prefix frontend ci` (axe-core is a devDependency)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()
    if UPDATE_DOCS:
        write_accessibility_doc()


@pytest.fixture(params=list(WIDTHS), ids=[f"{w}px" for w in WIDTHS])
def width(request: Any) -> str:
    return str(request.param)


@pytest.fixture()
def page(browser: Any, stack: Any, width: str) -> Iterator[Any]:
    ctx = browser.new_context(viewport=WIDTHS[width], base_url=stack.url, accept_downloads=True)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def tid(page: Any, test_id: str) -> Any:
    return page.get_by_test_id(test_id)


def query_of(page: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)


def rows(page: Any) -> Any:
    return page.locator('[data-testid^="conv-row-"]')


def open_first_row(page: Any) -> None:
    """Open the first conversation once the page has settled (the dataset and its
    settings load after the first rows paint)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_load_state("networkidle")
    rows(page).first.click()
    try:
        tid(page, "panel-body").wait_for(timeout=5_000)
    except PlaywrightTimeout:  # a late re-render took the click: once more, as a user would
        rows(page).first.click()
        tid(page, "panel-body").wait_for()


def wait_panel(page: Any, conversation_id: str) -> None:
    page.locator(f'[data-testid="panel-body"][data-conversation-id="{conversation_id}"]').wait_for()


def shot(page: Any, name: str, width: str) -> None:
    if UPDATE_DOCS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"))


def axe(page: Any, name: str, width: str) -> None:
    """Run axe-core on the page as it is; no serious or critical violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
                        targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    AXE_RESULTS.setdefault(name, {})[width] = found
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe on {name} at {width}px: {bad}"


def no_sideways_scroll(page: Any) -> None:
    sw, cw = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert sw <= cw, f"the page scrolls sideways: {sw}px of content in {cw}px"


def on_screen(page: Any, locator: Any) -> None:
    box = locator.bounding_box()
    vp = page.viewport_size
    assert box is not None, "not rendered"
    assert box["x"] >= 0 and box["x"] + box["width"] <= vp["width"] + 1, box
    assert box["y"] >= 0 and box["y"] + box["height"] <= vp["height"] + 1, box


def overlap(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    if not a or not b:
        return False
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def seeded(api: Any, stack: Any, n: int = 27, target: int = 27, name: str = "Responsive") -> str:
    """A dataset with ``n`` written conversations (status generated, four turns each),
    stored straight through the repository (what generation leaves), and a 3x3x2
    taxonomy that they cover unevenly (so coverage has gaps)."""
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import Conversation, ConversationStatus, Tier, utcnow
    from chalicelib.store.records import TurnsRecord

    status, ds, _ = api.post("/api/datasets", {"name": name, "budget_usd": 10})
    assert status == 201, ds
    dsid = ds["dataset_id"]
    taxonomy = {
        "personas": [{"name": p, "description": p.lower()} for p in PERSONAS],
        "emotions": [{"name": e, "description": e.lower()} for e in EMOTIONS],
        "topics": [{"name": t, "description": t.lower()} for t in TOPICS],
        "intents": [{"name": "Understand", "description": "learn"}],
        "tones": [{"name": "Warm", "description": "kind"}],
    }
    assert api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)[0] == 200
    status, ds, _ = api.patch(f"/api/datasets/{dsid}", {"target_count": target})
    assert status == 200, ds
    tenant = stack.demo_users[0].tenant_id
    now = utcnow()
    convs = []
    for i in range(n):
        # persona x emotion: the last persona never meets the last emotion (a gap)
        persona = PERSONAS[i % 3]
        emotion = EMOTIONS[(i // 3) % 2] if persona == PERSONAS[2] else EMOTIONS[i % 3]
        conv = Conversation(
            tenant_id=tenant,
            dataset_id=dsid,
            persona=persona,
            emotion=emotion,
            topic=TOPICS[i % 2],
            intent="Understand",
            tone="Warm",
            tier=Tier.TEMPLATE,
            title=f"Conversation {i:02d}",
            status=ConversationStatus.GENERATED,
            quality_score=8.0,
            turn_count=4,
            generated_at=now,
        )
        turns = [
            {"turn_number": 1, "role": "user", "content": f"What do I pay in fees, case {i}?"},
            {"turn_number": 2, "role": "assistant", "content": f"Here is the breakdown {i}."},
            {"turn_number": 3, "role": "user", "content": "And over ten years?"},
            {"turn_number": 4, "role": "assistant", "content": "About the same each year."},
        ]
        TurnsRecord(tenant, conv.conversation_id, turns=turns, created_at=now).save()
        convs.append(conv)
    get_container().conversation_repo.add_planned(convs)
    return dsid


def statuses(api: Any, dsid: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in ("generated", "approved", "rejected"):
        status, body, _ = api.get(f"/api/conversations?dataset_id={dsid}&status={s}")
        assert status == 200, body
        out[s] = body["total"]
    return out


# --------------------------------------------------------------------------- layout + undo
def test_layout_review_and_undo(page: Any, api: Any, stack: Any, width: str) -> None:
    dsid = seeded(api, stack, name=f"Layout {width}")
    open_app(page, f"/?dataset_id={dsid}")
    rows(page).first.wait_for()
    assert rows(page).count() == 25
    no_sideways_scroll(page)
    # the next step is always in reach: here everything is written, so Review is primary
    on_screen(page, tid(page, "btn-review"))
    on_screen(page, tid(page, "btn-export"))
    assert tid(page, "btn-generate-all").is_disabled()
    assert "every one of the 27" in tid(page, "generate-all-reason").inner_text()
    header = page.locator(".app-header").bounding_box()
    assert header and header["height"] <= 0.15 * WIDTHS[width]["height"], header
    if width == "390":
        # one column: every card starts at the same x; filters live in a drawer
        xs = {
            round(b["x"])
            for b in rows(page).evaluate_all(
                "els => els.slice(0, 5).map(e => e.getBoundingClientRect().toJSON())"
            )
        }
        assert len(xs) == 1, xs
        assert not tid(page, "filter-drawer").is_visible()
        tid(page, "btn-open-filters").click()
        tid(page, "filter-drawer").wait_for(state="visible")
        on_screen(page, tid(page, "btn-close-filters"))
        shot(page, "filters", width)
        axe(page, "filters-drawer", width)
        tid(page, "btn-close-filters").click()
    shot(page, "dashboard", width)
    axe(page, "dashboard", width)

    ids = [
        r.removeprefix("conv-row-")
        for r in rows(page).evaluate_all("els => els.map(e => e.dataset.testid)")
    ]
    rows(page).first.click()
    wait_panel(page, ids[0])
    panel = tid(page, "review-panel").bounding_box()
    if width == "390":  # full-screen, previous/next at the top
        assert panel and panel["x"] == 0 and panel["y"] == 0 and panel["width"] == 390, panel
        on_screen(page, tid(page, "btn-next"))
        on_screen(page, tid(page, "btn-prev"))
    # what it was written for, before the turns
    context_box = tid(page, "panel-context").bounding_box()
    turns_box = tid(page, "turns").bounding_box()
    assert context_box and turns_box and context_box["y"] < turns_box["y"]
    no_sideways_scroll(page)
    shot(page, "review", width)
    axe(page, "review", width)

    # approve with the keyboard: saved at once, with an Undo that `u` triggers
    page.keyboard.press("a")
    wait_panel(page, ids[1])
    toast = page.locator('[data-testid="toast"]', has=tid(page, "toast-undo"))
    toast.wait_for()
    assert statuses(api, dsid)["approved"] == 1
    # the toast never covers the conversation (on a phone, the panel ends above it)
    assert not overlap(toast.bounding_box(), tid(page, "review-panel").bounding_box())
    shot(page, "undo", width)
    page.keyboard.press("u")
    wait_panel(page, ids[0])  # back to the conversation whose decision was undone
    page.locator('[data-testid="toast"]', has_text="Undone").wait_for()
    assert tid(page, "panel-status").inner_text() == "Generated"
    assert statuses(api, dsid)["approved"] == 0

    # reject, then undo from the toast's button
    page.keyboard.press("r")
    wait_panel(page, ids[1])
    assert statuses(api, dsid)["rejected"] == 1
    tid(page, "toast-undo").last.click()
    wait_panel(page, ids[0])
    page.locator('[data-testid="toast"]', has_text="Undone").last.wait_for()
    assert statuses(api, dsid) == {"generated": 27, "approved": 0, "rejected": 0}


def test_reject_note_required(page: Any, api: Any, stack: Any, width: str) -> None:
    dsid = seeded(api, stack, n=3, name=f"Notes {width}")
    status, ds, _ = api.patch(f"/api/datasets/{dsid}", {"require_reject_note": True})
    assert status == 200 and ds["require_reject_note"] is True, ds
    open_app(page, f"/?dataset_id={dsid}")
    open_first_row(page)
    cid = tid(page, "panel-body").get_attribute("data-conversation-id")
    page.wait_for_load_state("networkidle")  # the dataset (and its setting) loaded too
    page.keyboard.press("r")  # no note yet: asked for one, nothing saved
    tid(page, "note-required").wait_for()
    assert page.evaluate("document.activeElement.dataset.testid") == "notes-input"
    assert statuses(api, dsid)["rejected"] == 0
    page.keyboard.type("too pushy about fees")
    page.keyboard.press("Control+Enter")
    page.locator('[data-testid="toast"]', has_text="Rejected").wait_for()
    status, conv, _ = api.get(f"/api/conversations/{cid}")
    assert conv["status"] == "rejected" and conv["reviewer_notes"] == "too pushy about fees"


# --------------------------------------------------------------------------- select all matching
def test_select_all_matching_confirm_and_undo(page: Any, api: Any, stack: Any, width: str) -> None:
    dsid = seeded(api, stack, name=f"Matching {width}")
    open_app(page, f"/?dataset_id={dsid}&status=generated")
    rows(page).first.wait_for()
    assert rows(page).count() == 25
    tid(page, "select-all").check()
    assert tid(page, "selected-count").inner_text() == "25 selected"
    banner = tid(page, "select-all-banner")
    assert "All 25 conversations on this page are selected" in banner.inner_text()
    tid(page, "btn-select-all-matching").click()
    assert tid(page, "selected-count").inner_text() == "All 27 matching selected"
    shot(page, "select-all", width)
    axe(page, "select-all-matching", width)
    tid(page, "btn-bulk-approve").click()
    dialog = tid(page, "confirm-dialog")
    dialog.wait_for()
    tid(page, "bulk-will-change").wait_for()
    assert tid(page, "bulk-will-change").inner_text().startswith("27 will be approved")
    assert tid(page, "btn-confirm").inner_text() == "Approve 27"
    shot(page, "bulk-confirm", width)
    axe(page, "bulk-confirm", width)
    tid(page, "btn-confirm").click()
    page.locator('[data-testid="toast"]', has_text="Approved: 27 conversations").wait_for()
    assert statuses(api, dsid)["approved"] == 27
    tid(page, "empty-filtered").wait_for()  # nothing left waiting for review
    tid(page, "toast-undo").click()
    page.locator('[data-testid="toast"]', has_text="Undone: 27").wait_for()
    assert statuses(api, dsid) == {"generated": 27, "approved": 0, "rejected": 0}
    rows(page).first.wait_for()


# --------------------------------------------------------------------------- per-turn feedback
def test_per_turn_feedback(page: Any, api: Any, stack: Any, width: str) -> None:
    dsid = seeded(api, stack, n=3, name=f"Turns {width}")
    open_app(page, f"/?dataset_id={dsid}")
    open_first_row(page)
    cid = tid(page, "panel-body").get_attribute("data-conversation-id")
    _, before, _ = api.get(f"/api/conversations/{cid}")
    original = before["turns"][1]["content"]

    tid(page, "btn-turn-bad-1").click()
    page.locator('[data-testid="turn-1"][data-bad="true"]').wait_for()
    tid(page, "btn-turn-note-2").click()
    tid(page, "turn-note-input-2").fill("numbers missing")
    tid(page, "btn-turn-note-save-2").click()
    tid(page, "turn-note-2").wait_for()
    tid(page, "btn-turn-edit-2").click()
    tid(page, "turn-edit-input-2").fill("Fees are 0.8% a year, billed quarterly.")
    tid(page, "btn-turn-save-2").click()
    page.locator('[data-testid="turn-2"][data-edited="true"]').wait_for()
    assert "Fees are 0.8% a year" in tid(page, "turn-2").locator(".turn-content").inner_text()
    tid(page, "btn-turn-original-2").click()
    assert original in tid(page, "turn-2").inner_text()
    page.locator('[data-testid="panel-version"]', has_text="1 turn(s) edited").wait_for()
    shot(page, "turn-feedback", width)
    axe(page, "turn-feedback", width)

    _, after, _ = api.get(f"/api/conversations/{cid}")
    assert after["version"] == before["version"] + 3  # bad, note, edit: one version each
    assert tid(page, "panel-version").inner_text().startswith(f"v{after['version']}")
    t1, t2 = after["turns"][0], after["turns"][1]
    assert t1["feedback"]["bad"] is True
    assert t2["feedback"]["note"] == "numbers missing" and t2["feedback"]["edited"] is True
    assert t2["content"] == "Fees are 0.8% a year, billed quarterly."
    assert t2["feedback"]["original_content"] == original


# --------------------------------------------------------------------------- coverage page
def test_coverage_page(page: Any, api: Any, stack: Any, width: str) -> None:
    dsid = seeded(api, stack, n=12, target=30, name=f"Coverage {width}")
    open_app(page, f"/?view=coverage&dataset_id={dsid}")
    tid(page, "coverage-page").wait_for()
    tiers = tid(page, "coverage-tiers")
    tiers.wait_for()
    heat = tid(page, "heatmap-persona_emotion")
    # the tier shortfall first, then the heatmaps
    assert tiers.bounding_box()["y"] < heat.bounding_box()["y"]  # type: ignore[index]
    no_sideways_scroll(page)
    shot(page, "coverage", width)
    axe(page, "coverage", width)

    # a gap planned from its own button: exactly its count, inside the gap
    gap = tid(page, "btn-plan-gap-0")
    label = gap.inner_text()
    n = int(label.split()[-1])
    _, listed, _ = api.get(f"/api/conversations?dataset_id={dsid}")
    gap.click()
    page.locator('[data-testid="toast"]', has_text=f"Planned {n} new conversation").wait_for()
    _, after, _ = api.get(f"/api/conversations?dataset_id={dsid}")
    assert after["total"] == listed["total"] + n
    status, ds, _ = api.get(f"/api/datasets/{dsid}")
    assert ds["target_count"] == 30  # planning a gap leaves the target alone

    # a heatmap cell opens its conversations in the table (the URL holds the filter)
    cell = tid(page, "cell-link-persona_emotion-0-0")
    count = int(cell.inner_text())
    assert count > 0
    cell.click()
    page.wait_for_function("() => !new URLSearchParams(location.search).get('view')")
    q = query_of(page)
    assert q["persona"] == [PERSONAS[0]] and q["emotion"] == [EMOTIONS[0]], page.url
    deadline = time.time() + 10
    while time.time() < deadline and rows(page).count() != count:
        page.wait_for_timeout(100)
    assert rows(page).count() == count
    assert set(
        rows(page).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    ) and all(
        PERSONAS[0] in a
        for a in rows(page).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    )


# --------------------------------------------------------------------------- every other page
@pytest.mark.parametrize("view", ["datasets", "templates", "exports", "notifications"])
def test_other_pages_fit_and_pass_axe(
    page: Any, api: Any, stack: Any, width: str, view: str
) -> None:
    open_app(page, f"/?view={view}")
    page.locator(f'[data-testid="nav-{view}"][aria-current="page"]').wait_for()
    page.wait_for_load_state("networkidle")
    no_sideways_scroll(page)
    if view == "datasets":
        shot(page, "datasets", width)
    axe(page, view, width)


def test_sign_in_page(browser: Any, stack: Any, width: str) -> None:
    ctx = browser.new_context(viewport=WIDTHS[width], base_url=stack.url)
    try:
        page = ctx.new_page()
        page.goto("/")
        tid(page, "signin-email").wait_for()
        # never prefilled with a user (of any organisation)
        assert tid(page, "signin-email").input_value() == ""
        assert tid(page, "signin-password").input_value() == ""
        no_sideways_scroll(page)
        axe(page, "sign-in", width)
        user = stack.demo_users[1]
        tid(page, "signin-email").fill(user.email)
        tid(page, "signin-password").fill("wrong-password")
        tid(page, "btn-signin").click()
        tid(page, "signin-error").wait_for()
        assert tid(page, "signin-password").input_value() == ""  # a wrong password is cleared
        assert tid(page, "signin-email").input_value() == user.email
    finally:
        ctx.close()


def write_accessibility_doc() -> None:
    lines = [
        "# Accessibility: axe-core results per page",
        "",
        "Produced by `BRIGHTRUN_UPDATE_DOCS=1 .venv/bin/pytest tests/e2e/test_browser_responsive.py`:",
        "axe-core (the npm package, injected into each page in headless Chromium) with its",
        "default rules (WCAG 2 A/AA and best practices). A serious or critical violation fails",
        "the test; moderate and minor ones are listed here.",
        "",
        "| page | width | serious / critical | moderate / minor | rules |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(AXE_RESULTS):
        for w in sorted(AXE_RESULTS[name], key=int, reverse=True):
            found = AXE_RESULTS[name][w]
            hard = [v for v in found if v["impact"] in ("serious", "critical")]
            soft = [v for v in found if v not in hard]
            rules = ", ".join(f"{v['id']} ({v['impact']}, {v['nodes']})" for v in found) or "none"
            lines.append(f"| {name} | {w}px | {len(hard)} | {len(soft)} | {rules} |")
    (ROOT / "docs" / "accessibility.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- keyboard
def tab_through(page: Any, limit: int = 120) -> list[str]:
    """The data-testid (or tag) of each element Tab reaches, in order, from the top."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    seen: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return e ? (e.dataset.testid || e.id || e.tagName) : ''; }"
            )
        )
    return seen


def test_every_action_reachable_by_keyboard(page: Any, api: Any, stack: Any, width: str) -> None:
    dsid = seeded(api, stack, n=12, target=30, name=f"Keyboard {width}")
    open_app(page, f"/?dataset_id={dsid}")
    rows(page).first.wait_for()
    if width == "390":
        # the drawer opens from the keyboard, and Escape/Done closes it
        tid(page, "btn-open-filters").focus()
        page.keyboard.press("Enter")
        tid(page, "filter-drawer").wait_for(state="visible")
        reached = tab_through(page, 40)
        assert "search-input" in reached and "filter-persona-button" in reached
        tid(page, "btn-close-filters").focus()
        page.keyboard.press("Enter")
    reached = tab_through(page)
    for needed in (
        "nav-coverage",
        "dataset-picker",
        "btn-open-trash",
        "btn-review",
        "btn-export",
        "select-all",
    ):
        assert needed in reached, (needed, reached)
    assert any(r.startswith("sort-") for r in reached), reached
    row = next(r for r in reached if r.startswith("conv-row-"))
    tid(page, row).focus()
    page.keyboard.press("Enter")
    wait_panel(page, row.removeprefix("conv-row-"))
    # the review panel's actions, the per-turn ones included, by Tab from its start
    tid(page, "btn-close-panel").focus()
    inside: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        inside.append(page.evaluate("() => document.activeElement?.dataset.testid || ''"))
    for needed in ("btn-approve", "btn-reject", "notes-input", "btn-turn-bad-1", "btn-turn-edit-1"):
        assert needed in inside, (needed, inside)
    page.keyboard.press("Escape")
    tid(page, "review-panel").wait_for(state="detached")

    # the coverage page: heatmap cells and each gap's Plan button
    open_app(page, f"/?view=coverage&dataset_id={dsid}")
    tid(page, "coverage-tiers").wait_for()
    reached = tab_through(page, 160)
    assert any(r.startswith("cell-link-persona_emotion-") for r in reached), reached
    assert "btn-plan-gap-0" in reached, reached
    cell = next(r for r in reached if r.startswith("cell-link-persona_emotion-"))
    tid(page, cell).focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => new URLSearchParams(location.search).getAll('persona').length === 1"
    )


# --------------------------------------------------------------------------- the journey on a phone
def test_phone_journey_sample_to_export(browser: Any, api: Any, stack: Any) -> None:
    """Sample -> plan -> Generate all from the pinned bar -> filter in the drawer ->
    review with the panel's buttons -> Export approved from the pinned bar, at 390x844."""
    ctx = browser.new_context(viewport=WIDTHS["390"], base_url=stack.url, accept_downloads=True)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        open_app(page, "/?view=datasets")
        _, existing, _ = api.get("/api/datasets")
        known = {d["dataset_id"] for d in existing["items"]}
        tid(page, "btn-load-sample").click()
        deadline = time.time() + 30
        while time.time() < deadline and query_of(page).get("dataset_id", [""])[0] in known | {""}:
            page.wait_for_timeout(100)
        dsid = query_of(page)["dataset_id"][0]
        assert dsid not in known
        tid(page, "plan-count").fill("6")
        tid(page, "plan-target-note").wait_for()  # planning 6 changes the target: it says so
        tid(page, "btn-plan").click()
        page.locator('[data-testid="toast"]', has_text="Planned 6").wait_for()
        tid(page, "btn-open-dashboard").click()
        rows(page).nth(5).wait_for()
        no_sideways_scroll(page)
        on_screen(page, tid(page, "btn-generate-all"))
        # nothing approved yet: Export says so instead of opening
        page.locator('[data-testid="btn-export"][aria-disabled="true"]').wait_for()
        assert "nothing approved yet" in tid(page, "export-reason").inner_text()
        tid(page, "btn-generate-all").click()
        tid(page, "generate-dialog").wait_for()
        start = tid(page, "btn-start-generation")
        if not start.count():
            start = tid(page, "btn-start-anyway")
        start.click()
        page.locator('[data-testid="progress-tracker"][data-status="completed"]').wait_for(
            timeout=60_000
        )
        # nothing left to write: Review takes Generate all's place in the pinned bar
        tid(page, "btn-review").wait_for()
        on_screen(page, tid(page, "btn-review"))
        tid(page, "btn-review").click()
        page.wait_for_function(
            "() => new URLSearchParams(location.search).get('status') === 'generated'"
        )

        # the filter drawer: one persona
        _, listed, _ = api.get(f"/api/conversations?dataset_id={dsid}&status=generated")
        persona = listed["items"][0]["persona"]
        expected = sum(1 for c in listed["items"] if c["persona"] == persona)
        tid(page, "btn-open-filters").click()
        tid(page, "filter-persona-button").click()
        tid(page, f"filter-persona-option-{persona}").check()
        tid(page, "btn-close-filters").click()
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid^=\"conv-row-\"]').length === n",
            arg=expected,
        )
        assert tid(page, "btn-open-filters").inner_text() == "Filters (2)"

        # review full-screen with the panel's own buttons, then back
        rows(page).first.click()
        tid(page, "panel-body").wait_for()
        on_screen(page, tid(page, "btn-approve"))
        tid(page, "btn-approve").click()
        page.locator('[data-testid="toast"]', has_text="Approved").wait_for()
        tid(page, "btn-close-panel").click()
        tid(page, "review-panel").wait_for(state="detached")

        # export from the pinned bar
        page.goto(f"/?dataset_id={dsid}")
        tid(page, "btn-export").wait_for()
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"btn-export\"]').hasAttribute('aria-disabled')"
        )
        on_screen(page, tid(page, "btn-export"))
        tid(page, "btn-export").click()
        tid(page, "export-dialog").wait_for()
        tid(page, "export-approved-count").wait_for()
        assert tid(page, "export-approved-count").inner_text().startswith("1 approved conversation")
        tid(page, "export-format-sharegpt").check()
        tid(page, "btn-export-create").click()
        page.locator('[data-testid="export-status"][data-status="ready"]').wait_for(timeout=30_000)
        with page.expect_download() as info:
            tid(page, "export-download").click()
        assert info.value.suggested_filename.endswith(".jsonl")  # ShareGPT downloads as JSONL
        no_sideways_scroll(page)
    finally:
        ctx.close()


# --------------------------------------------------------------------------- taxonomy editor
def test_taxonomy_editor_says_what_happens_to_planned(
    page: Any, api: Any, stack: Any, width: str
) -> None:
    dsid = seeded(api, stack, n=9, name=f"Taxonomy {width}")
    open_app(page, f"/?view=datasets&dataset_id={dsid}")
    tid(page, "taxonomy-editor").wait_for()
    planned = sum(1 for i in range(9) if i % 3 == 0)  # the first persona's conversations
    tid(page, "tax-name-persona-0").fill("Worried Saver")
    tid(page, "tax-add").click()
    tid(page, "tax-name-persona-3").fill("Founder")
    changes = tid(page, "tax-changes")
    rename = f"Rename “{PERSONAS[0]}” to “Worried Saver”. {planned} planned conversations keep"
    # the counts come from coverage, which may answer after the edits are typed
    page.locator('[data-testid="tax-changes"]', has_text=rename).wait_for(timeout=15_000)
    text = changes.inner_text()
    assert rename in text
    assert "Add “Founder”" in text
    # the server's preview agrees (nothing written yet)
    tid(page, "tax-preview-affected").wait_for()
    assert tid(page, "tax-preview-affected").inner_text().startswith(f"{planned} conversations")
    shot(page, "taxonomy-editor", width)
    axe(page, "taxonomy-editor", width)
    tid(page, "btn-save-taxonomy").click()
    page.locator('[data-testid="toast"]', has_text="Taxonomy saved").wait_for()
    _, ds, _ = api.get(f"/api/datasets/{dsid}")
    names = [p["name"] for p in ds["taxonomy"]["personas"]]
    assert names == ["Worried Saver", PERSONAS[1], PERSONAS[2], "Founder"], names
    _, kept, _ = api.get(
        f"/api/conversations?dataset_id={dsid}&persona={urllib.parse.quote(PERSONAS[0])}"
    )
    assert kept["total"] == planned  # planned conversations keep their value
