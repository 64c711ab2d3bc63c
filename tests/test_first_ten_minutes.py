"""The README's first ten minutes: the printed replay commands work as printed, from the repo's
own samples, with dates relative to today, and an orphan is one flag away."""

import io
import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

import pytest
from django.core.management import call_command

from orphans.models import OrphanedInterview
from scheduling.management.commands.send_webhook import as_booker, shift_to_now

from .calcom_helpers import SAMPLES
from .demo import seed_quick_start_demo

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 30, 9, 15, tzinfo=dt_timezone.utc)


def readme_commands():
    """Return the send_webhook command lines of the README's "first ten minutes", split."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### The first ten minutes", 1)[1].split("\n## ", 1)[0]
    return [shlex.split(line) for line in section.splitlines()
            if ".venv/bin/python manage.py send_webhook" in line and not line.lstrip().startswith("`")
            and "--provider" not in line]


def test_the_readme_prints_replay_commands_that_use_the_repos_samples():
    assert len(readme_commands()) == 4
    for argv in readme_commands():
        assert "--shift-to-now" in argv
    commands = [shlex.split(line) for line in (ROOT / "README.md").read_text().splitlines()
                if ".venv/bin/python manage.py" in line and not line.lstrip().startswith("`")]
    assert len(commands) > len(readme_commands())
    for argv in commands:
        assert argv[0] == "DEBUG=1" and argv[1:3] == [".venv/bin/python", "manage.py"], argv
        assert "../shared" not in " ".join(argv)
        if argv[3] == "send_webhook":
            assert (ROOT / argv[4]).is_file(), argv[4]


def test_the_commands_run_in_a_second_terminal_without_make():
    """No SECRET_KEY, no DATABASE_URL, nothing but what the line sets (DEBUG=1)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "DEBUG": "1"}
    done = subprocess.run([sys.executable, "manage.py", "send_webhook", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--shift-to-now" in done.stdout and "http://127.0.0.1:8000" in done.stdout
    env["HOST"] = "127.0.0.1:8099"
    done = subprocess.run([sys.executable, "manage.py", "send_webhook", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert "http://127.0.0.1:8099" in done.stdout  # follows HOST


def test_the_readme_commands_replay_the_story_against_a_running_server(live_server, cohort, ada):
    cohort.webhook_secret = "cohortos-test-secret"
    cohort.save()
    cohort.slug = "northwind-2026"
    cohort.save()
    outcomes = []
    for argv in readme_commands():
        out = io.StringIO()
        options = argv[5:]
        call_command("send_webhook", str(ROOT / argv[4]), *options, url=live_server.url, stdout=out)
        outcomes.append(out.getvalue().split()[1].rstrip(":"))
        ada.refresh_from_db()
        if len(outcomes) == 1:
            assert ada.status == "first_round_scheduled"
            assert ada.interview_start > datetime.now(dt_timezone.utc)  # ahead, not last June
    assert outcomes == ["applied", "applied", "applied", "orphaned"]
    assert ada.status == "waiting_first_round" and ada.interview_start is None
    orphan = OrphanedInterview.objects.get(cohort=cohort)
    assert orphan.email == "someone.new@example.net" and orphan.name == "Ada Lovelace"


def sample(name):
    return json.loads((SAMPLES / f"calcom_{name}.json").read_text())


def test_shift_to_now_keeps_created_at_in_the_last_day_and_the_interview_ahead():
    data = sample("booking_created")  # created 2 June 16:21, interview 9 June 14:00
    shifted = shift_to_now(data, NOW)
    created = datetime.fromisoformat(shifted["createdAt"].replace("Z", "+00:00"))
    start = datetime.fromisoformat(shifted["payload"]["startTime"].replace("Z", "+00:00"))
    assert NOW - timedelta(days=1) < created <= NOW
    assert start - created == timedelta(days=6, hours=21, minutes=38, seconds=52.518)
    assert start.strftime("%H:%M") == "14:00" and start > NOW
    assert shifted["createdAt"].endswith("Z") and shifted["payload"]["startTime"].endswith("Z")
    assert shift_to_now(data, NOW + timedelta(minutes=5)) == shifted  # same day: same bytes, a duplicate
    assert data["payload"]["startTime"] == "2026-06-09T14:00:00Z"  # the input is untouched


def test_shift_to_now_moves_the_whole_sample_story_alike_so_its_order_holds():
    shifted = {name: shift_to_now(sample(name), NOW)
               for name in ("booking_created", "booking_rescheduled", "booking_cancelled")}

    def at(name, *path):
        value = shifted[name]
        for key in path:
            value = value[key]
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    created_start = at("booking_created", "payload", "startTime")
    moved_start = at("booking_rescheduled", "payload", "startTime")
    assert moved_start - created_start == timedelta(days=2, hours=1)  # 9 June 14:00 → 11 June 15:00
    assert at("booking_created", "createdAt") < at("booking_rescheduled", "createdAt") < at(
        "booking_cancelled", "createdAt")
    assert at("booking_cancelled", "payload", "startTime") == moved_start


def test_shift_to_now_without_created_at_moves_the_first_time_to_tomorrow():
    shifted = shift_to_now({"startTime": "2026-06-09T14:00:00Z", "endTime": "2026-06-09T14:30:00Z"}, NOW)
    assert shifted == {"startTime": "2026-12-01T14:00:00Z", "endTime": "2026-12-01T14:30:00Z"}


def test_as_booker_makes_a_new_booking_by_someone_else():
    data = sample("booking_created")
    changed = as_booker(data, "x@example.net")
    payload = changed["payload"]
    assert payload["attendees"][0]["email"] == "x@example.net"
    assert payload["responses"]["email"]["value"] == "x@example.net"
    assert payload["organizer"]["email"] == data["payload"]["organizer"]["email"]
    assert "application_id" not in payload["metadata"]
    assert payload["uid"] != data["payload"]["uid"] and payload["iCalUID"].startswith(payload["uid"])


@pytest.mark.django_db
def test_seed_demo_prints_commands_that_work_as_printed():
    out = io.StringIO()
    seed_quick_start_demo(stdout=out)
    text = out.getvalue()
    assert "DEBUG=1 .venv/bin/python manage.py send_webhook tests/fixtures/calcom/calcom_booking_created.json" in text
    assert "--email someone.new@example.net" in text and "../shared" not in text


def test_browser_screenshots_leave_the_repo_alone_unless_asked(monkeypatch):
    from .browser import DOCS_SCREENSHOTS, screenshot_path

    monkeypatch.delenv("SCREENSHOTS", raising=False)
    assert DOCS_SCREENSHOTS not in screenshot_path("x.png").parents
    monkeypatch.setenv("SCREENSHOTS", "docs")
    assert screenshot_path("x.png") == DOCS_SCREENSHOTS / "x.png"
