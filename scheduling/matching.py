"""Which application a booking event is about: the link's reference, the booking chain, the email."""

from django.db.models import Case, F, Q, Value, When

from applications.models import Application
from orphans.models import OrphanedInterview

from .models import Booking

MATCHED_BY_METADATA = "metadata"
MATCHED_BY_CHAIN = "chain"
MATCHED_BY_EMAIL = "email"


def match_application(cohort, event):
    """Find the application `event` is about, within `cohort`.

    Tries, in order: the link's reference (`event.application_id`, whatever the
    provider: a public id, or numeric pk) when it names an application of this
    cohort; a booking chain we already know (`uid`, `rescheduleUid`, `iCalUID`, the
    seat's attendee; the booking's own uid first); the booker's email
    against contact and alternate emails. Returns (Application, how) with how
    "metadata", "chain" or "email"; or (None, reason) with an
    OrphanedInterview.Reason value ("no_match" or "ambiguous").
    """
    applications = Application.objects.filter(cohort=cohort)
    ref = event.application_id
    if ref:
        by_ref = Q(public_id=ref)
        if ref.isascii() and ref.isdigit() and len(ref) < 18:
            by_ref |= Q(pk=int(ref))
        found = applications.filter(by_ref).first()
        if found is not None:
            return found, MATCHED_BY_METADATA

    known = (
        Booking.objects.of_event(event)
        .filter(cohort=cohort, application__isnull=False)
        .annotate(own=Case(When(uid=event.uid, then=Value(0)), default=Value(1)))
        .order_by("own", F("last_event_at").desc(nulls_last=True), "-pk")
        .select_related("application")
        .first()
    )
    if known is not None:
        return known.application, MATCHED_BY_CHAIN

    by_email = list(applications.with_email(event.email).order_by("pk")[:2])
    if len(by_email) == 1:
        return by_email[0], MATCHED_BY_EMAIL
    if len(by_email) > 1:
        return None, OrphanedInterview.Reason.AMBIGUOUS
    return None, OrphanedInterview.Reason.NO_MATCH
