"""The Django admin per organization: a staff org admin of B crawls every admin URL with A's ids.

Staff who are not superusers see and choose only rows of the organizations they
administer (applications/admin_scoping.py). The crawler gives the staff user every
model permission, so only the scoping stands between them and A's data.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from applications.admin_scoping import OrganizationScopedAdmin, mask
from applications.models import Application, Cohort, Membership
from orphans.models import OrphanedInterview
from scheduling.models import WebhookDelivery

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, CohortFactory, MembershipFactory, UserFactory
from .test_security import _secrets_of, paths_for, template_of, victim, walk  # noqa: F401 (victim: a fixture)


@pytest.fixture
def staff_of_b(db):
    """A staff user, org admin of organization B, holding every model permission there is."""
    user = UserFactory(username="bea_staff", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    cohort = CohortFactory(name="Bravo Cohort")
    MembershipFactory(user=user, organization=cohort.organization, role=Membership.Role.ADMIN)
    application = ApplicationFactory(cohort=cohort, applicant_name="Bravo Applicant",
                                     contact_email="bravo@example.org", status="waiting_first_round")
    client = Client()
    client.force_login(user)
    assert post(Client(), cohort, with_email(sample("booking_created", uid="BravoOrphanUid00000000", metadata={},
                                                    iCalUID="BravoOrphanUid00000000@Cal.com"),
                                             "bravo.orphan@example.org")).json()["outcome"] == "orphaned"
    return {"user": user, "client": client, "cohort": cohort, "application": application}


def _admin_patterns():
    for parts, pattern in walk():
        if parts and str(parts[0]) == "admin/":
            yield parts, pattern


def _victim_ids(victim):
    return [str(victim[k].pk) for k in ("application", "orphan", "cohort", "booking", "delivery", "status_change",
                                        "membership", "user")] + [str(victim["cohort"].organization.pk)]


def test_staff_of_another_organization_sees_none_of_its_rows_through_any_admin_url(victim, staff_of_b):
    client = staff_of_b["client"]
    ids = _victim_ids(victim)
    values = {"int": [int(i) for i in ids], "path": ids, "str": ids, "slug": [victim["cohort"].slug], "uuid": []}
    leaks = [s for s in _secrets_of(victim) if s]
    crawled, problems = 0, []
    for parts, pattern in _admin_patterns():
        built = template_of(parts)
        assert built is not None, parts
        template, params = built
        for path in paths_for(template, params, values, {}, limit=60, require_target=False):
            paths = [path]
            if path.endswith("/") and not params and path.count("/") == 4:  # a changelist: search and filter too
                paths += [f"{path}?q={victim['application'].applicant_name}", f"{path}?q={victim['orphan'].email}",
                          f"{path}?cohort__id__exact={victim['cohort'].pk}"]
            for url in paths:
                response = client.get(url, follow=True)
                crawled += 1
                body = response.content.decode(errors="replace")
                shown = [s for s in leaks if s in body and s not in url]
                if response.status_code >= 500 or shown:
                    problems.append(f"GET {url} → {response.status_code} shows {shown}")
    # Each of A's rows, by its own model's URLs: sent away, never shown.
    for key in ("application", "orphan", "cohort", "booking", "delivery", "status_change", "membership"):
        obj = victim[key]
        base = f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}"
        for view in ("change", "delete", "history"):
            response = client.get(f"{base}/{view}/")
            crawled += 1
            if response.status_code not in (302, 403, 404):
                problems.append(f"GET {base}/{view}/ answered {response.status_code} for another organization's row")
    organization = victim["cohort"].organization
    assert client.get(f"/admin/applications/organization/{organization.pk}/change/").status_code == 302
    assert crawled > 100
    assert not problems, "\n".join(problems)

    # Their own rows are there: the scoping cuts, it does not blank the admin.
    own = client.get("/admin/applications/application/").content.decode()
    assert "Bravo Applicant" in own and victim["application"].applicant_name not in own


def test_actions_on_another_organizations_rows_change_nothing(victim, staff_of_b):
    client = staff_of_b["client"]
    cohort, application, orphan = victim["cohort"], victim["application"], victim["orphan"]
    before = (cohort.webhook_key, cohort.webhook_secret)
    posts = [
        ("/admin/applications/cohort/", {"action": "rotate_secret", "_selected_action": [cohort.pk]}),
        ("/admin/applications/cohort/", {"action": "rotate_key", "_selected_action": [cohort.pk]}),
        ("/admin/applications/application/", {"action": "move_to_declined", "_selected_action": [application.pk]}),
        ("/admin/orphans/orphanedinterview/", {"action": "dismiss_spam", "_selected_action": [orphan.pk]}),
        ("/admin/scheduling/webhookdelivery/", {"action": "reprocess", "_selected_action": [victim["delivery"].pk]}),
        (f"/admin/applications/application/{application.pk}/delete/", {"post": "yes"}),
        (f"/admin/applications/cohort/{cohort.pk}/change/", {"name": "Taken", "organization": cohort.organization_id}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code in (200, 302, 404), url
    cohort.refresh_from_db()
    assert (cohort.webhook_key, cohort.webhook_secret) == before and cohort.name == "Zeta Secret Cohort"
    assert Application.objects.get(pk=application.pk).status == application.status
    assert OrphanedInterview.objects.get(pk=orphan.pk).resolved_at is None


def test_foreign_key_choices_offer_only_the_users_organizations(victim, staff_of_b):
    client = staff_of_b["client"]
    own_cohort = staff_of_b["cohort"]
    add_cohort = client.get("/admin/applications/cohort/add/").content.decode()
    assert own_cohort.organization.name in add_cohort and victim["cohort"].organization.name not in add_cohort
    add_application = client.get("/admin/applications/application/add/").content.decode()
    assert own_cohort.name in add_application and victim["cohort"].name not in add_application

    # Moving their own application into A's cohort by posting A's id is refused by the form.
    own = staff_of_b["application"]
    response = client.post(f"/admin/applications/application/{own.pk}/change/", {
        "cohort": victim["cohort"].pk, "public_id": own.public_id, "applicant_name": own.applicant_name,
        "contact_email": own.contact_email, "status": own.status,
    })
    assert response.status_code == 200 and "errornote" in response.content.decode()  # the form refused it
    own.refresh_from_db()
    assert own.cohort_id == own_cohort.pk


def test_staff_cannot_raise_privileges_or_see_superusers(victim, staff_of_b):
    client = staff_of_b["client"]
    root = UserFactory(username="root_operator", is_staff=True, is_superuser=True)
    users = client.get("/admin/auth/user/").content.decode()
    assert "bea_staff" in users and "root_operator" not in users and victim["user"].username not in users
    me = staff_of_b["user"]
    client.post(f"/admin/auth/user/{me.pk}/change/", {"username": me.username, "is_superuser": "on",
                                                        "is_staff": "on", "is_active": "on"})
    me.refresh_from_db()
    assert not me.is_superuser
    assert client.get("/admin/auth/group/").status_code == 403
    assert client.get(f"/admin/auth/user/{root.pk}/change/", follow=True).redirect_chain  # not theirs: sent away


def test_webhook_secrets_and_keys_are_masked_even_for_superusers(staff_of_b):
    cohort = staff_of_b["cohort"]
    cohort.calendly_signing_key = "calendly-signing-key-0123456789abcdef"
    cohort.cronofy_client_secret = "cronofy-client-secret-0123456789abcdef"
    cohort.save()
    root = Client()
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    for client in (staff_of_b["client"], root):
        page = client.get(f"/admin/applications/cohort/{cohort.pk}/change/").content.decode()
        for secret in (cohort.webhook_secret, cohort.webhook_key, cohort.calendly_signing_key,
                       cohort.cronofy_client_secret):
            assert secret not in page and mask(secret) in page
        listing = client.get("/admin/applications/cohort/").content.decode()
        assert cohort.webhook_secret not in listing and cohort.webhook_key not in listing


def test_every_admin_of_our_apps_models_is_scoped_by_organization():
    ours = [m for m in admin.site._registry if m._meta.app_label in ("applications", "scheduling", "orphans")]
    assert len(ours) >= 9
    unscoped = [m.__name__ for m in ours if not isinstance(admin.site._registry[m], OrganizationScopedAdmin)]
    assert not unscoped, f"inherit applications.admin_scoping.OrganizationScopedAdmin: {unscoped}"


def test_the_deliveries_list_never_selects_the_raw_bodies_and_shows_their_size(staff_of_b, django_assert_max_num_queries):
    cohort = staff_of_b["cohort"]
    big = b'{"triggerEvent":"PING","payload":{"pad":"' + b"x" * 300_000 + b'"}}'
    for i in range(5):
        WebhookDelivery.objects.create(cohort=cohort, body=big + b" " * i, sha256=f"{i:064d}")
    root = Client()
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    with CaptureQueriesContext(connection) as queries:
        page = root.get("/admin/scheduling/webhookdelivery/")
    assert page.status_code == 200
    assert "293.0\xa0KB" in page.content.decode()  # the size column (filesizeformat)
    column = '"scheduling_webhookdelivery"."body"'
    selects = [q["sql"] for q in queries.captured_queries if "scheduling_webhookdelivery" in q["sql"]]
    # The size is counted by the database (LENGTH(body)); the column itself is never selected.
    assert selects and not [sql for sql in selects if column in sql.replace(f"LENGTH({column})", "")]
    assert all(len(sql) < 10_000 for sql in selects)
    # The list of status changes and an application's page name deliveries without loading bodies either.
    for url in ("/admin/applications/statuschange/",):
        with CaptureQueriesContext(connection) as queries:
            assert root.get(url).status_code == 200
        assert not any('"scheduling_webhookdelivery"."body"' in q["sql"] for q in queries.captured_queries)
