"""Tenant isolation, CSRF and deployment settings, checked over every URL the project has.

The URL crawl walks `get_resolver().url_patterns`, so a view added later is crawled
without touching this file; a pattern it cannot build a path for fails the test
instead of being skipped.
"""

import itertools
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from applications.models import Application, Cohort
from orphans.models import OrphanedInterview
from scheduling.providers import calcom
from scheduling.models import Booking, WebhookDelivery

from .calcom_helpers import encode, post, sample, with_email
from .factories import ApplicationFactory, CohortFactory, MembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
OLD_UID = "k7Qm3XyZp2RvT9wLbN4sHd"


# --- webhook keys and secrets stay in their cohort ---------------------------------------


def test_a_cohorts_url_with_another_cohorts_secret_is_refused_both_ways(client, cohort, ada):
    other = CohortFactory()
    body = encode(sample("booking_created"))
    for target, signer in ((cohort, other), (other, cohort)):
        response = post(client, target, body, signature=calcom.sign(body, signer.webhook_secret))
        assert response.status_code == 403
    assert not WebhookDelivery.objects.exists()
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round"


def test_a_cohorts_own_key_and_secret_cannot_touch_another_cohorts_applications(client, cohort):
    victim_cohort = CohortFactory()
    victim = ApplicationFactory(cohort=victim_cohort, contact_email="ada.lovelace@example.org",
                                public_id="app_victim01", status="waiting_first_round")
    assert post(client, victim_cohort, sample("booking_created")).json()["outcome"] == "applied"
    victim.refresh_from_db()
    before = (victim.status, victim.interview_booking_uid, victim.interview_start)
    assert before[0] == "first_round_scheduled"

    # Signed correctly for `cohort`, but naming the victim's application, email and booking.
    named = {"metadata": {"application_id": victim.public_id}}
    attempts = [
        sample("booking_cancelled", uid=OLD_UID, createdAt="2026-06-20T00:00:00.000Z"),
        sample("booking_rescheduled", createdAt="2026-06-21T00:00:00.000Z", **named),
        sample("booking_created", uid="AttackerUid00000000000", iCalUID=f"{OLD_UID}@Cal.com",
               createdAt="2026-06-22T00:00:00.000Z", **named),
        with_email(sample("booking_created", uid="AttackerUid00000000001", metadata={},
                          createdAt="2026-06-23T00:00:00.000Z"), "ada.lovelace@example.org"),
    ]
    for data in attempts:
        assert post(client, cohort, data).status_code in (200, 400)

    victim.refresh_from_db()
    assert (victim.status, victim.interview_booking_uid, victim.interview_start) == before
    assert Booking.objects.get(cohort=victim_cohort).state == "accepted"
    assert not Booking.objects.filter(cohort=cohort, application=victim).exists()
    assert not WebhookDelivery.objects.filter(cohort=cohort, application=victim).exists()


# --- the crawl -------------------------------------------------------------------------------

_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>(?:[^()\\]|\\.|\([^()]*\))*)\)")
_LITERALS = re.compile(r"^[\w-]+(?:\|[\w-]+)*$")


def walk(patterns=None, prefix=()):
    """Yield (pattern parts, URLPattern) for every URL pattern of the project, depth first."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, (*prefix, entry.pattern))
        elif isinstance(entry, URLPattern):
            yield (*prefix, entry.pattern), entry


def template_of(parts):
    """Return (format string, [(name, kind, literal alternatives)]) for a chain of patterns, or None."""
    text, params = "", []

    def hole(name, kind, options=()):
        params.append((name, kind, tuple(options)))
        return "{%d}" % (len(params) - 1)

    for part in parts:
        if isinstance(part, RoutePattern):
            route = str(part).replace("{", "{{").replace("}", "}}")
            text += _ROUTE_PARAM.sub(lambda m: hole(m["name"], m["converter"] or "str"), route)
        elif isinstance(part, RegexPattern):
            regex = part._regex.replace("{", "{{").replace("}", "}}")
            regex = _REGEX_GROUP.sub(
                lambda m: hole(m["name"], "literal" if _LITERALS.match(m["body"]) else "path",
                               m["body"].split("|") if _LITERALS.match(m["body"]) else ()),
                regex,
            )
            # django-simple-history's object-history pages use unnamed groups: "([^/]+)".
            while "([^/]+)" in regex:
                regex = regex.replace("([^/]+)", hole("arg", "str"), 1)
            regex = regex.lstrip("^").removesuffix(r"\Z").removesuffix("$")
            regex = re.sub(r"\\(.)", r"\1", regex)
            if re.search(r"[\[\]()*+?|^$]", regex):
                return None  # a regex we cannot fill in: the caller reports it
            text += regex
        else:
            return None
    return "/" + text, params


def paths_for(template, params, values, own_values, limit=24, require_target=True):
    """Return up to `limit` paths filling `params`, each using at least one of `values`' objects."""
    choices = []
    for name, kind, options in params:
        if kind == "literal":
            choices.append([(o, False) for o in options])
        else:
            choices.append([(v, True) for v in values[kind]] + [(v, False) for v in own_values.get(kind, [])])
    combos = [c for c in itertools.product(*choices)
              if not (params and require_target) or any(is_target for _, is_target in c)]
    step = max(1, len(combos) // limit)
    return [template.format(*(str(v) for v, _ in combo)) for combo in combos[::step][:limit]]


@pytest.fixture
def victim(db):
    """Another organization with every kind of object, and identifiers that must never leak."""
    user = UserFactory(username="victim_admin_zeta")
    cohort = CohortFactory(name="Zeta Secret Cohort")
    MembershipFactory(user=user, organization=cohort.organization)
    application = ApplicationFactory(cohort=cohort, applicant_name="Quintessa Victimovna",
                                     contact_email="ada.lovelace@example.org", public_id="app_zeta00001",
                                     status="waiting_first_round")
    client = Client()
    assert post(client, cohort, sample("booking_created", metadata={})).json()["outcome"] == "applied"
    assert post(client, cohort, with_email(sample("booking_created", uid="ZetaOrphanUid000000000", metadata={},
                                                  iCalUID="ZetaOrphanUid000000000@Cal.com"),
                                           "zeta.orphan@example.org", "Orfeo Zetaman")).json()["outcome"] == "orphaned"
    orphan = OrphanedInterview.objects.get(cohort=cohort)
    application.refresh_from_db()
    return {
        "user": user, "cohort": cohort, "application": application, "orphan": orphan,
        "booking": Booking.objects.get(cohort=cohort, application=application),
        "delivery": WebhookDelivery.objects.filter(cohort=cohort).first(),
        "status_change": application.status_changes.get(),
        "membership": user.memberships.get(),
    }


def _values(objects):
    cohort, application = objects["cohort"], objects["application"]
    ints = [objects[k].pk for k in ("application", "orphan", "cohort", "booking", "delivery", "status_change",
                                    "membership", "user")]
    ints = list(dict.fromkeys([*ints, cohort.organization.pk]))
    strings = [cohort.webhook_key, cohort.slug, application.public_id, str(application.pk), str(objects["orphan"].pk),
               urlsafe_base64_encode(force_bytes(objects["user"].pk))]
    return {"int": ints, "slug": [cohort.slug, cohort.organization.slug], "str": strings, "path": strings
            + [f"applications/application/{application.pk}/change/"], "uuid": []}


def _secrets_of(objects):
    cohort, application, orphan = objects["cohort"], objects["application"], objects["orphan"]
    return [cohort.name, cohort.slug, cohort.webhook_key, cohort.webhook_secret, cohort.organization.name,
            application.applicant_name, application.public_id, application.contact_email,
            application.interview_meeting_url, orphan.email, orphan.name, objects["user"].username]


# Views that answer 200 to anyone whatever the path parameters, with no object data: the
# password-reset confirmation shows "invalid link" for a token that does not match.
ANSWERS_ANY_PARAMETERS = {"password_reset_confirm"}


def _landing(client, response, hops=5):
    """Follow a redirect chain (GET) from `response`; return the final response."""
    while response.status_code in (301, 302, 303, 307, 308) and hops:
        response = client.get(response["Location"])
        hops -= 1
    return response


@pytest.mark.parametrize("staff", [False, True], ids=["org admin", "org admin with admin-site access"])
def test_an_outsider_cannot_see_or_change_another_organizations_data_through_any_url(outsider, victim, staff):
    """Django's admin is the operators' tool: a staff user without model permissions sees nothing there."""
    outsider.is_staff = staff
    outsider.save(update_fields=["is_staff"])
    own_cohort = Cohort.objects.for_user(outsider).get()
    own = {"slug": [own_cohort.slug], "str": [own_cohort.slug, own_cohort.webhook_key],
           "path": [own_cohort.slug]}
    values, leaks = _values(victim), _secrets_of(victim)
    client = Client()
    crawled, problems, unbuildable = 0, [], []
    for parts, pattern in walk():
        built = template_of(parts)
        if built is None:
            unbuildable.append("".join(str(p) for p in parts))
            continue
        template, params = built
        for path in paths_for(template, params, values, own, limit=40):
            for method in ("get", "post"):
                client.force_login(outsider)  # a crawled logout must not end the session for the rest
                response = getattr(client, method)(path, data={"status": "accepted", "note": "x"} if method == "post"
                                                   else None)
                crawled += 1
                status, body = response.status_code, response.content.decode(errors="replace")
                # What we put in the path may be echoed back (a login form's ?next=): not a leak.
                secret_here = [s for s in leaks if s and s not in path]
                leaked = [s for s in secret_here if s in body]
                if status >= 500:
                    problems.append(f"{method.upper()} {path} → {status}")
                elif not params:
                    if leaked:  # a page without parameters may answer, but only with the user's own data
                        problems.append(f"{method.upper()} {path} → {status} shows {leaked}")
                elif status in (403, 404, 405):
                    pass
                elif status in (301, 302):
                    # A redirect may only lead to a refusal or to a page without their data
                    # (a login form, the admin index of a user without permissions).
                    landing = _landing(client, response)
                    shown = [s for s in secret_here if s in landing.content.decode(errors="replace")]
                    if landing.status_code >= 500 or shown or (
                            landing.status_code == 200 and resolve(landing.wsgi_request.path).url_name
                            not in ("login", "index")):
                        problems.append(f"{method.upper()} {path} → {status} → {landing.wsgi_request.path} "
                                        f"{landing.status_code} {shown}")
                elif status == 200 and pattern.name in ANSWERS_ANY_PARAMETERS and not leaked:
                    pass
                else:
                    problems.append(f"{method.upper()} {path} ({pattern.name}) → {status} "
                                    f"{response.get('Location', '')} {leaked}")

    assert not unbuildable, f"teach template_of these patterns: {unbuildable}"
    assert crawled > 50
    assert not problems, "\n".join(problems)
    # And nothing of theirs moved.
    application, orphan = victim["application"], victim["orphan"]
    assert Application.objects.get(pk=application.pk).status == application.status
    assert OrphanedInterview.objects.get(pk=orphan.pk).resolved_at is None
    fresh = Cohort.objects.get(pk=victim["cohort"].pk)
    assert (fresh.webhook_key, fresh.webhook_secret) == (victim["cohort"].webhook_key, victim["cohort"].webhook_secret)
    assert WebhookDelivery.objects.filter(cohort=victim["cohort"]).count() == 2


def test_the_crawler_builds_every_pattern_and_reaches_the_views_it_names(outsider, victim):
    patterns = list(walk())
    names = {p.name for _, p in patterns}
    assert {"calcom_webhook", "list", "detail", "change_status", "home"} <= names
    for parts, pattern in patterns:
        built = template_of(parts)
        assert built is not None, parts
        template, params = built
        for path in paths_for(template, params, _values(victim), {}, limit=3, require_target=False):
            if pattern.name in ("final_catch_all",):  # the admin's catch-all matches anything
                continue
            match = resolve(path)
            assert match.url_name == pattern.name or match.func == pattern.callback, (path, pattern)


# --- CSRF --------------------------------------------------------------------------------------

# The only views that take POSTs without a CSRF token: Cal.com cannot send one (it signs instead).
CSRF_EXEMPT = {f"{provider}_webhook{slash}" for provider in ("calcom", "calendly", "cronofy")
               for slash in ("", "_noslash")}


def test_every_post_endpoint_except_the_webhook_refuses_a_post_without_a_csrf_token(org_admin, cohort, ada):
    values = {
        "int": [ada.pk], "slug": [cohort.slug], "str": [cohort.slug], "path": [str(ada.pk)], "uuid": [],
    }
    client = Client(enforce_csrf_checks=True)
    checked, exempt, problems = 0, set(), []
    for parts, pattern in walk():
        template, params = template_of(parts)
        path = paths_for(template, params, values, {}, limit=1, require_target=False)[0]
        if getattr(resolve(path).func, "csrf_exempt", False):
            exempt.add(pattern.name)
            continue
        client.force_login(org_admin)
        response = client.post(path, data={"status": "accepted"})
        checked += 1
        if response.status_code != 403:
            problems.append(f"POST {path} ({pattern.name}) without a CSRF token → {response.status_code}")
    assert exempt == CSRF_EXEMPT
    assert checked > 20
    assert not problems, "\n".join(problems)


def test_the_status_form_accepts_a_post_with_its_csrf_token(org_admin, cohort, ada):
    """The other side of the CSRF check: the real form, token included, goes through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org_admin)
    page = client.get(f"/cohorts/{cohort.slug}/applications/{ada.pk}/")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token, "the application page has a form with a CSRF token"
    form = re.search(r'<form[^>]*action="([^"]*status/)"', page.content.decode())
    action = form.group(1) if form else f"/cohorts/{cohort.slug}/applications/{ada.pk}/status/"
    response = client.post(action, data={"csrfmiddlewaretoken": token.group(1), "status": "first_round_scheduled"})
    assert response.status_code != 403


# --- deployment settings --------------------------------------------------------------------


def _production_env(**extra):
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_COOKIE", "CSRF_COOKIE"))}
    env.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="cohortos.example.org",
               DJANGO_SETTINGS_MODULE="cohortos.settings", FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode())
    env.update(extra)
    return env


def test_check_deploy_warns_when_field_encryption_falls_back_to_secret_key():
    env = _production_env()
    del env["FIELD_ENCRYPTION_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "applications.W001" in result.stderr + result.stdout


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = _production_env()
    del env["SECRET_KEY"]
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_with_the_ssl_redirect_on_the_webhook_works_behind_a_tls_proxy(client, cohort, ada, settings):
    """Cal.com counts a redirect as a failure (§5): the proxy must forward X-Forwarded-Proto."""
    settings.SECURE_SSL_REDIRECT = True
    body = encode(sample("booking_created"))
    plain = client.post(cohort.webhook_path(), data=body, content_type="application/json",
                        HTTP_X_CAL_SIGNATURE_256=calcom.sign(body, cohort.webhook_secret))
    assert plain.status_code == 301
    proxied = client.post(cohort.webhook_path(), data=body, content_type="application/json",
                          HTTP_X_CAL_SIGNATURE_256=calcom.sign(body, cohort.webhook_secret),
                          HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200 and proxied.json()["outcome"] == "applied"
