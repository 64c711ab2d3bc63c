from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value, now=None):
    """Return "3 days ago" with only the largest unit ("1 month ago", not "1 month, 1 week ago")."""
    if not value:
        return ""
    now = now or timezone.now()
    if (now - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value, now, depth=1)} ago"


@register.filter
def their_time(value, zone_name):
    """Return `value` in the IANA zone `zone_name`: "19:00 Asia/Tokyo", with the day when it differs
    from the day in the active zone ("Wed 4 Mar, 03:00 Asia/Tokyo"); "" when either is missing."""
    from ..models import time_zone_or_utc

    if not value or not zone_name:
        return ""
    theirs = value.astimezone(time_zone_or_utc(zone_name))
    ours = timezone.localtime(value)
    if theirs.date() == ours.date():
        return f"{theirs:%H:%M} {zone_name}"
    return f"{theirs:%a} {theirs.day} {theirs:%b}, {theirs:%H:%M} {zone_name}"
