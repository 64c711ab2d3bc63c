"""The cohort settings page and invitations in a real browser (Debian's chromium via Playwright).

Copies the webhook URL with its button, reveals the secret, previews an invitation
template with an unknown placeholder and then a valid one as you type, and saves
screenshots of every page issue 8 added (docs/screenshots/ with SCREENSHOTS=docs).
"""

import io

import pytest

from scheduling import links

from .calcom_helpers import post, sample, with_email
from .browser import BROWSER_MARKS, browser_page, screenshot_path, short_lived_connections  # noqa: F401
from .demo import seed_quick_start_demo

pytestmark = BROWSER_MARKS


@pytest.fixture
def demo(transactional_db):
    """The quick start's demo cohort: both rounds set up, two applicants invited four days ago."""
    seed_quick_start_demo(stdout=io.StringIO())
    from applications.models import Cohort

    return Cohort.objects.get(slug="northwind-2026")


def log_in(page, live_server, next_path):
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("cohortos-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}{next_path}")


def deliveries(cohort):
    """Post the done-when story: Ada's link booked with another email, a forged ref, a wrong round."""
    from django.test import Client

    ada = cohort.applications.get(public_id="app_7f3c2a91")
    ref = links.make_ref(ada, 1)
    post(Client(), cohort, with_email(sample("booking_created", metadata={"application_id": ref}),
                                      "ada.personal@example.net"))
    post(Client(), cohort, with_email(sample("booking_requested", metadata={"application_id": ref[:-3] + "xyz"}),
                                      "mallory@example.net"))
    mary = sample("booking_created", uid="MaryWrongRound00000000", iCalUID="MaryWrongRound00000000@Cal.com",
                  type="first-round-interview", metadata={"application_id": "app_2b81d0c4"})
    post(Client(), cohort, with_email(mary, "mary.somerville@example.org"))


def test_settings_copy_webhook_url_and_preview_a_template_as_you_type(demo, live_server, browser_page):
    page = browser_page
    deliveries(demo)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    path = f"/cohorts/{demo.slug}/settings/"
    log_in(page, live_server, path)
    health = page.locator("#sync-health")
    assert "Link reference" in health.inner_text()
    assert "Booked the first-round interview while waiting for round 2" in health.inner_text()
    assert "not valid for this cohort" in health.inner_text()
    page.screenshot(path=str(screenshot_path("cohort-settings.png")), full_page=True, caret="initial")
    health.screenshot(path=str(screenshot_path("sync-health.png")), caret="initial")

    # Copy the webhook URL with its button: the clipboard holds the URL with its trailing slash.
    page.locator("#webhook").get_by_role("button", name="Copy URL").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"{live_server.url}/webhooks/calcom/{demo.webhook_key}/"
    assert page.get_by_role("button", name="Copied").count() == 1

    # The secret stays hidden until asked for.
    secret = page.locator("#webhook-secret")
    assert not secret.is_visible()
    page.get_by_text("Show secret").click()
    assert secret.is_visible() and secret.input_value() == demo.webhook_secret

    # Live preview: an unknown placeholder is an error in place, then a valid text renders.
    body = page.locator("#id_round1-invitation_body")
    preview = page.locator("#round-1-preview")
    body.fill("Hi {{ applicant.nickname }}, book here: {{ booking_link }}")
    preview.get_by_text("Unknown placeholder {{ applicant.nickname }}").wait_for()
    page.locator("#round-1").screenshot(path=str(screenshot_path("cohort-settings-preview-error.png")), caret="initial")
    body.fill("Hi {{ applicant.first_name }}, book here: {{ booking_link }}")
    preview.get_by_text("Hi Ada, book here: https://cal.com/northwind/first-round-interview?").wait_for()
    assert preview.get_by_role("alert").count() == 0

    # Saving the broken text is refused with the same sentence.
    body.fill("Hi {{ applicant.nickname }}")
    page.get_by_role("button", name="Save round 1").click()
    page.get_by_text("Round 1 was not saved").wait_for()
    assert "Unknown placeholder {{ applicant.nickname }}" in page.locator("#round-1").inner_text()

    # Rotating the secret asks first.
    page.goto(f"{live_server.url}{path}")
    page.get_by_role("link", name="Rotate secret…").click()
    page.get_by_text("The old secret stops working now.").wait_for()
    page.screenshot(path=str(screenshot_path("rotate-secret.png")), full_page=True, caret="initial")


def test_an_admin_copies_an_applicants_link_and_invites_from_the_tab(demo, live_server, browser_page):
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    ada = demo.applications.get(public_id="app_7f3c2a91")
    path = f"/cohorts/{demo.slug}/applications/{ada.pk}/"
    log_in(page, live_server, path)
    page.get_by_role("button", name="Copy link").click()
    assert links.make_ref(ada, 1) in page.evaluate("navigator.clipboard.readText()")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to ada.lovelace@example.org.").wait_for()
    assert "Invited" in page.locator("#invitation-panel .pipeline-invite").inner_text()
    page.screenshot(path=str(screenshot_path("application-invitations.png")), full_page=True, caret="initial")

    page.goto(f"{live_server.url}/cohorts/{demo.slug}/applications/?status=waiting_first_round")
    page.get_by_text("Invited 4 days ago").first.wait_for()
    page.locator(".row-select").nth(0).check()
    page.locator(".row-select").nth(1).check()
    page.screenshot(path=str(screenshot_path("applications-invitations.png")), full_page=False, caret="initial")
    page.get_by_role("button", name="Send invitations to selected").click()
    page.get_by_text("Sent ").first.wait_for()
    assert "skipped" in page.locator(".messages").inner_text() or "Sent 2" in page.locator(".messages").inner_text()


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}], ids=["phone"])
def test_settings_page_fits_a_phone(demo, live_server, browser_page, viewport):
    page = browser_page
    log_in(page, live_server, f"/cohorts/{demo.slug}/settings/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(screenshot_path("cohort-settings-phone.png")), full_page=False, caret="initial")
