"""Strict little readers for provider JSON, shared by every provider's parse module.

Each raises scheduling.events.ParseError with a sentence naming the field (its dotted
path in the body), which the webhook answers as a 400.
"""

import json
from datetime import datetime, timezone

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from scheduling.events import MAX_INT, ParseError

_url = URLValidator(schemes=["http", "https"])


def load_object(body):
    """Return `body` (bytes) decoded as a JSON object (dict); raise ParseError otherwise."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ParseError("Body is not UTF-8 encoded JSON.") from None
    except RecursionError:
        raise ParseError("Body is nested too deeply.") from None
    except ValueError as exc:
        raise ParseError(f"Body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ParseError(f"Body must be a JSON object, not {json_type(data)}.")
    return data


def json_type(value):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def path(where, key):
    return f"{where}.{key}" if where else key


def clean(text):
    """Return `text` stripped, without NUL characters and with lone surrogates as U+FFFD.

    PostgreSQL text holds neither. JSON can escape a lone surrogate (`\\ud83d`, half an
    emoji cut by a JavaScript slice); kept as is, the row could not be stored at all.
    """
    text = text.replace("\x00", "")
    if not text.isascii():
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.strip()


def text(obj, key, where="", *, lenient=False, limit=None):
    """Return obj[key] stripped (cut to `limit`), "" when absent or null; a non-string
    raises ParseError unless lenient (numbers are then read as text)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and lenient:
        value = str(value)
    if not isinstance(value, str):
        if lenient:
            return ""
        raise ParseError(f"{path(where, key)} must be a string, not {json_type(value)}.")
    value = clean(value)
    return value[:limit] if limit else value


def bounded_int(obj, key, where="", *, low=0, high=MAX_INT, lenient=False):
    """Return obj[key] as an int in [low, high], None when absent or null.

    A digit string counts. A number out of range raises ParseError naming the
    field: we store it, and an out-of-range value would fail the database write on
    every retry (issue 11). Anything that is not a number raises too, or is
    ignored (None) when `lenient`.
    """
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
        value = int(value.strip()) if len(value.strip()) < 40 else high + 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        if lenient:
            return None
        raise ParseError(f"{path(where, key)} must be an integer, not {json_type(value)}.")
    if not low <= value <= high:
        raise ParseError(f"{path(where, key)} is out of range: it must be between {low} and {high}.")
    return value


def parse_time(value):
    """Return the ISO-8601 string `value` as an aware UTC datetime; raise ValueError if it is not one."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset")
    return parsed.astimezone(timezone.utc)


def time(obj, key, where="", *, required):
    """Return obj[key] as an aware UTC datetime, None when absent and not required."""
    if not isinstance(obj, dict) or key not in obj or obj[key] is None:
        if required:
            raise ParseError(f"Missing {path(where, key)}.")
        return None
    try:
        return parse_time(obj[key])
    except (ValueError, OverflowError):
        shown = json.dumps(obj[key])[:60]
        raise ParseError(
            f"{path(where, key)} is not an ISO-8601 time with a UTC offset: {shown}."
        ) from None


def clean_email(value):
    """Return `value` as a lower-cased valid email, or "" when it is not one."""
    if not isinstance(value, str):
        return ""
    value = clean(value).lower()
    if len(value) > 254:  # RFC 5321's limit, and our column's
        return ""
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value


def is_url(value):
    """Return True when `value` is an http(s) URL of at most 500 characters."""
    if not isinstance(value, str) or len(value) > 500:
        return False
    try:
        _url(value.strip())
    except ValidationError:
        return False
    return True


def one_line(value, limit):
    """Return `value` (any JSON) as one line of text of at most `limit` characters ("" if empty)."""
    if isinstance(value, list):
        value = ", ".join(one_line(v, limit) for v in value if one_line(v, limit))
    elif isinstance(value, dict):
        if "value" in value:  # Cal.com's {value, optionValue} answers
            return one_line(value["value"], limit)
        value = ", ".join(f"{k}: {one_line(v, limit)}" for k, v in value.items() if one_line(v, limit))
    if isinstance(value, bool):
        value = "yes" if value else "no"
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return ""
    return " ".join(clean(value).split())[:limit]
