"""One timeline per application: every change, in sentences, in the viewer's time zone.

Two tables feed it: `StatusChange` (written by `Application.move_to`) and
`TimelineEntry` (everything else: booking events, matches and unmatches, bookings
moved between applications, edits made in the Django admin or anywhere else that
saves the row). `page(application, number)` pages through both at once with one
UNION query, newest first.

Adding a source (invitations, applicant confirmations, sync drift…) takes two calls
and nothing else:

    from applications import timeline

    @timeline.renderer("invitation_sent")
    def _(entry, tz):
        return f"Invited to book {entry.data['round']} ({entry.data['email']})."

    timeline.record(application, "invitation_sent", user=user, round="Round 1", email=…)

A renderer gets the entry and the viewer's ZoneInfo and returns one sentence;
`when(iso_text, tz)` formats a stored time. `data` must be JSON: store datetimes
with `iso(dt)`. A kind without a renderer reads "<kind> (…)", never an error.

A source that already keeps its own table (scheduling's ScheduleChange and
Invitation) joins the same UNION instead of copying rows: `source(code, rows=…,
items=…)` (see its docstring), registered from the app's `AppConfig.ready`.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connection, models
from django.db.models import F, Value
from django.utils import timezone

PAGE_SIZE = 50

_RENDERERS = {}
_SOURCES = {}


class TimelineEntry(models.Model):
    """One thing that happened to an application, other than a status change (see StatusChange)."""

    application = models.ForeignKey(
        "applications.Application", models.PROTECT, related_name="timeline_entries"
    )
    at = models.DateTimeField(default=timezone.now, help_text="When it happened (aware UTC).")
    kind = models.CharField(max_length=40)
    # Facts only (times as ISO text): the sentence is written at read time, in the reader's zone.
    data = models.JSONField(default=dict, blank=True)
    delivery = models.ForeignKey(
        "scheduling.WebhookDelivery", models.PROTECT, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["application", "-at", "-id"], name="timeline_application_at")]

    def __str__(self):
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}"


def renderer(kind):
    """Register the decorated `fn(entry, tz) -> str` as the sentence for entries of `kind`."""

    def register(fn):
        _RENDERERS[kind] = fn
        return fn

    return register


def iso(value):
    """Return an aware datetime as ISO text for `data` (None stays None)."""
    return value.astimezone(UTC).isoformat() if value else None


def when(text, tz, *, with_year=True):
    """Return stored ISO `text` as "Tue 3 Mar 2026, 10:00 CET" in `tz` ("an unknown time" if empty)."""
    if not text:
        return "an unknown time"
    moment = datetime.fromisoformat(text).astimezone(tz)
    day = f"{moment:%a} {moment.day} {moment:%b}" + (f" {moment.year}" if with_year else "")
    return f"{day}, {moment:%H:%M} {moment.tzname()}"


def record(application, kind, *, at=None, user=None, delivery=None, **data):
    """Append an entry of `kind` to `application`'s timeline and return it.

    `at` is when it happened (aware; default now), `user` who did it, `delivery`
    the WebhookDelivery that brought it; `data` the facts the kind's renderer
    reads (JSON values; datetimes through `iso`).
    """
    return TimelineEntry.objects.create(
        application_id=getattr(application, "pk", application), kind=kind, at=at or timezone.now(),
        user=user if getattr(user, "is_authenticated", False) else None, delivery=delivery, data=data,
    )


def sentence(entry, tz):
    """Return `entry`'s sentence for a reader in `tz`."""
    fn = _RENDERERS.get(entry.kind)
    if fn is None:
        return f"{entry.kind.replace('_', ' ').capitalize()}."
    return fn(entry, tz)


def source(code, *, rows, items):
    """Register another table as timeline lines, read in the same UNION as the core ones.

    `code`: a short unique tag (not "s" or "e"). `rows(application)` returns a
    queryset with exactly the columns ("src", "key", "at") (src = Value(code),
    key = the row's pk, at = when it happened) and no ordering. `items(pks, tz)`
    returns {pk: Item} for those rows (one query), sentences in ZoneInfo `tz`.
    """
    if code in ("s", "e"):
        raise ValueError("Timeline source codes 's' and 'e' are taken.")
    _SOURCES[code] = (rows, items)


class Item:
    """One line of the timeline as the page shows it."""

    def __init__(self, at, text, *, kind, user=None, delivery_id=None, trigger=""):
        self.at, self.text, self.kind = at, text, kind
        self.user, self.delivery_id, self.trigger = user, delivery_id, trigger


def page(application, number, tz, *, per_page=PAGE_SIZE):
    """Return (Paginator page, [Item]) of `application`'s timeline, newest first, in `tz`.

    One UNION query for the page's keys and one COUNT, then one query per source
    for the page's rows: a fixed number of queries at any length.
    """
    from .models import StatusChange

    columns = ("src", "key", "at")
    changes = StatusChange.objects.filter(application=application).annotate(
        src=Value("s"), key=F("pk"), at=F("created_at")).order_by().values_list(*columns)
    entries = TimelineEntry.objects.filter(application=application).annotate(
        src=Value("e"), key=F("pk")).order_by().values_list(*columns)
    parts = [changes, entries, *(rows(application) for rows, _ in _SOURCES.values())]
    paginator = Paginator(parts[0].union(*parts[1:], all=True).order_by("-at", "-key"), per_page)
    # One COUNT per source, each answered from its (application, at) index, summed in one
    # query: counting the UNION itself would build the whole union first.
    paginator.count = _count(parts)
    current = paginator.get_page(number)
    if connection.features.supports_slicing_ordering_in_compound:
        # Each source needs only its newest offset + page rows: a short index scan each, not a
        # sort of every line (PostgreSQL; SQLite refuses LIMIT inside a UNION).
        top = current.number * per_page
        limited = [part.order_by("-at", "-key")[:top] for part in parts]
        union = limited[0].union(*limited[1:], all=True).order_by("-at", "-key")
        current.object_list = union[(current.number - 1) * per_page:top]
    rows = list(current.object_list)
    wanted = {}
    for src, key, _ in rows:
        wanted.setdefault(src, []).append(key)
    wanted.setdefault("s", [])
    wanted.setdefault("e", [])
    found = {}
    for code, (_, items) in _SOURCES.items():
        if wanted.get(code):
            found.update({(code, pk): item for pk, item in items(wanted[code], tz).items()})
    for change in StatusChange.objects.filter(pk__in=wanted["s"]).select_related("user", "delivery").defer(
            "delivery__body"):
        found["s", change.pk] = _status_item(change)
    for entry in TimelineEntry.objects.filter(pk__in=wanted["e"]).select_related("user"):
        found["e", entry.pk] = Item(entry.at, sentence(entry, tz), kind=entry.kind, user=entry.user,
                                    delivery_id=entry.delivery_id)
    return current, [found[src, key] for src, key, _ in rows if (src, key) in found]


def _count(parts):
    """Return the number of rows of all `parts` (querysets) in one query: a sum of COUNTs."""
    selects, params = [], []
    for i, part in enumerate(parts):
        sql, part_params = part.order_by().query.sql_with_params()
        selects.append(f"(SELECT COUNT(*) FROM ({sql}) AS part{i})")
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " + ".join(selects), params)
        return cursor.fetchone()[0]


def _status_item(change):
    text = f"Status: {change.get_old_status_display()} → {change.get_new_status_display()}."
    if change.note:
        text += f" {change.note}"
    trigger = change.delivery.trigger_event if change.delivery_id else ""
    return Item(change.created_at, text, kind="status", user=change.user, delivery_id=change.delivery_id,
                trigger=trigger)


# --- the core kinds ---------------------------------------------------------------------------

TRIGGER_VERBS = {
    "BOOKING_CREATED": "Booked",
    "BOOKING_REQUESTED": "Requested",
    "BOOKING_RESCHEDULED": "Rescheduled",
    "BOOKING_CANCELLED": "Cancelled",
    "BOOKING_REJECTED": "Rejected",
    "MEETING_ENDED": "Held",
}


@renderer("booking")
def _booking(entry, tz):
    d = entry.data
    trigger, start = d.get("trigger", ""), when(d.get("start"), tz)
    by = f" by {d['by']}" if d.get("by") else ""
    reason = f": “{d['reason']}”" if d.get("reason") else "."
    uid = f" (booking {d.get('uid')})" if d.get("uid") else ""
    if trigger == "BOOKING_CREATED":
        return f"Interview booked for {start}{by}{uid}."
    if trigger == "BOOKING_REQUESTED":
        return f"Interview requested for {start}{by}, waiting for the host's confirmation{uid}."
    if trigger == "BOOKING_RESCHEDULED":
        old = f"from {when(d['from_start'], tz)} " if d.get("from_start") else ""
        return f"Interview rescheduled {old}to {start}{by}{uid}."
    if trigger == "BOOKING_CANCELLED":
        if d.get("request_reschedule"):
            return f"The host asked for a new time instead of {start}{by}{reason}"
        return f"Interview of {start} cancelled{by}{reason}"
    if trigger == "BOOKING_REJECTED":
        return f"The host declined the request for {start}{by}{reason}"
    if trigger == "MEETING_ENDED":
        ended = f", ended {when(d['ended_at'], tz)}" if d.get("ended_at") else ""
        return f"Interview of {start} held{ended}{uid}."
    if d.get("detail"):
        return f"Interview of {start}: {d['detail'].rstrip('.')}{by}."
    if trigger in ("BOOKING_NO_SHOW_UPDATED", "AFTER_GUESTS_CAL_VIDEO_NO_SHOW"):
        return f"No-show recorded for the interview of {start}{by}."
    if trigger == "AFTER_HOSTS_CAL_VIDEO_NO_SHOW":
        return f"The interviewer did not join the interview of {start}."
    if trigger == "BOOKING_LOCATION_UPDATED":
        return f"The place of the interview of {start} changed{by}."
    if trigger == "BOOKING_REASSIGNED":
        return f"The interview of {start} was given to another interviewer{by}."
    return f"{TRIGGER_VERBS.get(trigger, trigger)}: interview of {start}{uid}."


@renderer("matched")
def _matched(entry, tz):
    d = entry.data
    text = (f"Orphaned booking of {d.get('email') or 'an unknown email'} for {when(d.get('start'), tz)} "
            f"matched to this application (booking {d.get('uid')}).")
    if d.get("replaced_uid"):
        text += (f" It replaced the interview of {when(d.get('replaced_start'), tz)} (booking "
                 f"{d['replaced_uid']}), which stays booked with the provider until it is cancelled there.")
    return text


@renderer("unmatched")
def _unmatched(entry, tz):
    d = entry.data
    text = (f"Booking {d.get('uid')} for {when(d.get('start'), tz)} unmatched: back among the "
            "orphaned interviews.")
    if d.get("restored_uid"):
        text += f" The interview of {when(d.get('restored_start'), tz)} (booking {d['restored_uid']}) is current again."
    return text


@renderer("booking_moved")
def _booking_moved(entry, tz):
    d = entry.data
    if d.get("direction") == "in":
        return f"Booking {d.get('uid')} for {when(d.get('start'), tz)} moved here from {d.get('other')}."
    return f"Booking {d.get('uid')} for {when(d.get('start'), tz)} moved to {d.get('other')}."


@renderer("edit")
def _edit(entry, tz):
    changes = entry.data.get("changes", [])
    where = entry.data.get("where", "")
    parts = [f"{label}: “{old or '—'}” → “{new or '—'}”" for label, old, new in changes]
    return f"Edited{f' in {where}' if where else ''}: " + "; ".join(parts) + "."
