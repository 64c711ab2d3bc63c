"""What the browser tests share: Debian's chromium driven by Playwright, and live-server hygiene."""

import os
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def screenshot_path(name):
    """Return where to save screenshot `name` ("applications.png").

    docs/screenshots/ when SCREENSHOTS=docs is set (to refresh the README's pictures),
    else a temporary folder, so a test run leaves `git status` clean.
    """
    if os.environ.get("SCREENSHOTS") == "docs":
        folder = DOCS_SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "cohortos-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install chromium; .ci/run installs it)"),
]


@pytest.fixture
def viewport():
    """The browser_page's window size; phone tests override it (390×844)."""
    return {"width": 1366, "height": 900}


@pytest.fixture
def browser_page(monkeypatch, viewport):
    """Yield a Playwright page in headless chromium (`viewport`, default 1366×900; 10 s timeouts)."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes meanwhile are still plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        phone = viewport["width"] < 600
        page = browser.new_page(viewport=viewport, device_scale_factor=2 if phone else 1,
                                is_mobile=phone, has_touch=phone)
        page.set_default_timeout(10_000)
        # Every page runs under our Content-Security-Policy (issue 14): chromium reports what it
        # blocked on the console, and a test that met a violation fails.
        violations = []
        page.on("console", lambda message: violations.append(f"{message.text} at {message.location}")
                if "Content Security Policy" in message.text else None)
        yield page
        assert not violations, f"the page broke its Content-Security-Policy: {violations}"
        # The test's own queries ran while Playwright's loop was current, on a connection
        # Django's usual clean-up never sees: close it here, or it outlives the test database.
        from django.db import connections

        connections.close_all()
        browser.close()


@pytest.fixture(autouse=True)
def short_lived_connections():
    """Run the test without persistent DB connections.

    The live server keeps a browser's keep-alive socket in one thread; with
    CONN_MAX_AGE that thread would still hold a PostgreSQL session when the test
    database is dropped.
    """
    from django.db import connections

    saved = connections["default"].settings_dict["CONN_MAX_AGE"]
    connections["default"].settings_dict["CONN_MAX_AGE"] = 0
    yield
    connections["default"].settings_dict["CONN_MAX_AGE"] = saved
