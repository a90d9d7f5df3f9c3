"""The admin in a real headless browser, through the chain: Debian's Chromium, driven by Playwright (which never
downloads a browser of its own here). Logs in, finds a post in the list, and checks that the admin's stylesheets
and scripts, served by nginx, loaded and applied. Leaves a screenshot in results/screenshots/.
"""

from __future__ import annotations

import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from tests.harness import ROOT
from tests.microposts_api import create_user, unique
from tools import hostdeps

SCREENSHOTS = ROOT / "results" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium cancels the requests in flight, loopback ones too, when the machine's network interfaces change
# (net::ERR_NETWORK_CHANGED), as docker changes them whenever another test's stack starts or stops. A visit that
# failed for that reason alone is made again, up to VISITS times in all; any other failure counts at once.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"
VISITS = 3


@pytest.fixture(scope="module")
def chromium() -> str:
    assert hostdeps.main(["chromium"]) == 0, "could not install Debian's chromium"
    path = shutil.which("chromium")
    assert path, "chromium is not on the PATH"
    return path


@pytest.fixture
def browser(chromium, tmp_path) -> Iterator:
    with sync_playwright() as playwright:
        # A persistent context on a fresh directory: the --user-data-dir of this run, never a shared profile.
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 900},
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def admin(own) -> tuple[str, str]:
    username, password = unique("admin"), secrets.token_urlsafe(16)
    create_user(own.app_container, username, password=password, superuser=True)
    return username, password


@pytest.fixture
def marked_post(own) -> str:
    username = unique("poster")
    token = create_user(own.app_container, username)
    text = f"browser check {uuid.uuid4().hex}"
    response = requests.post(
        f"{own.base_url}/api/users/{username}/collection",
        json={"text": text},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return text


def loaded(page) -> None:
    """Wait until the current document and every script and sheet it names have loaded. Navigating on before then
    aborts the old page's loads (net::ERR_ABORTED), and Playwright's own load-state wait can still see the load of
    the page before: readyState is asked of the new document itself."""
    page.wait_for_function("document.readyState === 'complete'")


@dataclass
class Visit:
    static: list = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error: Exception | None = None

    @property
    def network_changed_only(self) -> bool:
        """It failed, and for no other reason than Chromium's network-change cancel (see NETWORK_CHANGED)."""
        if not (self.failed or self.error):
            return False
        if self.failed:
            return all(NETWORK_CHANGED in failure for failure in self.failed)
        return NETWORK_CHANGED in str(self.error)


def visit(page, base_url: str, admin: tuple[str, str], marked_post: str) -> Visit:
    """Log in, find the post, check the admin's styles and scripts; what loaded, what failed, the first error."""
    seen = Visit()
    page.on("response", lambda response: seen.static.append(response) if "/static/" in response.url else None)
    page.on("requestfailed", lambda request: seen.failed.append(f"{request.url}: {request.failure}"))
    try:
        page.goto(f"{base_url}/admin/microposts/micropost/")
        assert "/admin/login/" in page.url, "the admin asks for a login first"
        page.fill("#id_username", admin[0])
        page.fill("#id_password", admin[1])
        with page.expect_navigation():
            page.click("input[type=submit]")
        loaded(page)
        landed = urlsplit(page.url)
        assert (landed.path, landed.query) == ("/admin/microposts/micropost/", ""), (
            f"the login ended at {page.url}: {page.inner_text('body')[:300]}"
        )

        page.fill("#searchbar", marked_post)
        page.press("#searchbar", "Enter")
        page.wait_for_url(
            lambda url: urlsplit(url).path == "/admin/microposts/micropost/" and "q=" in urlsplit(url).query
        )
        loaded(page)
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1
        assert marked_post in rows.first.inner_text()

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        screenshot = SCREENSHOTS / "admin-microposts.png"
        page.screenshot(path=str(screenshot))
        assert screenshot.stat().st_size > 10_000

        # Every linked stylesheet loaded (a sheet that failed to load has no rules) ...
        sheets = page.evaluate("[...document.styleSheets].map(s => [s.href, s.cssRules.length])")
        assert any(href and href.endswith("/static/admin/css/base.css") for href, _ in sheets), sheets
        assert all(rules > 0 for _, rules in sheets), sheets
        # ... and applied: the header looks different with them than without them.
        header_style = "getComputedStyle(document.getElementById('header')).backgroundColor"
        styled = page.evaluate(header_style)
        page.evaluate("[...document.styleSheets].forEach(s => { s.disabled = true; })")
        assert page.evaluate(header_style) != styled, "the header looks the same without the admin's stylesheets"
        # The admin's scripts ran: they define django.jQuery.
        assert page.evaluate("typeof django !== 'undefined' && typeof django.jQuery === 'function'")
    except (AssertionError, PlaywrightError) as exc:
        seen.error = exc
    return seen


def test_an_admin_logs_in_and_sees_the_posts_with_the_admins_styles_and_scripts(own, browser, admin, marked_post):
    for attempt in range(1, VISITS + 1):
        browser.clear_cookies()
        page = browser.new_page()
        seen = visit(page, own.base_url, admin, marked_post)
        if not seen.network_changed_only or attempt == VISITS:
            break
        print(f"admin visit {attempt} cancelled by Chromium's network-change check: {seen.failed or seen.error}")
        page.close()
    if seen.error:
        raise seen.error

    assert seen.failed == []
    static = seen.static
    assert static, "the admin loaded no static files"
    assert all(response.status in (200, 304) for response in static), [(r.url, r.status) for r in static]
    assert {response.url.split("/static/")[1].split("/")[0] for response in static} == {"admin"}
    # nginx names the request (X-Request-ID) on every answer that passed through uWSGI (snippets/uwsgi-pass.conf),
    # and on none it serves from disk: no static file came from the app server.
    passed = [response.url for response in static if "x-request-id" in response.all_headers()]
    assert passed == [], f"static files answered through the app server: {passed}"
