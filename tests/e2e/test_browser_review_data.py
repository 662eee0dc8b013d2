"""In headless Chromium: a regenerated conversation's earlier version in the review
panel, the trash (restore), and archiving / deleting a dataset from the Datasets page."""

from __future__ import annotations

import time
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
    deadline = time.time() + 120
    while time.time() < deadline:
        job = api.get(f"/api/jobs/{job_id}")[1]
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            assert job["status"] == "completed", job
            return
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish")


def test_versions_trash_and_dataset_archive_delete_in_the_browser(
    page: Any, api: Any, stack: Any
) -> None:
    status, ds, _ = api.post("/api/datasets/sample")
    assert status == 201, ds
    dsid = ds["dataset_id"]
    plan = api.post(f"/api/datasets/{dsid}/plan", {"count": 4})[1]
    cid, spare = plan["conversation_ids"][0], plan["conversation_ids"][1]
    job = api.post("/api/conversations/generate", {"conversation_id": cid, "confirm": True})[1]
    wait_job(api, job["job_id"])
    first_turns = api.get(f"/api/conversations/{cid}")[1]["turns"]
    regen = api.post(
        "/api/conversations/bulk-action", {"action": "regenerate", "ids": [cid], "confirm": True}
    )[1]
    wait_job(api, regen["job_id"])
    assert api.delete(f"/api/conversations/{spare}")[0] == 204

    # The review panel lists both versions and shows the first one's turns.
    open_app(page, f"/?dataset_id={dsid}&conv={cid}")
    versions = page.get_by_test_id("panel-versions")
    versions.wait_for()
    assert "current" in page.get_by_test_id("version-2").inner_text()
    page.get_by_test_id("version-1").click()
    page.get_by_test_id("version-banner").wait_for()
    shown = page.get_by_test_id("turns").inner_text()
    assert first_turns[0]["content"][:40] in shown
    page.get_by_test_id("btn-version-current").click()
    page.get_by_test_id("version-banner").wait_for(state="detached")

    # The trash lists the deleted conversation; Restore brings it back.
    page.get_by_test_id("btn-close-panel").click()
    page.get_by_test_id("btn-open-trash").click()
    page.get_by_test_id(f"trash-row-{spare}").wait_for()
    page.get_by_test_id(f"btn-restore-{spare}").click()
    page.get_by_test_id("trash-empty").wait_for()
    assert api.get(f"/api/conversations/{spare}")[0] == 200
    page.get_by_test_id("dialog-close").click()

    # Datasets page: archive (read-only), then delete with the consequences stated.
    open_app(page, f"/?view=datasets&dataset_id={dsid}")
    page.get_by_test_id(f"btn-archive-dataset-{dsid}").click()
    consequences = page.get_by_test_id("dataset-action-consequences").inner_text()
    assert "read-only" in consequences
    page.get_by_test_id("btn-confirm").click()
    page.get_by_test_id("dataset-archived-banner").wait_for()
    assert api.get(f"/api/datasets/{dsid}")[1]["archived"] is True
    page.get_by_test_id("toggle-show-archived").check()
    page.get_by_test_id(f"btn-delete-dataset-{dsid}").click()
    consequences = page.get_by_test_id("dataset-action-consequences").inner_text()
    assert "for good" in consequences and "Exports you already made are kept" in consequences
    page.get_by_test_id("btn-confirm").click()
    page.get_by_test_id(f"dataset-row-{dsid}").wait_for(state="detached")
    assert api.get(f"/api/datasets/{dsid}")[0] == 404
