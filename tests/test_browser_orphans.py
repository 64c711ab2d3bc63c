"""The matching modal in a real browser: Debian's chromium driven by Playwright.

Two bookings nobody could match arrive through the webhook (the admin is emailed); the
admin opens the Orphaned badge's dialog, searches, matches one to Ada Lovelace (her row
and the badge update in place, no reload), dismisses the other, and the dialog closes.
"""

import io
import re

import pytest
from django.core import mail
from playwright.sync_api import expect
from django.core.management import call_command
from django.test import override_settings
from django.test import Client

from applications.models import Application, Cohort
from orphans.models import OrphanedInterview

from .browser import BROWSER_MARKS, browser_page, screenshot_path, short_lived_connections  # noqa: F401
from .calcom_helpers import post, sample, with_email

SCREENSHOT = screenshot_path("orphan-modal.png")

pytestmark = BROWSER_MARKS


@pytest.fixture
def demo(transactional_db, mailoutbox):
    """The quick start's demo cohort with two orphaned interviews, delivered through the webhook."""
    with override_settings(DEBUG=True):  # the quick start's demo, as `make run` loads it
        call_command("seed_demo", stdout=io.StringIO())
    cohort = Cohort.objects.get(slug="northwind-2026")
    client = Client()
    for uid, email, name in [("BrowserUidAda000000000", "ada.personal@gmail.com", "Ada L."),
                             ("BrowserUidSpam00000000", "bot@spam.example", "Buy Now")]:
        body = with_email(sample("booking_created", uid=uid, iCalUID=f"{uid}@Cal.com", metadata={}), email, name)
        assert post(client, cohort, body).json()["outcome"] == "orphaned"
    return cohort


def test_an_admin_opens_the_modal_searches_matches_and_the_badge_count_drops(demo, live_server, browser_page):
    # The first orphan emailed the demo admin (Celery eager, locmem backend); the second waits for
    # the cohort's 10-minute digest window (issue 13), still pending for the sweep.
    assert [m.subject.split(": ")[1].split(",")[0] for m in mail.outbox] == ["ada.personal@gmail.com"]
    assert OrphanedInterview.objects.get(email="bot@spam.example").alert_state == "pending"
    ada = Application.objects.get(cohort=demo, contact_email="ada.lovelace@example.org")
    assert ada.status == "waiting_first_round"

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/cohorts/{demo.slug}/applications/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("cohortos-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/applications/$"))
    badge = page.locator("#orphan-badge")
    assert re.search(r"Orphaned\s+2", badge.inner_text())

    page.locator("#orphan-badge a").click()
    page.wait_for_selector("dialog#orphan-modal[open]")
    modal = page.locator("#orphan-modal-body")
    page.wait_for_selector("#orphan-modal-body >> text=ada.personal@gmail.com")
    ada_orphan = OrphanedInterview.objects.get(email="ada.personal@gmail.com")
    card = modal.locator(f"#orphan-{ada_orphan.pk}")
    assert "First-round interview" in card.inner_text()

    # Search (debounced) for her application by name, then match from the results.
    card.get_by_label("Search applications for ada.personal@gmail.com").fill("lovelace")
    page.wait_for_selector(f"#orphan-{ada_orphan.pk}-candidates >> text=Applications matching")
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx later restores from
    # its history snapshot: an inline style our CSP refuses.
    page.screenshot(path=str(SCREENSHOT), full_page=False, caret="initial")
    card.get_by_role("button", name="Match ada.personal@gmail.com to Ada Lovelace").click()
    page.wait_for_selector("#orphan-modal-body >> text=Matched ada.personal@gmail.com to Ada Lovelace")

    # In place, no reload: the badge count drops, Ada's row is scheduled, the other orphan remains.
    expect(page.locator("#orphan-badge .count")).to_have_text("1")  # a locator wait: our CSP forbids eval
    page.wait_for_selector(f"#application-{ada.pk} >> text=First round scheduled")
    assert page.locator("dialog#orphan-modal[open]").count() == 1
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"
    assert ada.alternate_emails.filter(email="ada.personal@gmail.com").exists()
    assert ada.status_changes.get().note == "Matched by admin"

    # Dismiss the spam: the last one, so the dialog closes and the badge goes.
    spam = OrphanedInterview.objects.get(email="bot@spam.example")
    modal.locator(f"#orphan-{spam.pk}").get_by_label("Or dismiss it as").select_option("spam")
    modal.locator(f"#orphan-{spam.pk}").get_by_role("button", name="Dismiss").click()
    page.wait_for_selector("dialog#orphan-modal:not([open])", state="attached")
    expect(page.locator("#orphan-badge a")).to_have_count(0)
    spam.refresh_from_db()
    assert (spam.resolution, spam.dismiss_reason) == ("dismissed", "spam")
