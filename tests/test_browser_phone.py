"""Every page on a 390×844 phone (no horizontal scroll, menu, cards, a dialog that fits), and the
open tab catching up with a booking within seconds while keeping focus and scroll.

Phone screenshots go to docs/screenshots/phone-*.png with SCREENSHOTS=docs (else a temp folder).
"""

import io
import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from django.core.management import call_command
from django.utils import timezone

from applications.models import Application, Cohort, bump_cohort_version
from orphans.models import OrphanedInterview

from .browser import (  # noqa: F401
    BROWSER_MARKS, browser_page, screenshot_path, short_lived_connections,
)
from .calcom_helpers import SAMPLES
from .demo import seed_quick_start_demo

pytestmark = BROWSER_MARKS
PHONE = {"width": 390, "height": 844}
WIDTH = "[document.documentElement.scrollWidth, window.innerWidth]"


@pytest.fixture
def demo(transactional_db):
    """The quick start's demo cohort, plus two orphaned interviews."""
    seed_quick_start_demo(stdout=io.StringIO())
    cohort = Cohort.objects.get(slug="northwind-2026")
    for n, email in enumerate(["charles.babbage@example.org", "a.very.long.address.for.testing@some-example-domain.org"]):
        OrphanedInterview.objects.create(
            cohort=cohort, booking_uid=f"orphanUid{n}", email=email, name="Charles Babbage",
            start=timezone.now() + timedelta(days=4), event_type="first-round-interview",
        )
    return cohort


def log_in(page, base, next_path):
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("cohortos-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}{next_path}")


def assert_fits(page, name, widths):
    scroll_width, inner_width = page.evaluate(WIDTH)
    widths[name] = scroll_width
    page.screenshot(path=str(screenshot_path(f"phone-{name}.png")), full_page=False, caret="initial")
    assert scroll_width <= inner_width, f"{name} is {scroll_width}px wide on a {inner_width}px screen"


class TestPhone:
    @pytest.fixture
    def viewport(self):
        return PHONE

    def test_every_page_fits_a_390px_phone(self, demo, live_server, browser_page, capsys):
        page, base, widths = browser_page, live_server.url, {}
        page.goto(f"{base}/accounts/login/")
        assert_fits(page, "login", widths)
        tab = f"/cohorts/{demo.slug}/applications/"
        log_in(page, base, "/")
        assert_fits(page, "home", widths)

        # The header's links fold into a menu that opens and closes.
        nav = page.locator("#site-menu")
        assert not nav.is_visible()
        page.get_by_role("button", name="Menu").click()
        assert nav.is_visible() and page.get_by_role("link", name="Settings").is_visible()
        assert_fits(page, "menu", widths)
        page.get_by_role("button", name="Menu").click()
        assert not nav.is_visible()

        page.goto(base + tab)
        assert_fits(page, "applications", widths)
        # One card per application: the header row is hidden, cells stack.
        card = "getComputedStyle(document.querySelector('#application-table tbody tr')).display"
        assert page.evaluate(card) == "block"
        first = page.locator("#application-table tbody tr[id^=application-]").first
        assert first.locator("td.pipeline").is_visible() and first.locator("td.actions a").is_visible()

        # The orphans dialog fits, its Close button on screen.
        page.locator("#orphan-badge a").click()
        page.wait_for_selector("#orphan-modal-body >> text=charles.babbage@example.org")
        assert_fits(page, "orphan-dialog", widths)
        close = page.get_by_role("button", name="Close")
        box = close.bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"] and 0 <= box["y"] < PHONE["height"]
        dialog = page.locator("dialog#orphan-modal").bounding_box()
        assert dialog["x"] >= 0 and dialog["x"] + dialog["width"] <= PHONE["width"]
        close.click()

        application = demo.applications.filter(interview_start__isnull=False).first()
        application.deliveries.model.objects.create(
            cohort=demo, application=application, body=b"{}", sha256="f" * 64,
            trigger_event="BOOKING_CREATED", booking_uid="k7Qm3XyZp2RvT9wLbN4sHd-long-uid-value",
            outcome="applied", detail="Interview k7Qm3XyZp2RvT9wLbN4sHd at 2026-06-09 14:00 UTC; "
            "waiting_first_round → first_round_scheduled.",
        )
        page.goto(f"{base}{tab}{application.pk}/")
        assert_fits(page, "application", widths)
        declined = demo.applications.filter(status="declined").first()
        page.goto(f"{base}{tab}{declined.pk}/")
        assert page.get_by_role("button", name="Reopen decision").is_visible()
        assert_fits(page, "application-declined", widths)
        page.goto(f"{base}/cohorts/{demo.slug}/orphans/")
        assert_fits(page, "orphans", widths)
        page.goto(f"{base}/cohorts/{demo.slug}/orphans/?show=dismissed")
        assert_fits(page, "orphans-dismissed", widths)
        page.goto(f"{base}/settings/")
        assert_fits(page, "settings", widths)
        page.goto(f"{base}/cohorts/{demo.slug}/settings/")
        assert_fits(page, "cohort-settings", widths)
        waiting = demo.applications.filter(status="waiting_first_round").first()
        assert page.goto(f"{base}{tab}{waiting.pk}/offline/").status == 200
        assert_fits(page, "offline-interview", widths)
        page.goto(f"{base}/accounts/password_change/")
        assert_fits(page, "password-change", widths)
        with capsys.disabled():
            print("\n  page widths at 390 px:", ", ".join(f"{k} {v}" for k, v in widths.items()))


def test_a_booking_shows_on_an_open_tab_within_seconds_keeping_focus_and_scroll(demo, live_server, browser_page,
                                                                             capsys):
    page, base = browser_page, live_server.url
    tab = f"/cohorts/{demo.slug}/applications/"
    page.set_viewport_size({"width": 1366, "height": 500})
    log_in(page, base, tab)
    ada = demo.applications.get(public_id="app_7f3c2a91")
    row = page.locator(f"#application-{ada.pk}")
    assert "Waiting" in row.locator("td.pipeline").inner_text()
    # Scroll down and focus a row's link: a refresh must keep both.
    link = page.locator(f"#application-{ada.pk}-link")
    link.focus()
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    # Unchanged polls are answered 304 (conditional on the ETag the table was rendered with).
    polls = []
    page.on("response", lambda r: polls.append(r.status) if "/applications/" in r.url
            and r.request.headers.get("if-none-match") else None)
    # The ETag carries the minute (labels such as "Now" move with the clock), so a poll that
    # crosses a minute boundary is rightly a 200; the next one, 5 s later, cannot cross again.
    for _ in range(23):
        page.wait_for_timeout(500)
        if 304 in polls:
            break
    assert 304 in polls, polls

    started = time.monotonic()
    call_command("send_webhook", str(SAMPLES / "calcom_booking_created.json"), cohort=demo.slug,
                 url=base, shift=True, stdout=io.StringIO())
    # A locator wait: our CSP forbids the string eval wait_for_function uses.
    expect(page.locator(f"#application-{ada.pk} td.pipeline")).not_to_contain_text("Waiting", timeout=8_000)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\n  booking visible on the open tab after {elapsed:.1f} s (5 s polls)")
    assert elapsed < 6.5, f"the booking took {elapsed:.1f} s to show"
    assert "in 6 days" in row.locator("td.pipeline").inner_text() or "in 7 days" in row.locator("td.pipeline").inner_text()
    assert page.evaluate("document.activeElement.id") == f"application-{ada.pk}-link"
    # Kept (give or take the few pixels the changed row's height moves the page's end).
    assert abs(page.evaluate("window.scrollY") - scrolled) <= 8
    Application.objects.filter(pk=ada.pk).update(applicant_name="Ada King")
    bump_cohort_version(demo.pk)
    page.wait_for_selector(f"#application-{ada.pk} >> text=Ada King", timeout=7_000)
