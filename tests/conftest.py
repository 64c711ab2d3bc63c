import pytest
from django.db import connection

from .factories import ApplicationFactory, CohortFactory, MembershipFactory, UserFactory


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://…)")
    once = pytest.mark.skip(reason="slow: runs once, in the PostgreSQL run")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)
        elif "slow" in item.keywords and not on_postgres:
            item.add_marker(once)


@pytest.fixture(autouse=True)
def _celery_eager(request):
    """Run Celery tasks in-process, even with REDIS_URL set, unless the test is marked `redis`.

    Otherwise every orphan a committed test creates would publish an alert task to the
    shared broker, where no worker takes it; tests of the real broker bring their own.
    """
    if "redis" in request.keywords:
        yield
        return
    from cohortos.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def _own_webhook_spool(settings, tmp_path):
    """Give every test its own empty webhook spool and secret cache (never the project's var/)."""
    from scheduling.spool import secret_cache

    settings.WEBHOOK_SPOOL_DIR = tmp_path / "webhook-spool"
    secret_cache.clear()
    yield
    secret_cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def org_admin(db):
    """A user who is an admin of `cohort`'s organization."""
    return UserFactory(username="org_admin")


@pytest.fixture
def cohort(db, org_admin):
    cohort = CohortFactory(name="Northwind 2026")
    MembershipFactory(user=org_admin, organization=cohort.organization)
    return cohort


@pytest.fixture
def outsider(db):
    """A user in another organization, who must see none of `cohort`'s data."""
    user = UserFactory(username="outsider")
    MembershipFactory(user=user, organization=CohortFactory().organization)
    return user


@pytest.fixture
def admin_client(client, org_admin):
    client.force_login(org_admin)
    return client


@pytest.fixture
def ada(cohort):
    """The applicant of the shared Cal.com samples (ada.lovelace@example.org), waiting for round one."""
    return ApplicationFactory(
        cohort=cohort, applicant_name="Ada Lovelace", contact_email="ada.lovelace@example.org",
        public_id="app_7f3c2a91", status="waiting_first_round", current_stage="first_round",
    )


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


# The browser tests' window size, for every module (phone tests override it): see tests/browser.py.
from .browser import viewport  # noqa: E402, F401
