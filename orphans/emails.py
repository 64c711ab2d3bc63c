"""The alert emails about orphaned interviews: one per orphan, or a digest for a burst.

Pure rendering: which orphans to announce, and when, is `orphans.alerts.send_alerts`'s.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from applications.models import Membership, time_zone_or_utc

# More orphans than this in one send make a single digest per admin instead of one email each:
# with the send window (orphans.alerts.ALERT_WINDOW), one email per admin per cohort per window.
DIGEST_THRESHOLD = 1


def alert_recipients(organization):
    """Return the active admins of `organization` who have an email address, by username."""
    return list(
        get_user_model().objects.filter(
            memberships__organization=organization, memberships__role=Membership.Role.ADMIN,
            is_active=True,
        ).exclude(email="").order_by("username")
    )


def orphans_url(cohort, orphan=None):
    """Return the absolute URL of the cohort's orphan list (the matching page), at `orphan`."""
    url = settings.SITE_URL + reverse("orphans:list", args=[cohort.slug])
    return f"{url}#orphan-{orphan.pk}" if orphan is not None else url


def when(orphan):
    """Return (UTC text, booker's-zone text or "") for the orphan's interview start."""
    if orphan.start is None:
        return "time unknown", ""
    utc = f"{orphan.start:%a %-d %b %Y, %H:%M} UTC"
    if not orphan.time_zone or orphan.time_zone == "UTC":
        return utc, ""
    local = orphan.start.astimezone(time_zone_or_utc(orphan.time_zone))
    return utc, f"{local:%a %-d %b, %H:%M} {orphan.time_zone}"


def _context(cohort, orphans):
    rows = []
    for orphan in orphans:
        utc, local = when(orphan)
        rows.append({"orphan": orphan, "utc": utc, "local": local, "url": orphans_url(cohort, orphan)})
    return {"cohort": cohort, "rows": rows, "count": len(rows), "list_url": orphans_url(cohort)}


def alert_messages(cohort, orphans, recipients):
    """Return the EmailMultiAlternatives announcing `orphans` (all of `cohort`) to `recipients`.

    Up to DIGEST_THRESHOLD orphans: one email per orphan per recipient. More:
    one digest per recipient listing them all. Each recipient gets their own
    message, so no admin sees the others' addresses.
    """
    orphans = list(orphans)
    if not orphans or not recipients:
        return []
    if len(orphans) > DIGEST_THRESHOLD:
        batches = [("emails/orphan_digest", orphans)]
    else:
        batches = [("emails/orphan_alert", [orphan]) for orphan in orphans]
    messages = []
    for folder, batch in batches:
        context = _context(cohort, batch)
        subject = " ".join(render_to_string(f"{folder}/subject.txt", context).split())
        text = render_to_string(f"{folder}/body.txt", context)
        html = render_to_string(f"{folder}/body.html", context)
        for user in recipients:
            message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [user.email])
            message.attach_alternative(html, "text/html")
            messages.append(message)
    return messages
