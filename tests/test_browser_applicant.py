"""The applicant's page in a real browser, at phone width: Debian's chromium through Playwright.

Opens /i/<token>/ on a 360 px wide phone in Tokyo, checks nothing scrolls sideways,
that the form offers the phone's own time zone, books, and sees the interview in
that zone; then the same page with JavaScript off. Saves
applicant-page.png (invited) and applicant-page-booked.png (in docs/screenshots/ with
SCREENSHOTS=docs).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from applications.models import Application
from scheduling.applicant import token_for

from .browser import (  # noqa: F401
    BROWSER_MARKS, browser_page, screenshot_path, short_lived_connections,
)
from .factories import ApplicationFactory, CohortFactory, InterviewRoundFactory, OrganizationFactory

PHONE = {"width": 360, "height": 740}

pytestmark = BROWSER_MARKS


@pytest.fixture
def applicant(transactional_db):
    org = OrganizationFactory(name="Northwind Foundation", time_zone="Europe/London")
    cohort = CohortFactory(organization=org, name="Northwind Fellowship 2026",
                           reply_to_email="fellowship@northwind.example")
    # A Google appointment page: no webhook reaches us, so the page offers "I've booked".
    InterviewRoundFactory(cohort=cohort, number=1, booking_url="https://calendar.app.google/n0rthw1nd")
    return ApplicationFactory(cohort=cohort, applicant_name="Ada Lovelace",
                              contact_email="ada.lovelace@example.org", status="waiting_first_round",
                              current_stage="first_round")


def no_sideways_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_applicant_books_on_a_phone_in_their_own_time_zone(applicant, live_server, browser_page):
    browser = browser_page.context.browser
    phone = browser.new_context(viewport=PHONE, timezone_id="Asia/Tokyo", locale="en-GB",
                                is_mobile=True, has_touch=True, device_scale_factor=2)
    page = phone.new_page()
    url = f"{live_server.url}/i/{token_for(applicant).key}/"
    page.goto(url)
    assert page.get_by_role("heading", name="Northwind Fellowship 2026").is_visible()
    assert page.get_by_role("link", name="Schedule interview").get_attribute("href") == \
        "https://calendar.app.google/n0rthw1nd"
    # The phone's own zone is preselected by static/applicant.js (the server guessed London).
    assert page.get_by_label("Time zone").input_value() == "Asia/Tokyo"
    assert no_sideways_scroll(page)
    page.screenshot(path=str(screenshot_path("applicant-page.png")), full_page=True, caret="initial")

    day = (timezone.now() + timedelta(days=9)).astimezone(timezone.get_fixed_timezone(540)).date()
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Time", exact=True).fill("14:00")
    page.get_by_label("Meeting link (optional)").fill("https://meet.example/ada-interview")
    page.get_by_role("button", name="I’ve booked my interview").click()
    page.wait_for_url("**?booked=1")

    assert page.get_by_role("status").filter(has_text="Thank you").is_visible()
    when = page.locator("#your-interview time").inner_text()
    assert "14:00" in when and str(day.day) in when
    assert "Asia/Tokyo time (your device's time zone)" in page.locator("#your-interview").inner_text()
    assert "The team will confirm it" in page.locator("#your-interview").inner_text()
    assert no_sideways_scroll(page)
    page.screenshot(path=str(screenshot_path("applicant-page-booked.png")), full_page=True, caret="initial")

    applicant = Application.objects.get(pk=applicant.pk)
    assert applicant.status == "first_round_scheduled" and applicant.interview_unverified
    assert applicant.interview_time_zone == "Asia/Tokyo"
    phone.close()


def test_page_works_without_javascript_in_the_bookings_zone(applicant, live_server, browser_page):
    browser = browser_page.context.browser
    plain = browser.new_context(viewport=PHONE, timezone_id="America/New_York", java_script_enabled=False)
    page = plain.new_page()
    page.goto(f"{live_server.url}/i/{token_for(applicant).key}/")
    # Without the script the form offers the organization's zone; the applicant picks theirs.
    assert page.get_by_label("Time zone").input_value() == "Europe/London"
    day = (timezone.now() + timedelta(days=9)).date()
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Time", exact=True).fill("09:30")
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    page.get_by_role("button", name="I’ve booked my interview").click()
    text = page.locator("#your-interview").inner_text()
    # Served as booked: in the zone the applicant gave, named, since no script can translate it.
    assert "09:30" in text and "Asia/Tokyo time" in text
    assert no_sideways_scroll(page)
    plain.close()


def test_an_unknown_link_answers_a_plain_404_page(transactional_db, live_server, browser_page):
    browser_page.set_viewport_size(PHONE)
    response = browser_page.goto(f"{live_server.url}/i/not-a-real-token/")
    assert response.status == 404
    assert browser_page.get_by_role("heading", name="This link is no longer valid").is_visible()
    assert no_sideways_scroll(browser_page)
