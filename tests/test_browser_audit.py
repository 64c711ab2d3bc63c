"""Issue 13 in a real browser: the interview calendar (desktop and phone) and an unmatch.

Ada books her first round through her link; a stranger's booking is orphaned. The admin
matches it onto Ada by mistake (the page asks first, showing both interviews), then
unmatches it from Ada's page: her earlier interview is current again and the timeline
tells the whole story.
"""

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from applications.models import Application, Cohort
from orphans.models import OrphanedInterview

from .browser import BROWSER_MARKS, browser_page, screenshot_path, short_lived_connections  # noqa: F401
from .calcom_helpers import post, sample, with_email
from .demo import seed_quick_start_demo

pytestmark = BROWSER_MARKS
OLD_UID, STRAY_UID = "k7Qm3XyZp2RvT9wLbN4sHd", "BrowserStray0000000001"


@pytest.fixture
def demo(transactional_db, mailoutbox):
    """The demo cohort; Ada's own booking applied and a stranger's orphaned, through the webhook."""
    seed_quick_start_demo(stdout=io.StringIO())
    cohort = Cohort.objects.get(slug="northwind-2026")
    client = Client()
    assert post(client, cohort, sample("booking_created")).json()["outcome"] == "applied"
    stray = with_email(sample("booking_created", uid=STRAY_UID, iCalUID=f"{STRAY_UID}@Cal.com", metadata={},
                              startTime="2026-06-20T09:00:00Z", endTime="2026-06-20T09:30:00Z"),
                       "stranger@elsewhere.example", "Sam Stranger")
    assert post(client, cohort, stray).json()["outcome"] == "orphaned"
    return cohort


def log_in(page, live_server, next_path):
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("cohortos-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(next_path.split("?")[0]) + r"(\?.*)?$"))


def test_a_match_made_by_mistake_is_unmatched_and_the_earlier_interview_comes_back(demo, live_server,
                                                                                     browser_page):
    page = browser_page
    ada = Application.objects.get(cohort=demo, contact_email="ada.lovelace@example.org")
    log_in(page, live_server, f"/cohorts/{demo.slug}/orphans/")
    orphan = OrphanedInterview.objects.get(booking_uid=STRAY_UID)
    page.fill(f"#orphan-{orphan.pk}-q", "Lovelace")
    page.get_by_role("button", name="Match stranger@elsewhere.example to Ada Lovelace").click()
    page.wait_for_selector("text=Ada Lovelace already has an interview")
    assert OLD_UID in page.inner_text("#orphan-list") and STRAY_UID in page.inner_text("#orphan-list")
    page.get_by_role("button", name="Match and replace the current interview").click()
    page.wait_for_selector("text=Matched stranger@elsewhere.example to Ada Lovelace")
    ada.refresh_from_db()
    assert ada.interview_booking_uid == STRAY_UID

    page.goto(f"{live_server.url}/cohorts/{demo.slug}/applications/{ada.pk}/")
    page.get_by_role("button", name=f"Unmatch booking {STRAY_UID}").click()
    page.wait_for_selector("text=back among the unresolved")
    ada.refresh_from_db()
    assert ada.interview_booking_uid == OLD_UID and ada.status == "first_round_scheduled"
    timeline = page.inner_text("ol.timeline")
    assert "unmatched: back among the orphaned interviews" in timeline
    assert "It replaced the interview of" in timeline and "Interview booked for" in timeline
    page.locator("#timeline").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_path("timeline.png")), full_page=True)
    orphan.refresh_from_db()
    assert not orphan.is_resolved


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_the_calendar_shows_the_week_and_the_agenda_without_horizontal_scroll(demo, live_server, browser_page,
                                                                             viewport):
    page = browser_page
    # Ada's sample interview (9 June 2026, 14:00 UTC; the demo's zone is Europe/London).
    log_in(page, live_server, f"/cohorts/{demo.slug}/interviews/?week=2026-06-08")
    day = page.locator("section.calendar-day", has_text="Tue 9 Jun")
    assert "15:00–15:30 Ada Lovelace" in day.inner_text() and day.locator(".dot").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    # The demo's own interviews, over the next four weeks, with a dot and a state each.
    page.get_by_role("link", name="This week").click()
    page.get_by_role("link", name="Agenda").click()
    page.wait_for_url(re.compile(r"view=agenda"))
    upcoming = Application.objects.filter(cohort=demo, bookings__isnull=False).exclude(
        contact_email="ada.lovelace@example.org").count()
    assert page.locator(".calendar-items li").count() >= 1 and upcoming
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    name = "calendar.png" if viewport["width"] > 600 else "calendar-phone.png"
    page.screenshot(path=str(screenshot_path(name)), full_page=viewport["width"] > 600)
    page.goto(f"{live_server.url}/cohorts/{demo.slug}/interviews/?view=agenda&week=2026-06-08")
    page.get_by_role("link", name="Ada Lovelace").first.click()
    page.wait_for_url(re.compile(r"/applications/\d+/$"))
    assert "Interview booked for" in page.inner_text("ol.timeline")
