"""A durable disk spool for verified webhook bodies that arrive while the database is down.

Cal.com sends each webhook once and drops it on any non-2xx answer (PROTOCOL.md §6), so
a 503 during a database outage loses the booking. Instead the webhook view writes the
raw body, its signature header, the provider and the webhook key here and answers
202; the drain (`drain_spool`, run every minute by beat and by `manage.py
drain_webhook_spool`) later feeds each file through the normal store → apply path.

Layout under WEBHOOK_SPOOL_DIR:
- `tmp/`: files being written (never read);
- `ready/`: complete files, one JSON object each, named so that sorting by name is
  arrival order;
- `claimed/`: files a drainer took by an atomic rename (the loser of a race gets
  FileNotFoundError and skips the file), deleted once their row is committed;
- `dead/`: files that can never be imported (the cohort's webhook key no longer
  exists), kept for an admin.

Exactly once: a file is deleted only after its delivery row is committed, and a
second import of the same body is a duplicate by the row's sha256 unique key.
"""

import base64
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

# A claim older than this belongs to a drainer that died mid-file: the file goes back to ready/.
STALE_CLAIM_SECONDS = 600


class SecretCache:
    """Per-process memory of webhook key → signing secrets, read while the database was up.

    While the database is unreachable the view cannot look the cohort up, but it
    can still verify a body against the secret it read less than
    WEBHOOK_SECRET_CACHE_SECONDS ago, and spool it. Entries are refreshed on every
    successful lookup (so a rotated secret replaces the old one at once) and
    dropped when the key is unknown.
    """

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}

    def remember(self, webhook_key, secret):
        """Record that `webhook_key`'s deliveries are signed with `secret` (see secrets_of) as of now."""
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES and webhook_key not in self._entries:
                self._entries.pop(next(iter(self._entries)))  # the oldest insertion
            self._entries[webhook_key] = (secret, time.monotonic())

    def forget(self, webhook_key):
        """Drop `webhook_key` (its cohort is gone or its key rotated)."""
        with self._lock:
            self._entries.pop(webhook_key, None)

    def get(self, webhook_key):
        """Return the secret remembered for `webhook_key` within the TTL, else None."""
        with self._lock:
            entry = self._entries.get(webhook_key)
        if entry is None or time.monotonic() - entry[1] > settings.WEBHOOK_SECRET_CACHE_SECONDS:
            return None
        return entry[0]

    def clear(self):
        with self._lock:
            self._entries.clear()
        _last_warm[0] = 0.0


secret_cache = SecretCache()
_last_warm = [0.0]
# What the providers' signature checks read from a cohort (scheduling/views.py).
SECRET_FIELDS = ("webhook_secret", "calendly_signing_key", "cronofy_client_secret")


def secrets_of(cohort):
    """Return the cohort's signing secrets as an object with SECRET_FIELDS attributes (no ORM)."""
    return SimpleNamespace(**{name: getattr(cohort, name) for name in SECRET_FIELDS})


def warm_secret_cache(every=None):
    """Remember every cohort's webhook key and secret in this process (one query).

    So a process that has not yet served a given cohort can still verify its
    bodies during an outage. Called when a process starts (cohortos/wsgi.py) and
    by the webhook view at most once per `every` seconds. Never raises: a
    database error is logged and the cache stays as it was. Returns how many keys.
    """
    from django.db import DatabaseError

    from applications.models import Cohort

    now = time.monotonic()
    if every is not None and now - _last_warm[0] < every:
        return 0
    # Counted as a try even when it fails: during an outage each webhook would otherwise wait
    # for a connection timeout here before meeting the outage again.
    _last_warm[0] = now
    try:
        rows = list(Cohort.objects.values_list("webhook_key", *SECRET_FIELDS)[:SecretCache.MAX_ENTRIES])
    except DatabaseError as exc:
        logger.warning("Could not read the webhook secrets to cache them (%s)", exc)
        return 0
    for key, *secrets in rows:
        secret_cache.remember(key, SimpleNamespace(**dict(zip(SECRET_FIELDS, secrets))))
    return len(rows)


class SpoolFull(Exception):
    """The spool holds WEBHOOK_SPOOL_MAX_FILES files or WEBHOOK_SPOOL_MAX_BYTES bytes already."""


@dataclass(frozen=True)
class SpooledDelivery:
    """One spooled body: `provider` ("calcom", …), `webhook_key`, raw `body` bytes, `signature`
    (the signature header as received, or ""), and `spooled_at` (aware UTC)."""

    provider: str
    webhook_key: str
    body: bytes
    signature: str
    spooled_at: object


def spool_dir():
    """Return the spool's root directory (a Path), creating its sub-directories."""
    root = Path(settings.WEBHOOK_SPOOL_DIR)
    for sub in ("tmp", "ready", "claimed", "dead"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


_counter_lock = threading.Lock()
_counter = 0


def _next_name():
    """Return a unique file name that sorts in arrival order (time in ns, pid, a counter)."""
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return f"{time.time_ns():020d}-{os.getpid()}-{n:08d}.json"


def _usage(root):
    count = size = 0
    for sub in ("ready", "claimed"):
        with os.scandir(root / sub) as entries:
            for entry in entries:
                try:
                    size += entry.stat().st_size
                    count += 1
                except FileNotFoundError:
                    pass  # drained meanwhile
    return count, size


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def spool_delivery(provider, webhook_key, body, signature):
    """Write one verified body to the spool durably; return the Path of the ready file.

    `body` is the raw request bytes, `signature` the signature header value. The
    file is written to tmp/, fsynced, renamed into ready/ (atomic on one file
    system) and the directory fsynced, so after a return the body survives a
    crash. Raises SpoolFull when the spool is at its file-count or byte bound
    (settings WEBHOOK_SPOOL_MAX_FILES / WEBHOOK_SPOOL_MAX_BYTES), OSError when the
    disk refuses the write.
    """
    root = spool_dir()
    record = json.dumps({
        "provider": provider,
        "webhook_key": webhook_key,
        "signature": signature or "",
        "spooled_at": timezone.now().isoformat(),
        "body": base64.b64encode(body).decode("ascii"),
    }).encode()
    count, size = _usage(root)
    if count >= settings.WEBHOOK_SPOOL_MAX_FILES or size + len(record) > settings.WEBHOOK_SPOOL_MAX_BYTES:
        raise SpoolFull(f"{count} files, {size} bytes")
    name = _next_name()
    temporary, final = root / "tmp" / name, root / "ready" / name
    try:
        with open(temporary, "xb") as handle:
            handle.write(record)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(root / "ready")
    return final


def read_spooled(path):
    """Return the SpooledDelivery stored in file `path`; raises ValueError for a corrupt file."""
    data = json.loads(Path(path).read_bytes())
    return SpooledDelivery(
        provider=data["provider"], webhook_key=data["webhook_key"],
        body=base64.b64decode(data["body"], validate=True), signature=data.get("signature", ""),
        spooled_at=data.get("spooled_at"),
    )


def pending_count():
    """Return how many spooled files wait to be imported (ready plus claimed)."""
    root = Path(settings.WEBHOOK_SPOOL_DIR)
    if not (root / "ready").is_dir():
        return 0
    return _usage(root)[0]


def dead_count():
    """Return how many spooled files could not be imported and wait for an admin in dead/."""
    dead = Path(settings.WEBHOOK_SPOOL_DIR) / "dead"
    return sum(1 for _ in dead.iterdir()) if dead.is_dir() else 0


def _claim(root, name):
    """Move ready/`name` to claimed/; return the claimed Path, or None if another drainer won."""
    claimed = root / "claimed" / name
    try:
        os.rename(root / "ready" / name, claimed)
    except FileNotFoundError:
        return None
    return claimed


def _release_stale_claims(root):
    cutoff = time.time() - STALE_CLAIM_SECONDS
    for path in (root / "claimed").iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                os.rename(path, root / "ready" / path.name)
                logger.warning("Spool file %s was claimed by a drainer that stopped; released", path.name)
        except FileNotFoundError:
            pass


@dataclass
class DrainReport:
    """What one drain did: files imported (by outcome), left for later, moved to dead/."""

    imported: dict
    left: int = 0
    dead: int = 0
    stopped: str = ""

    @property
    def total(self):
        return sum(self.imported.values())

    def summary(self):
        """Return a sentence: "Imported 3 (2 applied, 1 duplicate); 0 left."."""
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.imported.items()))
        text = f"Imported {self.total}" + (f" ({parts})" if parts else "") + f"; {self.left} left"
        if self.dead:
            text += f"; {self.dead} moved to dead/ (unknown webhook key)"
        if self.stopped:
            text += f"; stopped: {self.stopped}"
        return text + "."


def drain_spool(limit=None):
    """Import spooled bodies, oldest first, through the provider's normal receive path.

    Each file is claimed by an atomic rename (so two drainers never import the
    same file at once), imported, and deleted only after its row is committed.
    When the database is still unreachable the claimed file goes back to ready/
    and the drain stops (the next run tries again). A file whose webhook key
    matches no cohort moves to dead/. Returns a DrainReport.
    """
    from django.db import InterfaceError, OperationalError

    from .ingest import receive_spooled

    root = spool_dir()
    _release_stale_claims(root)
    report = DrainReport(imported={})
    names = sorted(os.listdir(root / "ready"))
    for index, name in enumerate(names):
        if limit is not None and report.total >= limit:
            report.left = len(names) - index
            break
        claimed = _claim(root, name)
        if claimed is None:
            continue
        try:
            spooled = read_spooled(claimed)
        except (ValueError, KeyError, OSError) as exc:
            logger.error("Spool file %s is unreadable (%s); moved to dead/", name, exc)
            os.rename(claimed, root / "dead" / name)
            report.dead += 1
            continue
        try:
            outcome = receive_spooled(spooled)
        except KeyError:
            logger.error("Spool file %s is for provider %r, which this version does not know; moved to dead/",
                         name, spooled.provider)
            os.rename(claimed, root / "dead" / name)
            report.dead += 1
            continue
        except (OperationalError, InterfaceError) as exc:
            os.rename(claimed, root / "ready" / name)
            report.left = len(names) - index
            report.stopped = f"database unavailable ({type(exc).__name__})"
            break
        if outcome is None:
            logger.error("Spool file %s names an unknown webhook key; moved to dead/", name)
            os.rename(claimed, root / "dead" / name)
            report.dead += 1
            continue
        # The row is committed (autocommit outside any transaction): the file has done its job.
        claimed.unlink()
        report.imported[outcome] = report.imported.get(outcome, 0) + 1
    _fsync_dir(root / "claimed")
    return report
