"""Which application a booking event is about: the link's reference, the booking chain, the email."""

from datetime import datetime, timezone

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
EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def booking_chain(cohort, event, *, limit=50):
    """Return the stored bookings of `event`'s chain in `cohort`, whoever owns them (a list).

    The chain is its `uid`, the booking it replaced (`rescheduleUid`), those that
    replaced it and those sharing its `iCalUID`, for the event's seat
    (Booking.objects.of_event). Read once per apply: matching takes its owner,
    adoption its unmatched ones. `limit` bounds a pathological chain.
    """
    return list(Booking.objects.of_event(event).filter(cohort=cohort).order_by("-pk")[:limit])


def match_application(cohort, event, *, chain=None):
    """Find the application `event` is about, within `cohort`, and lock it (select_for_update).

    Tries, in order: the booking link's reference (`event.application_id`, whatever
    the provider: Cal.com's metadata, Calendly's utm_content, Cronofy's
    correlation_id) when it is a valid signed ref for this cohort (links.check_ref)
    or an old link's bare public id, and names an application of this cohort
    (numeric pks and tampered or foreign refs are ignored); a booking chain we
    already know (`uid`, `rescheduleUid`, `iCalUID`, the seat's attendee; the
    booking's own uid first, then the newest); the booker's email against contact
    and alternate emails. `chain` is `booking_chain(cohort, event)` when the caller
    has it. Returns (Application, how) with how a MatchRule value
    ("link", "public_id", "chain" or "email"); or (None, reason) with an
    OrphanedInterview.Reason value ("no_match" or "ambiguous"). Run inside a
    transaction.
    """
    applications = Application.objects.filter(cohort=cohort)
    ref = links.check_ref(cohort, event.application_id)
    if ref.kind in ("signed", "bare"):
        found = applications.select_for_update().filter(public_id=ref.public_id).first()
        if found is not None:
            return found, MATCHED_BY_LINK if ref.kind == "signed" else MATCHED_BY_METADATA

    owned = [b for b in (booking_chain(cohort, event) if chain is None else chain) if b.application_id]
    if owned:
        known = max(owned, key=lambda b: (b.uid == event.uid, b.last_event_at is not None,
                                          b.last_event_at or EPOCH, b.pk))
        return applications.select_for_update().get(pk=known.application_id), MATCHED_BY_CHAIN

    # Both matches are locked: with two, neither is used, and the locks end with the transaction.
    by_email = list(Application.objects.with_email(event.email, cohort=cohort).select_for_update().order_by("pk")[:2])
    if len(by_email) == 1:
        return by_email[0], MATCHED_BY_EMAIL
    if len(by_email) > 1:
        return None, OrphanedInterview.Reason.AMBIGUOUS
    return None, OrphanedInterview.Reason.NO_MATCH
