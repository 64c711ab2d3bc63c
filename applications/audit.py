"""The audit trail's plumbing: admin and script edits onto the timeline, and history snapshots.

django-simple-history writes a historical row on every `save()` (the Django
admin, management commands, the shell). `record_edit` turns an Application's
"changed" row into a timeline entry with old → new values. Domain services that
write with conditional UPDATEs (no save, so no history) call `snapshot` after
their UPDATE to keep the history complete.
"""

from django.utils import timezone
from simple_history.models import HistoricalRecords
from simple_history.utils import get_history_manager_for_model

# Columns the schedule sync and move_to own; an edit touching only these is theirs, not an admin's.
DERIVED = frozenset({"updated_at", "current_stage"})


def snapshot(instance, *, user=None, reason=""):
    """Write a history row of `instance` as it is now stored (re-read), by `user`, saying `reason`.

    For changes made with `QuerySet.update()`, which simple-history does not see.
    Returns the historical row.
    """
    model = type(instance)
    current = model.objects.get(pk=instance.pk)
    history = get_history_manager_for_model(model).model
    attrs = {
        field.attname: getattr(current, field.attname)
        for field in history._meta.fields
        if not field.name.startswith("history_") and hasattr(current, field.attname)
    }
    return history.objects.create(
        history_date=timezone.now(), history_type="~", history_change_reason=reason[:100] or None,
        history_user=user if getattr(user, "is_authenticated", False) else None, **attrs,
    )


def _where():
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None:
        return "a command or script"
    return "the Django admin" if request.path.startswith("/admin/") else "the app"


def _value(field, value):
    if value in (None, ""):
        return ""
    if field.is_relation:
        related = field.related_model.objects.filter(pk=value).first()
        return str(related) if related is not None else f"#{value}"
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def record_edit(sender, history_instance, **kwargs):
    """post_create_historical_record receiver: put an Application edit on its timeline.

    Only "changed" rows (history_type "~") with a previous row to compare with, and
    only fields a person edits (not the derived columns). Records old → new as text.
    """
    from .models import Application
    from .timeline import record

    if history_instance.history_type != "~" or history_instance.instance_type is not Application:
        return
    previous = history_instance.prev_record
    if previous is None:
        return
    delta = history_instance.diff_against(previous)
    changes = []
    for change in delta.changes:
        if change.field in DERIVED:
            continue
        field = Application._meta.get_field(change.field)
        changes.append([str(field.verbose_name).capitalize(), _value(field, change.old),
                        _value(field, change.new)])
    if changes:
        record(history_instance.id, "edit", at=history_instance.history_date,
               user=history_instance.history_user, changes=changes, where=_where())
