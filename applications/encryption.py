"""Encryption at rest for secrets kept in model fields (Cohort.calcom_api_key).

Fernet (the `cryptography` package: AES-128-CBC + HMAC-SHA256, with a timestamp)
under the keys in FIELD_ENCRYPTION_KEY, newest first; older keys still decrypt, so a
key is rotated by putting a new one in front and re-saving. Without the setting, one
key is derived from SECRET_KEY (and `check --deploy` warns, applications.W001): a
database dump alone then still reveals nothing, but a leaked SECRET_KEY does.
"""

import base64
import hashlib
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import checks
from django.db import models

logger = logging.getLogger(__name__)

# Stored values start with this, so a plain value (written before encryption, or by hand)
# is recognised rather than fed to Fernet.
PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(keys, secret_key):
    if not keys:
        digest = hashlib.sha256(f"cohortos field encryption:{secret_key}".encode()).digest()
        keys = (base64.urlsafe_b64encode(digest).decode(),)
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet():
    """Return the MultiFernet for the configured keys (FIELD_ENCRYPTION_KEY, else from SECRET_KEY)."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEY), settings.SECRET_KEY)


def encrypt(text):
    """Return `text` (str) encrypted as "fernet:<token>"; "" stays "" (no secret stored)."""
    if not text:
        return ""
    return PREFIX + fernet().encrypt(text.encode()).decode()


def decrypt(stored):
    """Return the plain text of a stored value; "" when it is empty or cannot be decrypted.

    A value that cannot be decrypted (the key it was written with is gone from
    FIELD_ENCRYPTION_KEY) is logged and read as "": the secret must be entered again.
    """
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        return stored
    try:
        return fernet().decrypt(stored[len(PREFIX):].encode()).decode()
    except (InvalidToken, ValueError):
        logger.error("An encrypted field cannot be decrypted with FIELD_ENCRYPTION_KEY; enter it again")
        return ""


class EncryptedTextField(models.TextField):
    """A TextField stored encrypted (see module docstring); the attribute holds the plain text."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value is not None else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value


@checks.register(checks.Tags.security, deploy=True)
def check_field_encryption_key(app_configs, **kwargs):
    """Warn (applications.W001) when FIELD_ENCRYPTION_KEY is not set or not a valid Fernet key."""
    keys = settings.FIELD_ENCRYPTION_KEY
    if not keys:
        return [checks.Warning(
            "FIELD_ENCRYPTION_KEY is not set: stored Cal.com API keys are encrypted with a key "
            "derived from SECRET_KEY.",
            hint="Set FIELD_ENCRYPTION_KEY to the output of `python -c \"from cryptography.fernet "
                 "import Fernet; print(Fernet.generate_key().decode())\"` and keep it out of the database.",
            id="applications.W001",
        )]
    try:
        for key in keys:
            Fernet(key.encode())
    except ValueError:
        return [checks.Error(
            "FIELD_ENCRYPTION_KEY holds a value that is not a Fernet key (32 url-safe base64 bytes).",
            id="applications.E001",
        )]
    return []
