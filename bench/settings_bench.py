"""Settings for benchmarks only: the app's own settings plus a bench urlconf with the floor view.

Production URLs are untouched; gunicorn selects this module through
DJANGO_SETTINGS_MODULE=bench.settings_bench in bench/webhook_throughput.py.
"""

from cohortos.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_bench"
