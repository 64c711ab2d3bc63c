"""The applicant's own page, `/i/<token>/`: issuing, finding and revoking its tokens.

A token is 256 random bits (ApplicantToken.key) scoped to one application. Every
invitation and reminder reuses the application's live token, so the applicant's
links keep working; once it expires (settings.APPLICANT_PAGE_DAYS) or an admin
revokes it, the next invitation issues a new one.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from .links import OTHER, link_for, provider_for
from .models import ApplicantToken, ScheduleChange


def token_for(application):
    """Return `application`'s usable ApplicantToken, issuing a new one when it has none.

    An expired live token is retired (revoked_at set, revoked_by empty) and replaced.
    Safe under concurrency: the "one live token per application" constraint makes a
    racing issuer read the winner's token.
    """
    now = timezone.now()
    with transaction.atomic():
        live = (ApplicantToken.objects.select_for_update()
                .filter(application=application, revoked_at__isnull=True).first())
        if live is not None and live.is_usable(now):
            return live
        if live is not None:
            ApplicantToken.objects.filter(pk=live.pk).update(revoked_at=now)
        try:
            with transaction.atomic():
                return ApplicantToken.objects.create(application=application)
        except IntegrityError:
            return ApplicantToken.objects.get(application=application, revoked_at__isnull=True)


def applicant_page_url(application):
    """Return the absolute URL of `application`'s page (settings.SITE_URL + `/i/<token>/`).

    Issues a token when the application has no usable one (see `token_for`).
    """
    token = token_for(application)
    return settings.SITE_URL + reverse("scheduling:applicant_page", args=[token.key])


def find_token(key):
    """Return the ApplicantToken whose key is `key` (any state), or None.

    The application, cohort and organization come with it (one query). Callers
    check `is_usable()`: an expired or revoked token must answer like an unknown one.
    """
    if not key or len(key) > 64:
        return None
    return (ApplicantToken.objects.select_related("application__cohort__organization")
            .filter(key=key).first())


def revoke_tokens(application, *, user):
    """Revoke `application`'s live token, if any; return how many were revoked (0 or 1).

    Its link answers 404 from now on; the next invitation (or "Create link") issues
    a new one. Writes a ScheduleChange naming `user`.
    """
    with transaction.atomic():
        revoked = ApplicantToken.objects.filter(
            application=application, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=user)
        if revoked:
            ScheduleChange.objects.create(
                application=application, user=user, action=ScheduleChange.Action.LINK_REVOKED,
                detail="The applicant's page link was revoked; the next invitation carries a new one.",
            )
    return revoked


def touch(token):
    """Record that `token`'s page was opened now (at most once a minute per token)."""
    now = timezone.now()
    ApplicantToken.objects.filter(pk=token.pk).exclude(
        last_used_at__gt=now - timedelta(minutes=1)).update(last_used_at=now)


def booking_link_for(application):
    """Return the applicant's bound booking link for the round they wait for, or "" when none.

    The round's booking URL with their name, email and signed ref (links.link_for).
    """
    return link_for(application)[1]


def receives_webhooks(application):
    """Return True when bookings for the round `application` waits for reach us by webhook.

    Then the applicant's page offers no "I've booked" form: the provider tells us. A
    round whose booking page is on Cal.com, Calendly or Cronofy (links.provider_for)
    counts once the cohort has received a signed delivery from that provider (its
    webhook is set up); other pages (Google appointments, …) never do. Without a
    configured round, any signed delivery to the cohort decides.
    """
    interview_round, _ = link_for(application)
    deliveries = application.cohort.deliveries.all()
    if interview_round is not None:
        provider = provider_for(interview_round.booking_url)
        if provider == OTHER:
            return False
        deliveries = deliveries.filter(provider=provider)
    return deliveries.exists()
