"""The Celery app; configuration comes from Django settings (CELERY_* names)."""

import logging
import os

from celery import Celery
from celery.worker.consumer import Consumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cohortos.settings")

logger = logging.getLogger(__name__)


class BrokerLossConsumer(Consumer):
    """Celery's worker consumer, made to survive losing Redis while it holds an unacked message.

    Celery 5.7 (PR #10242, commit feb789a, "prevent graceful shutdown regression in
    connection recovery") closes the broken connection after `collect()` has
    already detached kombu's transport from it (`transport.client = None`). Closing
    the channel still holding an unacknowledged message (an alert waiting out its
    countdown) then makes kombu's redis QoS restore it through that transport, and
    `Channel._connparams` fails on `None.hostname`: an AttributeError neither
    `ignore_errors` nor `maybe_close_channel` catches, so the worker logged
    "Unrecoverable error" and exited (tests/test_worker_outage.py). The broker is
    gone at that moment, so nothing can be restored anyway: the redis transport
    redelivers unacked messages after its visibility timeout, and orphan alerts
    have the beat sweep. Here the failed close is logged and the consumer goes on
    reconnecting, as it does when no message is held.
    """

    def on_connection_error_after_connected(self, exc):
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_detached():
                try:
                    close()
                except AttributeError:
                    logger.warning("Closing the lost broker connection failed (kombu had detached it); "
                                   "reconnecting anyway", exc_info=True)

            connection.close = close_detached  # what the base method calls, through ignore_errors
        super().on_connection_error_after_connected(exc)


app = Celery("cohortos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
