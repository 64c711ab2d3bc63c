"""Issue 11 in a real browser: the application page after a seated Cal.com booking that was
moved to an office, on a 390 px phone. Saves application-booking.png (in docs/screenshots/ with
SCREENSHOTS=docs)."""

import io

import pytest
from django.test import Client

from .browser import BROWSER_MARKS, browser_page, screenshot_path, short_lived_connections  # noqa: F401
from .calcom_helpers import post, sample
from .demo import seed_quick_start_demo

pytestmark = BROWSER_MARKS
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def demo(transactional_db):
    seed_quick_start_demo(stdout=io.StringIO())
    from applications.models import Cohort

    return Cohort.objects.get(slug="northwind-2026")


@pytest.fixture
def viewport():
    """The phone, for browser_page."""
    return PHONE


def test_the_application_page_names_interviewer_place_and_who_moved_it_on_a_phone(
        demo, live_server, browser_page):
    client = Client()
    team = {"name": "Northwind Admissions Panel", "id": 7, "members": []}
    created = sample("booking_created", schedulingType="ROUND_ROBIN", team=team, seatsPerTimeSlot=3,
                     assignmentReason=[{"reasonEnum": "ROUND_ROBIN", "reasonString": "Least recently booked"}])
    assert post(client, demo, created).json()["outcome"] == "applied"
    moved = sample("booking_rescheduled", location="Office 3B, Northwind House, 12 Byron Street, London",
                   schedulingType="ROUND_ROBIN", team=team, seatsPerTimeSlot=3,
                   assignmentReason=[{"reasonEnum": "ROUND_ROBIN", "reasonString": "Least recently booked"}])
    moved["payload"]["attendees"][0]["phoneNumber"] = "+44 20 7946 0958"
    assert post(client, demo, moved).json()["outcome"] == "applied"
    ada = demo.applications.get(public_id="app_7f3c2a91")

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/cohorts/{demo.slug}/applications/{ada.pk}/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("cohortos-demo")
    page.get_by_role("button", name="Log in").click()
    facts = page.locator(".booking-facts")
    assert "Grace Hopper" in facts.inner_text()
    assert "Office 3B, Northwind House" in facts.inner_text()
    assert "Least recently booked" in facts.inner_text()
    assert "a seat in a shared slot" in facts.inner_text()
    bookings = page.locator("#bookings-title + ol").inner_text()
    assert "Moved here from k7Qm3XyZp2RvT9wLbN4sHd by ada.lovelace@example.org" in bookings
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(screenshot_path("application-booking.png")), full_page=True, caret="initial")
