"""Shared helpers for driving the SPA in headless Chromium (tests/e2e and bench/).

Debian's Chromium (``make browser`` installs it) is used as is: Playwright never
downloads a browser here. When the local stack requires sign-in (Cognito demo users),
``open_app`` signs in through the UI with the documented demo credentials.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
DIST_INDEX = ROOT / "frontend" / "dist" / "index.html"
# The app shell or the sign-in form: whichever the app shows first.
READY = '[data-testid="nav-dashboard"], [data-testid="signin-email"]'


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_browser() -> str | None:
    """Why there is no browser to drive here (None when there is)."""
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is missing (run `make browser`: apt-get install chromium)"
    return None


def missing_frontend() -> str | None:
    if not DIST_INDEX.is_file():
        return "frontend/dist is not built (run `make frontend`)"
    return None


def missing_requirement() -> str | None:
    """Why the browser cannot be pointed at the app here (None when it can)."""
    return missing_browser() or missing_frontend()


def build_frontend() -> bool:
    """Build frontend/dist when it is missing and the toolchain is there."""
    if DIST_INDEX.is_file():
        return True
    npm = shutil.which("npm")
    if not npm or not (ROOT / "frontend" / "node_modules").is_dir():
        return False
    subprocess.run([npm, "run", "build", "--silent"], cwd=ROOT / "frontend", check=False)
    return DIST_INDEX.is_file()


def launch(playwright: Any, **kw: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **kw)


def _pair(user: Any) -> tuple[str, str] | None:
    if isinstance(user, dict) and "email" in user:
        return str(user["email"]), str(user["password"])
    if hasattr(user, "email") and hasattr(user, "password"):
        return str(user.email), str(user.password)
    if isinstance(user, list | tuple) and len(user) >= 2 and isinstance(user[0], str):
        return str(user[0]), str(user[1])
    return None


def demo_credentials() -> tuple[str, str] | None:
    """The demo user to sign in with: env first, else the launcher's first demo user
    (``DEMO_USERS`` in devstack/launcher.py, the default tenant's owner)."""
    email = os.environ.get("BRIGHTRUN_DEMO_EMAIL")
    password = os.environ.get("BRIGHTRUN_DEMO_PASSWORD")
    if email and password:
        return email, password
    launcher = importlib.import_module("devstack.launcher")
    users = getattr(launcher, "DEMO_USERS", None) or ()
    return _pair(users[0]) if users else None


def sign_in_if_needed(page: Any, timeout: float = 15_000, user: Any = None) -> bool:
    """Sign in through the form when the app shows it (as ``user``, an object or dict
    with email and password, else the first demo user); True when it did."""
    page.locator(READY).first.wait_for(timeout=timeout)
    form = page.get_by_test_id("signin-email")
    if not form.is_visible():
        return False
    creds = _credentials(user)
    form.fill(creds[0])
    page.get_by_test_id("signin-password").fill(creds[1])
    page.get_by_test_id("btn-signin").click()
    page.get_by_test_id("nav-dashboard").wait_for(timeout=timeout)
    return True


def _credentials(user: Any) -> tuple[str, str]:
    creds = _pair(user) if user is not None else demo_credentials()
    if creds is None:
        raise AssertionError(
            "the app asks for sign-in but no demo credentials were found "
            "(set BRIGHTRUN_DEMO_EMAIL/BRIGHTRUN_DEMO_PASSWORD or document DEMO_USERS "
            "in devstack/launcher.py)"
        )
    return creds


# Status of an API call the app would make, without a token: 401 = sign-in required.
UNAUTHENTICATED_STATUS = "async () => (await fetch('/api/datasets')).status"
LOGIN = """async ([email, password]) => {
  const r = await fetch('/api/auth/login', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({email, password})});
  if (!r.ok) throw new Error('sign-in failed: ' + r.status + ' ' + await r.text());
  return (await r.json()).id_token;
}"""


def open_app(page: Any, url: str, timeout: float = 15_000, user: Any = None) -> None:
    """Go to ``url``, signed in, and end on ``url``'s view.

    The app's sign-in form is used when it shows one. A build without the form takes
    the demo user's ID token in the URL fragment (``#id_token=``, what a hosted sign-in
    redirect hands back; the app keeps it for the tab's session): that is used when the
    API answers 401 and no form appeared.
    """
    page.goto(url)
    if sign_in_if_needed(page, timeout, user):
        page.goto(url)
        sign_in_if_needed(page, timeout, user)
        return
    if page.evaluate("() => sessionStorage.getItem('brightrun.idToken')"):
        return
    if page.evaluate(UNAUTHENTICATED_STATUS) != 401:
        return
    token = page.evaluate(LOGIN, list(_credentials(user)))
    page.goto("about:blank")  # a fragment-only change would not reload the app
    page.goto(f"{url.split('#')[0]}#id_token={token}")
    page.locator(READY).first.wait_for(timeout=timeout)
