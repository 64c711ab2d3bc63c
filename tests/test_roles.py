"""Org roles: admins change, members (reviewers) read. Enforced in the views, one decorator.

The crawl posts to every URL of our apps as a member: each state-changing endpoint must
answer 403 with a sentence (applications.access.org_admin_required), a read-only one 405.
A new endpoint without the check fails here until it uses the decorator.
"""

import pytest
from django.test import Client

from applications.access import check_org_admin, refusal
from applications.models import Membership
from orphans.models import OrphanedInterview
from scheduling.models import WebhookDelivery

from .calcom_helpers import post, sample, with_email
from .factories import MembershipFactory, UserFactory
from .test_security import paths_for, template_of, walk

# Views of a user's own things, not an organization's (a member may post to them), and the
# applicant's page, which has no login at all (its token is the credential).
PERSONAL = {"user_settings", "applicant_page", "applicant_booked"}
OUR_APPS = ("applications.", "orphans.", "scheduling.")


@pytest.fixture
def reviewer(cohort):
    """A member (not an admin) of `cohort`'s organization."""
    user = UserFactory(username="reviewer")
    MembershipFactory(user=user, organization=cohort.organization, role=Membership.Role.MEMBER)
    return user


@pytest.fixture
def orphan(client, cohort):
    body = with_email(sample("booking_created", uid="RoleOrphanUid000000000", metadata={},
                             iCalUID="RoleOrphanUid000000000@Cal.com"), "stranger@example.org")
    assert post(client, cohort, body).json()["outcome"] == "orphaned"
    return OrphanedInterview.objects.get(cohort=cohort)


def _our_patterns():
    for parts, pattern in walk():
        if parts and str(parts[0]) == "admin/":
            continue  # the Django admin: staff only, scoped per organization (test_admin_scoping.py)
        module = getattr(pattern.callback, "__module__", "")
        if module.startswith(OUR_APPS) and not getattr(pattern.callback, "csrf_exempt", False):
            yield parts, pattern


def test_a_member_gets_403_with_a_sentence_from_every_state_changing_endpoint(reviewer, cohort, ada, orphan):
    values = {"int": [ada.pk, orphan.pk], "slug": [cohort.slug, cohort.organization.slug],
              "str": [cohort.slug], "path": [cohort.slug], "uuid": []}
    client = Client()
    client.force_login(reviewer)
    refused, read_only, problems = set(), set(), []
    for parts, pattern in _our_patterns():
        name = pattern.callback.__name__
        if name in PERSONAL:
            continue
        template, params = template_of(parts)
        statuses = set()
        for path in paths_for(template, params, values, {}, limit=6, require_target=False):
            response = client.post(path, data={"status": "declined", "application": ada.pk, "reason": "spam"})
            statuses.add(response.status_code)
            if response.status_code == 403:  # with a sentence saying who may (templates/403.html)
                assert 'role="alert">Only ' in response.content.decode(), path
        if 403 in statuses:
            refused.add(name)
        elif statuses == {405}:
            read_only.add(name)
        else:
            problems.append(f"{name}: a member's POST got {sorted(statuses)}, not 403 (or 405 for a read-only view)")
    assert not problems, "\n".join(problems)
    assert {"application_change_status", "orphan_match", "orphan_dismiss", "orphan_restore"} <= refused
    assert {"application_list", "application_detail"} <= read_only
    ada.refresh_from_db()
    orphan.refresh_from_db()
    assert ada.status == "waiting_first_round" and not ada.status_changes.exists()
    assert orphan.resolved_at is None


def test_a_member_cannot_decline_an_application(reviewer, cohort, ada):
    client = Client()
    client.force_login(reviewer)
    response = client.post(f"/cohorts/{cohort.slug}/applications/{ada.pk}/status/", {"status": "declined"})
    assert response.status_code == 403
    assert refusal(cohort.organization.name, "change statuses") in response.content.decode()
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round"


def test_a_member_cannot_dismiss_match_or_restore_an_orphan(reviewer, cohort, ada, orphan):
    client = Client()
    client.force_login(reviewer)
    base = f"/cohorts/{cohort.slug}/orphans/{orphan.pk}"
    assert client.post(f"{base}/dismiss/", {"reason": "spam"}).status_code == 403
    assert client.post(f"{base}/match/", {"application": ada.pk}).status_code == 403
    orphan.refresh_from_db()
    assert orphan.resolved_at is None and orphan.application_id is None
    orphan.resolution, orphan.resolved_at = OrphanedInterview.Resolution.DISMISSED, ada.created_at
    orphan.save()
    assert client.post(f"{base}/restore/").status_code == 403
    client.post(f"{base}/restore/", headers={"HX-Request": "true"})  # htmx: the page reloads with the refusal
    orphan.refresh_from_db()
    assert orphan.resolution == OrphanedInterview.Resolution.DISMISSED


def test_a_member_reads_the_pages_without_the_controls_an_admin_sees(reviewer, org_admin, cohort, ada, orphan):
    member, admin = Client(), Client()
    member.force_login(reviewer)
    admin.force_login(org_admin)
    detail = f"/cohorts/{cohort.slug}/applications/{ada.pk}/"
    orphans = f"/cohorts/{cohort.slug}/orphans/"
    assert 'action="/cohorts/' in admin.get(detail).content.decode()
    page = member.get(detail)
    assert page.status_code == 200 and "status/" not in page.content.decode().split("application-status")[1]
    assert "Only an org admin of" in page.content.decode()
    assert "/dismiss/" in admin.get(orphans).content.decode()
    listing = member.get(orphans).content.decode()
    assert "/dismiss/" not in listing and "/match/" not in listing and orphan.email in listing


def test_an_admin_still_changes_what_a_member_cannot(admin_client, cohort, ada):
    response = admin_client.post(f"/cohorts/{cohort.slug}/applications/{ada.pk}/status/",
                                 {"status": "declined", "current": ada.status, "confirm": "1"})
    assert response.status_code == 302
    ada.refresh_from_db()
    assert ada.status == "declined"


def test_an_outsider_gets_404_not_403_so_the_cohort_stays_unknown(outsider, cohort, ada):
    client = Client()
    client.force_login(outsider)
    response = client.post(f"/cohorts/{cohort.slug}/applications/{ada.pk}/status/", {"status": "declined"})
    assert response.status_code == 404


def test_check_org_admin_refuses_members_and_hides_the_organization_from_outsiders(reviewer, org_admin, outsider,
                                                                                  cohort):
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    check_org_admin(org_admin, cohort.organization)
    with pytest.raises(PermissionDenied, match="Only admins of"):
        check_org_admin(reviewer, cohort.organization, "rotate secrets")
    with pytest.raises(Http404):
        check_org_admin(outsider, cohort.organization)


def test_deliveries_are_untouched_by_a_members_requests(reviewer, cohort, ada):
    before = WebhookDelivery.objects.count()
    client = Client()
    client.force_login(reviewer)
    client.post(f"/cohorts/{cohort.slug}/applications/{ada.pk}/status/", {"status": "declined"})
    assert WebhookDelivery.objects.count() == before
