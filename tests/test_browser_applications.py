"""The Applications tab in a real browser: Debian's chromium driven by Playwright.

Logs in as the demo admin, filters by a status chip, searches, sees a past interview
struck through, refreshes on `statusChanged`, opens the Orphaned dialog from the keyboard,
and saves docs/screenshots/applications.png (the README shows it).
"""

import io
import re
from datetime import timedelta

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from applications.models import Application, bump_cohort_version
from orphans.models import OrphanedInterview

from .browser import BROWSER_MARKS, browser_page, screenshot_path, short_lived_connections  # noqa: F401

SCREENSHOT = screenshot_path("applications.png")

pytestmark = BROWSER_MARKS


@pytest.fixture
def demo(transactional_db):
    """The quick start's demo cohort, plus one orphaned interview."""
    with override_settings(DEBUG=True):  # the quick start's demo, as `make run` loads it
        call_command("seed_demo", stdout=io.StringIO())
    from applications.models import Cohort

    cohort = Cohort.objects.get(slug="northwind-2026")
    OrphanedInterview.objects.create(
        cohort=cohort, booking_uid="orphanUid123", email="charles.babbage@example.org",
        name="Charles Babbage", start=timezone.now() + timedelta(days=4),
    )
    return cohort


def rows(page):
    return page.locator("#application-table tbody tr[id^=application-]")


def test_an_admin_filters_searches_and_opens_the_orphan_dialog(demo, live_server, browser_page):
    # `demo` first: the test database then outlives the (session-wide) live server, whose
    # threads must have let go of it before it is dropped.
    page = browser_page
    tab = f"{live_server.url}/cohorts/{demo.slug}/applications/"

    page.goto(f"{live_server.url}/accounts/login/?next=/cohorts/{demo.slug}/applications/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("cohortos-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(tab)
    assert rows(page).count() == demo.applications.exclude(status="declined").count()
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx later restores from
    # its history snapshot: an inline style our CSP refuses.
    page.screenshot(path=str(SCREENSHOT), full_page=False, caret="initial")

    # A status chip: the table alone is replaced and the URL follows.
    page.locator("label.chip", has_text="First round scheduled").click()
    page.wait_for_url(re.compile(r"status=first_round_scheduled"))
    scheduled = demo.applications.filter(status="first_round_scheduled")
    expect(rows(page)).to_have_count(scheduled.count())  # a locator wait: our CSP forbids eval
    past = scheduled.filter(interview_start__lt=timezone.now()).first()
    assert past is not None, "the demo has a past first-round interview"
    held = page.locator(f"#application-{past.pk} td.pipeline")
    assert "Held, needs decision" in held.inner_text()
    assert re.search(r"\d{1,2}:\d{2}", held.inner_text())
    # Needs action first: the held interviews lead the list.
    first_row = page.locator("#application-table tbody tr[id^=application-]").first
    assert "Held, needs decision" in first_row.inner_text()
    future = scheduled.filter(interview_start__gt=timezone.now()).first()
    assert "Held" not in page.locator(f"#application-{future.pk} td.pipeline").inner_text()

    # Search, debounced, on top of the chip.
    page.get_by_label("Search by name, email or public id").fill(past.applicant_name.split()[1].upper())
    page.wait_for_url(re.compile(r"q="))
    expect(rows(page)).to_have_count(1)
    assert page.locator(f"#application-{past.pk}").is_visible()

    # Live: a change elsewhere shows up when the page hears statusChanged (or at the next 5 s poll),
    # in the table and, out of band, in the chips' counts.
    new_count = demo.applications.filter(status="new").count()
    assert page.locator("#status-count-new").inner_text() == str(new_count)
    Application.objects.filter(pk=past.pk).update(applicant_name="Renamed Elsewhere")
    Application.objects.filter(pk=demo.applications.filter(status="new").first().pk).update(status="declined")
    bump_cohort_version(demo.pk)  # what every real change does after commit (raw updates do not)
    # Under load the refresh can race the debounced search's own request, and whichever is
    # answered last wins; the page catches up on the next event or poll, so send it again.
    for attempt in range(3):
        page.evaluate("htmx.trigger(document.body, 'statusChanged')")
        try:
            page.wait_for_selector(f"#application-{past.pk} >> text=Renamed Elsewhere", timeout=5_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    expect(page.locator("#status-count-new")).to_have_text(str(new_count - 1))

    # The Orphaned badge, reached and opened from the keyboard.
    badge = page.locator("#orphan-badge a")
    assert re.search(r"Orphaned\s+1", badge.inner_text())
    badge.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#orphan-modal")
    page.wait_for_selector("dialog#orphan-modal[open]")
    page.wait_for_selector("#orphan-modal-body >> text=charles.babbage@example.org")
    assert dialog.is_visible()
    page.keyboard.press("Escape")
    page.wait_for_selector("dialog#orphan-modal:not([open])", state="attached")

    # The closeModal event a match view sends closes it too.
    badge.click()
    page.wait_for_selector("dialog#orphan-modal[open]")
    page.evaluate("htmx.trigger(document.body, 'closeModal')")
    page.wait_for_selector("dialog#orphan-modal:not([open])", state="attached")

    # Back to the unfiltered tab with the browser's back button: the URL held the filters.
    page.go_back()
    page.wait_for_url(re.compile(r"status=first_round_scheduled"))
    assert re.search(r"[?&]q=(&|$)", page.url)
    expect(rows(page)).to_have_count(scheduled.count())  # locator waits: our CSP forbids eval
    # The filter bar follows the URL: the chip is ticked again and the search box emptied.
    expect(page.locator("#application-search")).to_have_value("")
    assert page.locator("label.chip", has_text="First round scheduled").locator("input").is_checked()
    assert not page.locator("label.chip", has_text="New").locator("input").is_checked()
    page.go_back()
    page.wait_for_url(tab)
    expect(page.locator("label.chip input[value=first_round_scheduled]")).not_to_be_checked()


def test_an_admin_changes_a_status_and_a_stale_form_is_refused_in_place(demo, live_server, browser_page):
    page = browser_page
    application = demo.applications.filter(status="needs_first_decision").first()
    other = demo.applications.filter(status="needs_first_decision").exclude(pk=application.pk).first()
    page.goto(f"{live_server.url}/accounts/login/?next=/cohorts/{demo.slug}/applications/{application.pk}/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("cohortos-demo")
    page.get_by_role("button", name="Log in").click()

    # Only the table's transitions are offered; htmx swaps the status panel in place.
    offered = page.locator("#application-status select option").all_inner_texts()
    assert offered == ["Choose…", "Waiting for second round", "Accepted", "Waitlist", "Declined"]
    page.get_by_label("Move to").select_option("accepted")
    page.get_by_label("Note (optional)").fill("Strong first round")
    page.get_by_role("button", name="Change status").click()
    # A decision asks first, in place.
    page.get_by_role("button", name="Yes, move to “Accepted”").click()
    page.wait_for_selector("#application-status >> text=Moved to “Accepted”.")
    assert "Reopen decision" in page.locator("#application-status").inner_text()
    application.refresh_from_db()
    assert application.status == "accepted"
    assert application.status_changes.get().note == "Strong first round"

    # A page left open while someone else moved the application: the 422 is shown in place.
    page.goto(f"{live_server.url}/cohorts/{demo.slug}/applications/{other.pk}/")
    Application.objects.filter(pk=other.pk).update(status="waitlist")
    page.get_by_label("Move to").select_option("declined")
    page.get_by_role("button", name="Change status").click()
    page.wait_for_selector("#application-status [role=alert] >> text=changed while you were looking")
    assert page.url.endswith(f"/applications/{other.pk}/")  # swapped in place, not a plain POST
    other.refresh_from_db()
    assert other.status == "waitlist"
