"""The quick start's demo, as `make run` loads it (DEBUG on: seed_demo refuses to run otherwise)."""

from django.core.management import call_command
from django.test import override_settings


def seed_quick_start_demo(*args, **options):
    """Run `seed_demo` with DEBUG on (pytest-django turns it off), passing `args` and `options` through."""
    with override_settings(DEBUG=True):
        call_command("seed_demo", *args, **options)
