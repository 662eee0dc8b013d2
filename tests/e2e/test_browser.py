"""The web app in a real browser (headless Debian Chromium via Playwright) against the
session's local stack serving the built frontend.

- the whole reviewer journey through the UI: sample dataset -> plan -> Generate All
  (estimate dialog) -> progress to completion -> two-dimension filter kept in the URL
  across a reload -> keyboard review (a/r/n/j/k) -> bulk approve with the header
  checkbox -> OpenAI JSONL export downloaded and parsed;
- optimistic locking: two browsers on one conversation, the second sees the conflict;
- untrusted model text (an HTML payload in a turn) is shown as text, never run;
- a Bedrock fine-tune started from the Exports page on an anthropic export, its status
  (from moto's Bedrock) shown and stopped in the page.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
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
    sign_in_if_needed,
)

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 20_000


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
def context(browser: Any, stack: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True, base_url=stack.url)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


def tid(page: Any, test_id: str) -> Any:
    return page.get_by_test_id(test_id)


def rows(page: Any) -> Any:
    return page.locator('[data-testid^="conv-row-"]')


def wait_until(page: Any, script: str, what: str, arg: Any = None, timeout: float = 30_000) -> None:
    """``page.wait_for_function`` that says what it waited for and what the table showed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(script, arg=arg, timeout=timeout)
    except PlaywrightTimeout as e:
        shown = rows(page).evaluate_all("els => els.map(e => e.dataset.status)")
        raise AssertionError(
            f"timed out waiting for {what}; table rows by status: {Counter(shown)}, "
            f"count text: {tid(page, 'conversation-count').all_inner_texts()}, url: {page.url}"
        ) from e


def wait_rows(page: Any, n: int) -> None:
    wait_until(
        page,
        "n => document.querySelectorAll('[data-testid^=\"conv-row-\"]').length === n",
        f"{n} table rows",
        arg=n,
    )


def row_ids(page: Any) -> list[str]:
    return [
        r.removeprefix("conv-row-")
        for r in rows(page).evaluate_all("els => els.map(e => e.dataset.testid)")
    ]


def query_of(page: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)


def wait_panel(page: Any, conversation_id: str) -> None:
    page.locator(f'[data-testid="panel-body"][data-conversation-id="{conversation_id}"]').wait_for()


def wait_job(api: Any, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def watch_dialogs(page: Any) -> list[str]:
    """Messages of every alert/confirm/prompt the page opens (each dismissed)."""
    seen: list[str] = []

    def on_dialog(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


def list_all(api: Any, dataset_id: str, **filters: str) -> list[dict[str, Any]]:
    qs = urllib.parse.urlencode({"dataset_id": dataset_id, "page_size": 100, **filters})
    status, body, _ = api.get(f"/api/conversations?{qs}")
    assert status == 200, body
    items: list[dict[str, Any]] = body["items"]
    return items


# --------------------------------------------------------------------------- journey
def test_reviewer_journey_from_sample_to_export(context: Any, api: Any, stack: Any) -> None:
    page = context.new_page()
    dialogs = watch_dialogs(page)

    # 1. A dataset from the sample (Datasets page), then plan 12 conversations.
    open_app(page, "/?view=datasets")
    signed_in = tid(page, "signed-in-user")
    if signed_in.count():  # the stack asks for sign-in: we are demo user A
        assert stack.demo_users[0].email in signed_in.inner_text()
    _, existing, _ = api.get("/api/datasets")
    known = {d["dataset_id"] for d in existing["items"]}
    tid(page, "btn-load-sample").click()
    # Other tests' datasets may be selected first: wait until the new sample is.
    deadline = time.time() + 30
    while time.time() < deadline:
        selected = query_of(page).get("dataset_id", [""])[0]
        if selected and selected not in known:
            break
        page.wait_for_timeout(100)
    tid(page, "plan-section").wait_for()
    dataset_id = query_of(page)["dataset_id"][0]
    assert dataset_id not in known, "the new sample dataset was not selected"
    status, ds, _ = api.get(f"/api/datasets/{dataset_id}")
    assert status == 200 and ds["taxonomy"]["personas"], ds
    tid(page, "plan-count").fill("12")
    tid(page, "btn-plan").click()
    page.locator('[data-testid="toast"][data-kind="success"]', has_text="Planned 12").wait_for()
    tid(page, "btn-open-dashboard").click()
    wait_rows(page, 12)
    assert set(rows(page).evaluate_all("els => els.map(e => e.dataset.status)")) == {
        "not_generated"
    }
    assert tid(page, "conversation-count").inner_text() == "12 conversations"

    # 2. Generate All: the dialog shows the count, cost and time before anything starts.
    tid(page, "btn-generate-all").click()
    dialog = tid(page, "generate-dialog")
    dialog.wait_for()
    assert tid(page, "estimate-count").inner_text() == "12"
    assert re.fullmatch(r"\$\d+\.\d{2,4}", tid(page, "estimate-cost").inner_text())
    assert tid(page, "estimate-time").inner_text().strip()
    # ...with its likely range and what it is based on.
    low, high = re.fullmatch(
        r"\$(\d+\.\d{2,4}) \u2013 \$(\d+\.\d{2,4})", tid(page, "estimate-range").inner_text()
    ).groups()
    cost = float(tid(page, "estimate-cost").inner_text()[1:])
    assert float(low) <= cost <= float(high)
    assert tid(page, "estimate-basis").inner_text().startswith("Based on ")
    start = tid(page, "btn-start-generation")
    if not start.count():  # over the sample's budget: the dialog asks to confirm
        start = tid(page, "btn-start-anyway")
    start.click()
    dialog.wait_for(state="detached")

    # 3. The progress tracker follows the job to its summary.
    tracker = tid(page, "progress-tracker")
    tracker.wait_for()
    job_id = tracker.get_attribute("data-job-id")
    assert job_id
    page.locator('[data-testid="progress-tracker"][data-status="completed"]').wait_for(
        timeout=60_000
    )
    assert tid(page, "progress-bar").get_attribute("aria-valuenow") == "100"
    assert tid(page, "progress-count").inner_text().startswith("12 of 12")
    summary = tid(page, "progress-summary").inner_text()
    status, job, _ = api.get(f"/api/jobs/{job_id}")
    assert job["status"] == "completed" and job["completed"] + job["failed"] == 12, job
    assert f"{job['completed']} written" in summary
    wait_until(
        page,
        "() => ![...document.querySelectorAll('[data-testid^=\"conv-row-\"]')]"
        ".some(e => ['not_generated', 'generating'].includes(e.dataset.status))",
        "every row to show its written status",
    )

    # 4. Filter by two dimensions: both land in the URL and survive a reload.
    convs = list_all(api, dataset_id)
    assert len(convs) == 12
    pairs = Counter((c["persona"], c["emotion"]) for c in convs)
    (persona, emotion), expected = pairs.most_common(1)[0]
    tid(page, "filter-persona-button").click()
    tid(page, f"filter-persona-option-{persona}").check()
    tid(page, "filter-emotion-button").click()
    tid(page, f"filter-emotion-option-{emotion}").check()
    page.keyboard.press("Escape")
    wait_rows(page, expected)
    q = query_of(page)
    assert q["persona"] == [persona] and q["emotion"] == [emotion], page.url
    assert q["dataset_id"] == [dataset_id]
    filtered_ids = set(row_ids(page))
    assert filtered_ids == {
        c["conversation_id"] for c in convs if (c["persona"], c["emotion"]) == (persona, emotion)
    }
    page.reload()
    sign_in_if_needed(page)
    wait_rows(page, expected)
    assert set(row_ids(page)) == filtered_ids
    assert query_of(page)["persona"] == [persona]
    tid(page, f"filter-badge-persona-{persona}").wait_for()
    tid(page, f"filter-badge-emotion-{emotion}").wait_for()
    assert "(1)" in tid(page, "filter-persona-button").inner_text()
    tid(page, "btn-clear-filters").click()
    wait_rows(page, 12)
    assert "persona" not in query_of(page)

    # 5. Review three conversations with the keyboard only.
    ids = row_ids(page)
    status_of = dict(
        zip(ids, rows(page).evaluate_all("els => els.map(e => e.dataset.status)"), strict=True)
    )
    # Three written conversations in a row, and one after them.
    first = next(
        i
        for i in range(len(ids) - 3)
        if all(status_of[ids[i + k]] == "generated" for k in range(3))
    )
    tid(page, f"conv-row-{ids[first]}").locator("td").nth(2).click()
    wait_panel(page, ids[first])
    assert query_of(page)["conv"] == [ids[first]]
    page.keyboard.press("j")  # next ...
    wait_panel(page, ids[first + 1])
    page.keyboard.press("k")  # ... and back
    wait_panel(page, ids[first])
    reviewed = ids[first : first + 3]
    page.keyboard.press("a")  # approve, then the panel moves to the next one
    wait_panel(page, reviewed[1])
    page.keyboard.press("r")  # reject
    wait_panel(page, reviewed[2])
    page.keyboard.press("n")  # notes: typing there is not a shortcut
    assert page.evaluate("document.activeElement.dataset.testid") == "notes-input"
    page.keyboard.type("clear and kind")
    page.keyboard.press("Escape")  # leaves the text box, keeps the panel
    page.keyboard.press("a")
    wait_panel(page, ids[first + 3])
    page.keyboard.press("k")
    wait_panel(page, reviewed[2])
    assert tid(page, "panel-status").inner_text() == "Approved"
    statuses = {}
    for cid in reviewed:
        status, conv, _ = api.get(f"/api/conversations/{cid}")
        statuses[cid] = (conv["status"], conv.get("reviewer_notes"))
    assert statuses == {
        reviewed[0]: ("approved", None),
        reviewed[1]: ("rejected", None),
        reviewed[2]: ("approved", "clear and kind"),
    }, statuses
    page.keyboard.press("Escape")
    tid(page, "review-panel").wait_for(state="detached")
    assert "conv" not in query_of(page)

    # 6. Bulk approve everything still waiting for review (header checkbox).
    tid(page, "filter-status-button").click()
    tid(page, "filter-status-option-generated").check()
    page.keyboard.press("Escape")
    waiting = list_all(api, dataset_id, status="generated")
    wait_rows(page, len(waiting))
    tid(page, "select-all").check()
    assert tid(page, "selected-count").inner_text() == f"{len(waiting)} selected"
    tid(page, "btn-bulk-approve").click()
    # asked first, with the server's count of what would change
    tid(page, "confirm-dialog").wait_for()
    tid(page, "bulk-will-change").wait_for()
    assert tid(page, "bulk-will-change").inner_text().startswith(f"{len(waiting)} will be approved")
    tid(page, "btn-confirm").click()
    page.locator(
        '[data-testid="toast"][data-kind="success"]', has_text=f"Approved: {len(waiting)}"
    ).wait_for()
    tid(page, "empty-filtered").wait_for()
    approved = list_all(api, dataset_id, status="approved")
    assert len(approved) == len(waiting) + 2
    tid(page, "btn-clear-filters").click()
    wait_rows(page, 12)

    # 7. Export OpenAI JSONL from the dialog and read the downloaded file.
    tid(page, "btn-export").click()
    tid(page, "export-dialog").wait_for()
    tid(page, "export-format-openai").check()
    tid(page, "btn-export-create").click()
    page.locator('[data-testid="export-status"][data-status="ready"]').wait_for(timeout=30_000)
    with page.expect_download() as info:
        tid(page, "export-download").click()
    download = info.value
    name = download.suggested_filename
    assert f"-openai-{len(approved)}-conversations-" in name and name.endswith(".jsonl"), name
    text = Path(download.path()).read_text(encoding="utf-8")
    lines = [json.loads(x) for x in text.splitlines()]
    assert len(lines) == len(approved)
    for line in lines:
        roles = [m["role"] for m in line["messages"]]
        assert roles[0] == "system" and roles[1] == "user" and roles[-1] == "assistant"
    assert dialogs == []


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def written(api: Any) -> dict[str, Any]:
    """A small dataset with generated conversations, set up over the API."""
    status, ds, _ = api.post("/api/datasets", {"name": "Browser checks", "budget_usd": 10})
    assert status == 201, ds
    dsid = ds["dataset_id"]
    taxonomy = {
        "personas": [{"name": "Anxious Investor", "description": "worried"}],
        "emotions": [{"name": "Fear", "description": "afraid"}],
        "topics": [{"name": "Market Volatility", "description": "swings"}],
        "intents": [{"name": "Seek Reassurance", "description": "comfort"}],
        "tones": [{"name": "Warm", "description": "kind"}],
    }
    assert api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)[0] == 200
    status, plan, _ = api.post(
        f"/api/datasets/{dsid}/plan",
        {"count": 3, "tier_distribution": {"template": 1, "scenario": 0, "edge_case": 0}},
    )
    assert status == 201, plan
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["completed"] == 3, job
    return {"dataset_id": dsid, "ids": plan["conversation_ids"]}


# --------------------------------------------------------------------------- 409
def test_second_reviewer_sees_the_newer_version(browser: Any, stack: Any, written: dict) -> None:
    cid = written["ids"][0]
    url = f"/?dataset_id={written['dataset_id']}&conv={cid}"
    pages = []
    contexts = []
    try:
        for _ in range(2):
            ctx = browser.new_context(viewport=VIEWPORT, base_url=stack.url)
            ctx.set_default_timeout(TIMEOUT_MS)
            contexts.append(ctx)
            page = ctx.new_page()
            open_app(page, url)
            wait_panel(page, cid)
            assert tid(page, "panel-status").inner_text() == "Generated"
            pages.append(page)
        first, second = pages
        tid(first, "btn-approve").click()
        first.locator('[data-testid="toast"][data-kind="success"]').first.wait_for()

        tid(second, "btn-reject").click()
        banner = tid(second, "conflict-banner")
        banner.wait_for()
        assert "Someone else changed this conversation" in banner.inner_text()
        assert "Approved" in banner.inner_text()
        # The panel now shows the newer version; the reject was not saved.
        assert tid(second, "panel-status").inner_text() == "Approved"
    finally:
        for ctx in contexts:
            ctx.close()


# --------------------------------------------------------------------------- untrusted text
def _poison(conversation_id: str) -> str:
    """Put an HTML payload into a generated conversation's first turn and title,
    in-process through the store (as a model could have written it)."""
    from chalicelib.bootstrap import get_container
    from chalicelib.store.records import ConversationRecord, TurnsRecord

    record = next(ConversationRecord.scan(ConversationRecord.conversation_id == conversation_id))
    tenant = record.tenant_id
    turns = TurnsRecord.get(tenant, conversation_id, consistent_read=True)
    turns.turns[0]["content"] = f"Hello {XSS} <script>alert(2)</script> & bye"
    turns.save()
    record.update(
        actions=[
            ConversationRecord.title.set(f"Title {XSS}"),
            ConversationRecord.updated_ms.set(int(time.time() * 1000)),
        ]
    )
    get_container().dataset_repo.bump_conversation_seq(tenant, record.dataset_id)
    return tenant


def test_model_text_is_shown_as_text(context: Any, written: dict) -> None:
    cid = written["ids"][1]
    _poison(cid)
    page = context.new_page()
    fired = watch_dialogs(page)
    open_app(page, f"/?dataset_id={written['dataset_id']}&conv={cid}")
    wait_panel(page, cid)
    turn = tid(page, "turn-1").locator(".turn-content")
    assert turn.inner_text() == f"Hello {XSS} <script>alert(2)</script> & bye"
    assert "&lt;img src=x onerror=alert(1)&gt;" in turn.inner_html()
    assert page.locator(".panel-title").inner_text() == f"Title {XSS}"
    assert tid(page, "review-panel").locator("img, script").count() == 0
    # Give any injected handler time to fire (a broken image errors immediately).
    page.wait_for_timeout(300)
    assert fired == []


# --------------------------------------------------------------------------- fine-tune


def test_a_bedrock_fine_tune_started_from_the_exports_page(
    context: Any, api: Any, stack: Any
) -> None:
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import Conversation, ConversationStatus, Tier, utcnow
    from chalicelib.store.records import TurnsRecord

    tenant = stack.demo_users[0].tenant_id
    status, ds, _ = api.post("/api/datasets", {"name": "Browser fine-tune", "budget_usd": 5})
    assert status == 201, ds
    now = utcnow()
    conversations = []
    for i in range(20):
        conv = Conversation(
            tenant_id=tenant,
            dataset_id=ds["dataset_id"],
            persona="Anxious Investor",
            emotion="Fear",
            topic="Fees",
            intent="Understand",
            tone="Warm",
            tier=Tier.TEMPLATE,
            title=f"ft {i}",
            status=ConversationStatus.APPROVED,
            quality_score=8.0,
            turn_count=2,
            approved_by="seed@example.com",
            approved_at=now,
        )
        turns = [
            {"turn_number": 1, "role": "user", "content": f"What do I pay in fees, case {i}?"},
            {"turn_number": 2, "role": "assistant", "content": f"Here is the breakdown {i}."},
        ]
        TurnsRecord(tenant, conv.conversation_id, turns=turns, created_at=now).save()
        conversations.append(conv)
    get_container().conversation_repo.add_planned(conversations)
    status, record, _ = api.post(
        "/api/export/conversations",
        {
            "format": "anthropic",
            "filters": {"dataset_id": ds["dataset_id"]},
            "split": {"train": 0.8, "validation": 0.1, "test": 0.1},
        },
    )
    assert status == 201 and record["status"] == "ready", record
    export_id = record["export_id"]

    page = context.new_page()
    dialogs = watch_dialogs(page)
    open_app(page, stack.url)
    tid(page, "nav-exports").click()
    tid(page, f"btn-fine-tune-{export_id}").click()
    tid(page, "fine-tune-dialog").wait_for()
    tid(page, "fine-tune-epochs").fill("3")
    page.locator('[data-testid="fine-tune-estimate"]', has_text="3 epochs").wait_for()
    tid(page, "btn-fine-tune-start").click()
    tid(page, "fine-tune-dialog").wait_for(state="detached")

    status, listed, _ = api.get("/api/fine-tunes")
    assert status == 200, listed
    ft = next(f for f in listed["items"] if f["export_id"] == export_id)
    assert ft["hyperparameters"]["epochCount"] == 3
    shown = tid(page, f"fine-tune-status-{ft['fine_tune_id']}")
    shown.wait_for()
    assert shown.inner_text() == "InProgress" and shown.get_attribute("data-status") == "InProgress"
    job = (
        get_container().client("bedrock").get_model_customization_job(jobIdentifier=ft["job_name"])
    )
    assert job["hyperParameters"]["epochCount"] == "3"
    assert job["trainingDataConfig"]["s3Uri"].endswith(
        next(f["filename"] for f in record["files"] if f["split"] == "train")
    )

    tid(page, f"btn-fine-tune-stop-{ft['fine_tune_id']}").click()
    page.locator(
        f'[data-testid="fine-tune-status-{ft["fine_tune_id"]}"][data-status="Stopped"]'
    ).wait_for()
    assert dialogs == []
