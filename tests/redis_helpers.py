"""A throwaway redis-server for tests that take the broker down (never the shared one)."""

import shutil
import signal
import socket
import subprocess
import time

import pytest
from django.db import connections


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayRedis:
    """A redis-server of our own on a free loopback port, to stop and start at will."""

    def __init__(self):
        self.port = _free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("throwaway redis-server did not start")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was paused
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def pause(self):
        """Freeze the server (SIGSTOP): connections hang instead of being refused."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def is_up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                return True
        except OSError:
            return False


def reset_publisher_pool(app):
    """Drop Celery's pooled broker connections and the publish breaker: the next publish connects afresh.

    `app.pool.force_close_all()` alone leaves kombu's registry holding the closed pool
    for the same URL: the next publish then fails with "Acquire on closed pool".
    """
    from kombu import pools

    from orphans.tasks import broker_breaker

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    broker_breaker.reset()


@pytest.fixture
def throwaway_broker(settings):
    """Yield a ThrowawayRedis serving as Celery's broker (tasks really published); always stopped afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    from cohortos.celery import app

    redis = ThrowawayRedis()
    redis.start()
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    settings.REDIS_URL = settings.CELERY_BROKER_URL = redis.url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.update(broker_url=redis.url, task_always_eager=False)
    reset_publisher_pool(app)
    # Worker threads and the test share PostgreSQL: no connection may outlive its use.
    max_age = connections["default"].settings_dict["CONN_MAX_AGE"]
    connections["default"].settings_dict["CONN_MAX_AGE"] = 0
    try:
        yield redis
    finally:
        redis.stop()
        app.conf.update(saved)
        reset_publisher_pool(app)
        connections["default"].settings_dict["CONN_MAX_AGE"] = max_age
