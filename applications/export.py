"""Export CSV of the Applications tab: the filtered list, streamed row by row."""

import csv
from datetime import timezone as dt_timezone

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse

from scheduling.status import Stage, Status

from .models import Application
from .pipeline import pipeline_state

COLUMNS = [
    "public_id", "applicant_name", "contact_email", "status", "stage", "pipeline", "pipeline_note",
    "interview_start_utc", "interview_start_local", "interview_end_utc", "local_time_zone",
    "meeting_url", "in_status_since_utc", "updated_at_utc", "invited_at_utc",
]
# Read in slices of this many rows (a server-side cursor on PostgreSQL), so memory stays flat,
# and send them in pieces of LINES lines (one write per row costs more than the row).
CHUNK = 2000
LINES = 200
# A cell starting with one of these is a formula to a spreadsheet: written as text instead.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def with_invited_at(applications):
    """Annotate `invited_at`: the first invitation (issue 8) made since the row entered its status, or None.

    A correlated subquery through the reverse relation (this app imports none of
    scheduling's modules), evaluated per streamed row.
    """
    invitations = Application._meta.get_field("invitations").related_model.objects.filter(
        application=OuterRef("pk"), kind="invitation",
        created_at__gte=Coalesce(OuterRef("status_changed_at"), OuterRef("created_at")),
    ).order_by("created_at").values("created_at")[:1]
    return applications.annotate(invited_at=Subquery(invitations))


class _Echo:
    """A file-like object whose write returns what it is given (Django's streaming CSV recipe)."""

    def write(self, value):
        return value


def _utc(value):
    return value.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z") if value else ""


def _text(value):
    value = str(value or "")
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_rows(applications, *, now, overdue_days, tz):
    """Yield the CSV (str pieces of up to LINES lines): the header, then a line per application.

    `applications` is a queryset (filtered and ordered); `now` (aware),
    `overdue_days` and `tz` (the viewer's tzinfo) as for pipeline_state.
    Interview times are ISO 8601 in UTC ("…Z") and in `tz` (with its offset).
    """
    writer = csv.writer(_Echo())
    lines = [writer.writerow(COLUMNS)]
    for a in applications.iterator(chunk_size=CHUNK):
        state = pipeline_state(a, now=now, overdue_days=overdue_days, tz=tz)
        start = a.interview_start
        lines.append(writer.writerow([
            a.public_id, _text(a.applicant_name), _text(a.contact_email), Status(a.status).label,
            Stage(a.current_stage).label, state.label if state.key != "none" else "", _text(state.note),
            _utc(start), start.astimezone(tz).isoformat() if start else "", _utc(a.interview_end),
            str(tz), _text(a.interview_meeting_url), _utc(a.status_since), _utc(a.updated_at),
            _utc(a.invited_at),
        ]))
        if len(lines) >= LINES:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def csv_response(applications, *, filename, now, overdue_days, tz):
    """Return a StreamingHttpResponse of `csv_rows(...)` as an attachment named `filename`."""
    response = StreamingHttpResponse(
        csv_rows(with_invited_at(applications), now=now, overdue_days=overdue_days, tz=tz),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
