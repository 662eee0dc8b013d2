"""Screenshots of the main screens for docs/screenshots/ (1280x800, headless Chromium).

    .venv/bin/python bench/screenshots.py [--out docs/screenshots]

Starts the local stack in-process (no persistence, offline simulator), builds a
realistic state over the API (sample dataset, 90 planned, 60 written, some approved and
rejected as reviewers would: most flagged ones rejected), then drives the built frontend (``make frontend`` first) in Debian's
Chromium and saves one PNG per screen:

  dashboard.png            the conversation table with data, filters, badges, bulk bar
  review.png               a conversation open in the review panel (compact table)
  generate-dialog.png      Generate All: cost and time estimate before starting
  generation.png           the progress tracker while a job runs
  generation-summary.png   the tracker's summary once the job is done
  coverage.png             Datasets page: tier bars and coverage heatmaps
  export.png               export dialog with a ready (split) file
  templates.png            templates list and one template's detail
  quality-triage.png       the score histogram, needs-attention order, reasons beside the
                           scores and a flagged conversation's reasons at the top of the panel
  diversity.png            the dataset's diversity view (repeated openings and phrases...)
  calibration.png          the calibration view after 30+ review decisions
  welcome.png              first run: no dataset yet, how it works in five steps
  signin.png               the sign-in screen (when the stack asks for sign-in)

Signs in through the UI when the stack asks for it (demo user A). Not run by make test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_BYTES = 300_000


def wait_job(api: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            return dict(job)
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} did not finish")


def client(stack: Any) -> Any:
    from tests.conftest import Api

    api = Api(stack.url)
    status, health, _ = api.get("/api/health")
    user = stack.demo_users[0] if getattr(stack, "demo_users", None) else None
    if user is not None:
        status, body, _ = api.post(
            "/api/auth/login", {"email": user.email, "password": user.password}
        )
        if status == 200:
            api.token = body["id_token"]
    return api


def prepare(api: Any) -> dict[str, Any]:
    status, ds, _ = api.post("/api/datasets/sample", {})
    assert status in (200, 201), ds
    dsid = ds["dataset_id"]
    api.patch(f"/api/datasets/{dsid}", {"budget_usd": 5})
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 90})
    assert status == 201, plan
    ids = plan["conversation_ids"]
    status, accepted, _ = api.post(
        "/api/conversations/generate-batch", {"conversation_ids": ids[:60], "confirm": True}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["completed"] >= 55, job
    status, page, _ = api.get(
        f"/api/conversations?dataset_id={dsid}&status=generated&page_size=100"
    )
    # The simulator plants defects in ~15% of conversations (LLM_SIM_DEFECT_RATE): the
    # reviewers reject most flagged ones and a few clean ones, approve the rest, and
    # leave two flagged ones to triage. 30+ decisions give calibration its suggestion.
    flagged = [c["conversation_id"] for c in page["items"] if c["flagged"]]
    clean = [c["conversation_id"] for c in page["items"] if not c["flagged"]]
    assert len(flagged) >= 3, f"only {len(flagged)} flagged conversations"
    rejected = flagged[:-3] + clean[:2]
    approved = flagged[-3:-2] + clean[2 : 2 + max(22, 32 - len(rejected) - 1)]
    api.post(
        "/api/conversations/bulk-action",
        {"action": "approve", "ids": approved, "reviewer_notes": "Natural and on-topic"},
    )
    api.post(
        "/api/conversations/bulk-action",
        {"action": "reject", "ids": rejected, "reviewer_notes": "Too generic"},
    )
    undecided = [c for c in clean if c not in approved and c not in rejected]
    return {
        "dataset_id": dsid,
        "open": undecided[-1],
        "flagged": flagged[-1],
        "remaining": ids[60:],
    }


def shoot(page: Any, out: Path, name: str, locator: Any = None) -> Path:
    path = out / f"{name}.png"
    page.wait_for_timeout(250)  # let transitions and fonts settle
    if locator is not None:
        locator.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    size = path.stat().st_size
    print(
        f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {size / 1024:.0f} KB"
    )
    if size > MAX_BYTES:
        print(f"    WARNING: over {MAX_BYTES // 1000} KB")
    return path


def run(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    from devstack.launcher import LocalStack
    from tests.e2e.browser_support import VIEWPORT, launch, missing_requirement, open_app

    reason = missing_requirement()
    if reason:
        raise SystemExit(f"cannot take screenshots: {reason}")
    os.environ.setdefault("LLM_SIM_LATENCY", "0.01")
    os.environ.setdefault("EXPENSIVE_ROUTE_RPM", "10000")
    stack = LocalStack(port=0, data_dir=Path(tempfile.mkdtemp()), persist=False, quiet=True)
    stack.start()
    try:
        out.mkdir(parents=True, exist_ok=True)
        api = client(stack)
        with sync_playwright() as p:
            browser = launch(p)
            ctx = browser.new_context(viewport=VIEWPORT, base_url=stack.url)
            ctx.set_default_timeout(30_000)
            page = ctx.new_page()

            page.goto("/")
            form = page.locator('[data-testid="signin-form"], [data-testid="nav-dashboard"]')
            form.first.wait_for()
            if page.get_by_test_id("signin-form").count():
                shoot(page, out, "signin")

            # First run, before any dataset exists.
            open_app(page, "/")
            page.get_by_test_id("empty-no-dataset").wait_for()
            shoot(page, out, "welcome")

            state = prepare(api)
            dsid = state["dataset_id"]

            open_app(page, f"/?dataset_id={dsid}")
            page.locator('[data-testid^="conv-row-"]').nth(24).wait_for()
            page.get_by_test_id("filter-emotion-button").click()
            options = page.locator('[data-testid^="filter-emotion-option-"]')
            options.nth(0).check()
            options.nth(1).check()
            page.get_by_test_id("filter-status-button").click()
            for status in ("generated", "approved", "rejected"):
                page.get_by_test_id(f"filter-status-option-{status}").check()
            page.keyboard.press("Escape")
            page.get_by_test_id("filter-badge-status-rejected").wait_for()
            page.get_by_test_id("table-loading").wait_for(state="detached")
            first = page.locator('[data-testid^="row-check-"]')
            first.nth(1).check()
            first.nth(2).check()
            shoot(page, out, "dashboard")

            open_app(page, f"/?dataset_id={dsid}&conv={state['open']}")
            page.locator(
                f'[data-testid="panel-body"][data-conversation-id="{state["open"]}"]'
            ).wait_for()
            page.get_by_test_id("turn-1").wait_for()
            shoot(page, out, "review")

            # Generate the remaining 30 with a slower simulator so the tracker is seen running.
            open_app(page, f"/?dataset_id={dsid}&status=not_generated")
            page.get_by_test_id("btn-generate-all").click()
            page.get_by_test_id("estimate-count").wait_for()
            shoot(page, out, "generate-dialog")
            if stack.simulator is not None:
                stack.simulator.configure(latency_seconds=1.2)
            start = page.get_by_test_id("btn-start-generation")
            (start if start.count() else page.get_by_test_id("btn-start-anyway")).click()
            page.wait_for_function(
                "() => { const b = document.querySelector('[data-testid=progress-bar]');"
                " const t = document.querySelector('[data-testid=progress-tracker]');"
                " return b && t && t.dataset.status === 'running' && Number(b.getAttribute('aria-valuenow')) >= 20; }",
                timeout=90_000,
            )
            page.get_by_test_id("progress-eta").wait_for()
            shoot(page, out, "generation")
            if stack.simulator is not None:
                stack.simulator.configure(latency_seconds=0.01)
            page.locator('[data-testid="progress-tracker"][data-status="completed"]').wait_for(
                timeout=120_000
            )
            page.get_by_test_id("table-loading").wait_for(state="detached")
            shoot(page, out, "generation-summary")

            open_app(page, f"/?view=datasets&dataset_id={dsid}")
            heatmap = page.get_by_test_id("heatmap-persona_emotion")
            heatmap.wait_for()
            page.get_by_test_id("coverage").evaluate("e => e.scrollIntoView({block: 'start'})")
            shoot(page, out, "coverage")

            open_app(page, f"/?dataset_id={dsid}")
            page.get_by_test_id("btn-export").click()
            page.get_by_test_id("export-format-openai").check()
            page.get_by_test_id("export-split").check()
            page.get_by_test_id("btn-export-create").click()
            page.locator('[data-testid="export-status"][data-status="ready"]').wait_for()
            shoot(page, out, "export")
            page.keyboard.press("Escape")

            open_app(page, f"/?view=templates&dataset_id={dsid}")
            page.locator('[data-testid^="template-row-"]').first.click()
            page.get_by_test_id("template-detail").wait_for()
            page.get_by_test_id("template-usage").wait_for()
            shoot(page, out, "templates")

            # Triage: needs attention first, a flagged conversation's reasons on top.
            open_app(page, f"/?dataset_id={dsid}&sort=attention&order=asc&conv={state['flagged']}")
            page.get_by_test_id("quality-histogram").wait_for()
            page.get_by_test_id("panel-reasons").wait_for()
            page.get_by_test_id("table-loading").wait_for(state="detached")
            shoot(page, out, "quality-triage")

            open_app(page, f"/?dataset_id={dsid}&insight=diversity")
            page.get_by_test_id("diversity-view").wait_for()
            shoot(page, out, "diversity")

            open_app(page, f"/?dataset_id={dsid}&insight=calibration")
            page.get_by_test_id("calibration-suggested").wait_for()
            shoot(page, out, "calibration")
            browser.close()
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    started = time.perf_counter()
    run(args.out.resolve())
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
