"""Which application a booking event is about: the link's reference, the booking chain, the email."""

from django.db.models import Case, F, Value, When

from applications.models import Application
from orphans.models import OrphanedInterview

from . import links
from .models import Booking, MatchRule

MATCHED_BY_LINK = MatchRule.LINK  # a signed ref (links.make_ref)
MATCHED_BY_METADATA = MatchRule.PUBLIC_ID  # an old link's bare public id
MATCHED_BY_CHAIN = MatchRule.CHAIN
MATCHED_BY_EMAIL = MatchRule.EMAIL
# Matches by the booking link's own reference: they outrank a booking's earlier binding.
BY_REFERENCE = frozenset({MATCHED_BY_LINK, MATCHED_BY_METADATA})


def match_application(cohort, event):
    """Find the application `event` is about, within `cohort`.

    Tries, in order: the booking link's reference (`event.application_id`, whatever
    the provider: Cal.com's metadata, Calendly's utm_content, Cronofy's
    correlation_id) when it is a valid signed ref for this cohort (links.check_ref)
    or an old link's bare public id, and names an application of this cohort
    (numeric pks and tampered or foreign refs are ignored); a booking chain we
    already know (`uid`, `rescheduleUid`, `iCalUID`, the seat's attendee; the
    booking's own uid first); the booker's email against contact and alternate
    emails. Returns (Application, how) with how a MatchRule value
    ("link", "public_id", "chain" or "email"); or (None, reason) with an
    OrphanedInterview.Reason value ("no_match" or "ambiguous").
    """
    applications = Application.objects.filter(cohort=cohort)
    ref = links.check_ref(cohort, event.application_id)
    if ref.kind in ("signed", "bare"):
        found = applications.filter(public_id=ref.public_id).first()
        if found is not None:
            return found, MATCHED_BY_LINK if ref.kind == "signed" else MATCHED_BY_METADATA

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
