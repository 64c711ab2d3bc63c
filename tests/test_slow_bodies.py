"""Slow bodies against the real stack: Debian's nginx, configured by docker-compose.yml, in front of gunicorn.

Both run on loopback with the compose file's own settings: its nginx `configs` block
and its gunicorn command (3 workers x 4 threads). Twelve connections post to a real
webhook URL and trickle their bodies at 1 KiB/s while the login page is probed every
0.25 s: straight at gunicorn the twelve hold every thread (the control), through
nginx the login page keeps answering in well under a second. Run with -s for figures.
"""

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.db import connection

from .slow_clients import describe, slow_body_attack

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    # In CI (.ci/run installs nginx) a missing nginx fails the test instead of hiding it.
    pytest.mark.skipif(NGINX is None and not os.environ.get("CI"),
                       reason="needs Debian's nginx (apt-get install nginx; .ci/run installs it)"),
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port, process, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def nginx_conf(tmp, port, upstream_port):
    """Return a whole nginx.conf for Debian's nginx around the compose file's `nginx_conf` block."""
    block = compose()["configs"]["nginx_conf"]["content"].replace("$$", "$")  # compose's escape
    block = block.replace("listen 80;", f"listen 127.0.0.1:{port};")
    block = block.replace("server web:8000;", f"server 127.0.0.1:{upstream_port};")
    block = block.replace("/var/log/nginx/access.log", str(tmp / "access.log"))
    assert f"127.0.0.1:{port}" in block and f"127.0.0.1:{upstream_port}" in block, "compose's nginx block changed"
    temp = " ".join(f"{kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"worker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} info;\n"
            f"events {{ worker_connections 512; }}\nhttp {{\n{temp}\n{block}\n}}\n")


def gunicorn_args(port):
    """Return the compose file's gunicorn command, bound to loopback `port`."""
    command = compose()["services"]["web"]["command"]
    gunicorn = re.search(r"gunicorn (.+?)\"?\s*$", command.strip()).group(1).split()
    bind = gunicorn.index("--bind")
    gunicorn[bind + 1] = f"127.0.0.1:{port}"
    return [sys.executable, "-m", "gunicorn", *gunicorn]


@pytest.fixture
def stack(transactional_db, tmp_path):
    """Start gunicorn (production settings, the test database) and nginx in front; yield their ports."""
    gunicorn_port, nginx_port = _free_port(), _free_port()
    database = connection.settings_dict
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1",
           "SECURE_SSL_REDIRECT": "0", "CONN_MAX_AGE": "0", "TRUSTED_PROXY_COUNT": "1",
           "DATABASE_URL": (f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:"
                            f"{database['PORT'] or 5432}/{database['NAME']}")}
    env.pop("REDIS_URL", None)
    gunicorn = subprocess.Popen(gunicorn_args(gunicorn_port), cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gunicorn.log", "wb"))
    (tmp_path / "nginx.conf").write_text(nginx_conf(tmp_path, nginx_port, gunicorn_port))
    nginx = subprocess.Popen([NGINX or "nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                              "-e", str(tmp_path / "error.log"), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "nginx.err", "wb"))
    try:
        _wait_for(gunicorn_port, gunicorn)
        _wait_for(nginx_port, nginx)
        for _ in range(9):  # gunicorn's workers load Django on their first request: not part of a measure
            _raw(gunicorn_port, b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 timeout=60)
        yield {"gunicorn": gunicorn_port, "nginx": nginx_port, "logs": tmp_path}
    finally:
        for process in (nginx, gunicorn):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _raw(port, request, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(request)
        head = sock.recv(200).split(b"\r\n", 1)[0].decode()
        return head, time.monotonic() - started


def test_twelve_slow_bodies_leave_the_login_page_answering_through_nginx(cohort, stack):
    path = cohort.webhook_path()

    direct = slow_body_attack("127.0.0.1", stack["gunicorn"], path)
    time.sleep(2)  # the attackers are gone; gunicorn's threads come back
    proxied = slow_body_attack("127.0.0.1", stack["nginx"], path)
    print("\n" + describe("straight to gunicorn (3x4 threads)", direct))
    print(describe("through nginx", proxied))

    assert proxied["failed"] == 0 and proxied["max_s"] < 1.0, describe("through nginx", proxied)
    # The control: without the proxy the same attack holds every thread (else it proves nothing).
    assert direct["max_s"] > 1.0 or direct["failed"], describe("straight to gunicorn", direct)


def test_a_two_gib_content_length_is_refused_at_once_by_nginx_and_by_the_app(cohort, stack):
    request = (f"POST {cohort.webhook_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: 2147483648\r\n\r\n").encode()
    for port in (stack["nginx"], stack["gunicorn"]):
        head, seconds = _raw(port, request)  # reading 2 GiB would take minutes: "at once" is well under
        assert " 413 " in head and seconds < 2.0, (port, head, seconds)


def test_a_chunked_body_is_buffered_by_nginx_and_the_webhook_key_is_masked_in_its_access_log(cohort, stack):
    body = b'{"triggerEvent":"PING","payload":{}}'
    request = (f"POST {cohort.webhook_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{len(body):x}\r\n").encode() + body + b"\r\n0\r\n\r\n"
    head, _ = _raw(stack["nginx"], request)
    # nginx hands gunicorn the body with its length: the app checks the (missing) signature, not 411.
    assert " 403 " in head, head
    head, _ = _raw(stack["gunicorn"], request)
    assert " 411 " in head, head  # straight to gunicorn a chunked body is refused with its reason
    time.sleep(0.3)
    log = (stack["logs"] / "access.log").read_text()
    assert f"/webhooks/calcom/...{cohort.webhook_key[-4:]}/" in log
    assert cohort.webhook_key not in log
