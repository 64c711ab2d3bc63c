"""Which cohort a webhook URL's key names: a per-process cache for a few seconds.

Every delivery starts by reading its cohort (and, to place the booking in a
round, the cohort's interview rounds). Providers post bursts, so each process
keeps what it read for WEBHOOK_COHORT_CACHE_SECONDS (0 turns the cache off).
Saving or deleting a Cohort or an InterviewRound forgets the cohort in the
process that saved it at once (signals wired in apps.py); other processes forget
it when the few seconds are up. A signature that fails against a cached secret is
checked again against a fresh read, so a rotated secret is accepted everywhere at
once; the old one is refused at once where it was rotated and within the few
seconds elsewhere.
"""

import copy
import threading
import time

from django.conf import settings

from applications.models import Cohort

_entries = {}  # webhook key -> (expires at, time.monotonic() seconds; Cohort with its rounds)
_lock = threading.Lock()


def cohort_for_key(webhook_key, *, fresh=False):
    """Return the Cohort whose `webhook_key` (str) this is, with its rounds read, or None.

    Served from this process's cache unless it is older than
    WEBHOOK_COHORT_CACHE_SECONDS or `fresh` is true. Each caller gets its own copy
    (threads never share an instance). Raises OperationalError/InterfaceError when
    the database is unreachable and the key is not cached.
    """
    ttl = settings.WEBHOOK_COHORT_CACHE_SECONDS
    now = time.monotonic()
    entry = None if fresh or ttl <= 0 else _entries.get(webhook_key)
    if entry is not None and entry[0] > now:
        return copy.copy(entry[1])
    cohort = Cohort.objects.filter(webhook_key=webhook_key).prefetch_related("rounds").first()
    with _lock:
        if cohort is None or ttl <= 0:
            _entries.pop(webhook_key, None)
        else:
            _entries[webhook_key] = (now + ttl, cohort)
    return copy.copy(cohort) if cohort is not None else None


def forget_cohort(cohort_id):
    """Drop cohort `cohort_id` (an int) from this process's cache; return None."""
    with _lock:
        for key in [k for k, (_expires, cohort) in _entries.items() if cohort.pk == cohort_id]:
            del _entries[key]


def forget_all():
    """Empty this process's cache (tests)."""
    with _lock:
        _entries.clear()
