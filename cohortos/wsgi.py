import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cohortos.settings")
application = get_wsgi_application()

# Each server process learns every cohort's webhook secret as it starts, so it can verify and
# spool deliveries during a database outage even for a cohort it has not served yet.
from django.db import connections  # noqa: E402

from scheduling.spool import warm_secret_cache  # noqa: E402

warm_secret_cache()
connections.close_all()  # the start-up thread's connection; request threads open their own
