"""Login throttling (django-axes) on both login forms, the admin's unlock, and no password reset."""

import pytest
from axes.models import AccessAttempt
from django.test import Client

from .factories import UserFactory

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's
FORMS = {"site": "/accounts/login/", "admin": "/admin/login/"}


@pytest.fixture
def staff(db):
    return UserFactory(username="grace", is_staff=True)


def _try(client, form, username, password):
    return client.post(FORMS[form], {"username": username, "password": password, "next": "/"})


@pytest.mark.parametrize("form", FORMS)
def test_two_hundred_wrong_passwords_are_cut_off_after_five(staff, form):
    client = Client()
    statuses = [_try(client, form, "grace", f"wrong-{i}").status_code for i in range(200)]

    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[5:]) == {429}
    locked = _try(client, form, "grace", PASSWORD)
    assert locked.status_code == 429  # even the right password waits out the lockout
    assert "Login paused" in locked.content.decode()
    assert "ask an admin of your organization to unlock you" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_username_and_ip(staff):
    other = UserFactory(username="hedy", is_staff=True)
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(6):
        _try(attacker, "site", "grace", f"wrong-{i}")
    assert _try(attacker, "site", "grace", PASSWORD).status_code == 429
    # The same person from their office, and a colleague from the attacker's address, still log in.
    assert _try(Client(REMOTE_ADDR="198.51.100.7"), "site", "grace", PASSWORD).status_code == 302
    assert _try(Client(REMOTE_ADDR="203.0.113.9"), "site", other.username, PASSWORD).status_code == 302


def test_a_superuser_unlocks_a_user_in_the_admin(staff):
    client = Client()
    for i in range(6):
        _try(client, "site", "grace", f"wrong-{i}")
    assert _try(client, "site", "grace", PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username="grace")

    operator = Client(REMOTE_ADDR="198.51.100.1")
    operator.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    listing = operator.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "grace" in listing.content.decode()
    response = operator.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302

    assert _try(client, "site", "grace", PASSWORD).status_code == 302


def test_a_successful_login_clears_earlier_failures(staff):
    client = Client()
    for i in range(4):
        _try(client, "site", "grace", f"wrong-{i}")
    assert _try(client, "site", "grace", PASSWORD).status_code == 302
    client.logout()
    for i in range(4):
        assert _try(client, "site", "grace", f"again-{i}").status_code == 200


def test_there_is_no_password_reset_form_to_send_email_with(client, staff, mailoutbox):
    for path in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"):
        for _ in range(20):
            assert client.post(path, {"email": staff.email}).status_code == 404
    assert mailoutbox == []
    # The login page offers no reset link either, and a logged-in user still changes their password.
    assert "reset" not in client.get("/accounts/login/").content.decode().lower()
    client.force_login(staff)
    assert client.get("/accounts/password_change/").status_code == 200
