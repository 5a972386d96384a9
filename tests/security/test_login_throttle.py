"""Sign-in lockout: repeated failures for one user name from one address lock that pair out,
on the sign-in page and on the admin's, with a clear message; a Redis outage leaves sign-in
working."""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse"
LOCKED = "Too many failed sign-ins for this account from your address."


@pytest.fixture(autouse=True)
def short_lockout(settings):
    settings.GNDP_LOGIN_FAILURE_LIMIT = 5
    settings.GNDP_LOGIN_LOCKOUT_SECONDS = 60


@pytest.fixture
def user():
    # A fresh name each run: with Redis the counters outlive the test database.
    person = UserFactory(username=f"lock-{uuid.uuid4().hex[:10]}", is_staff=True)
    person.set_password(PASSWORD)
    person.save()
    return person


def sign_in(username: str, password: str, address: str = "203.0.113.7", path: str = "/accounts/login/"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    return response, client


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_failures_lock_the_name_at_that_address_even_for_the_right_password(user):
    for _ in range(5):
        response, _ = sign_in(user.username, "wrong")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode() and LOCKED not in response.content.decode()

    locked, client = sign_in(user.username, PASSWORD)

    assert locked.status_code == 429
    assert LOCKED in locked.content.decode() and "Sign-in is locked for 1 more minute." in locked.content.decode()
    assert not signed_in(client)
    # Only that pair: the same name from elsewhere, and another name from there, still sign in.
    elsewhere, client = sign_in(user.username, PASSWORD, address="198.51.100.2")
    assert elsewhere.status_code == 302 and signed_in(client)
    other = UserFactory(username=f"other-{uuid.uuid4().hex[:10]}")
    other.set_password(PASSWORD)
    other.save()
    neighbour, client = sign_in(other.username, PASSWORD)
    assert neighbour.status_code == 302 and signed_in(client)


def test_the_admin_sign_in_is_locked_too(user):
    for _ in range(5):
        sign_in(user.username, "wrong", path="/admin/login/")

    response, client = sign_in(user.username, PASSWORD, path="/admin/login/")

    assert response.status_code == 200 and LOCKED in response.content.decode()
    assert not signed_in(client)


def test_user_name_case_and_spaces_do_not_escape_the_count(user):
    for name in [user.username.upper(), f" {user.username}", user.username, user.username.title(), user.username]:
        sign_in(name, "wrong")

    assert sign_in(user.username, PASSWORD)[0].status_code == 429


def test_a_success_resets_the_count(user):
    for _ in range(4):
        sign_in(user.username, "wrong")
    assert sign_in(user.username, PASSWORD)[0].status_code == 302
    for _ in range(4):
        sign_in(user.username, "wrong")

    response, client = sign_in(user.username, PASSWORD)

    assert response.status_code == 302 and signed_in(client)


def test_the_lockout_ends(user, settings):
    settings.GNDP_LOGIN_LOCKOUT_SECONDS = 2
    for _ in range(5):
        sign_in(user.username, "wrong")
    assert sign_in(user.username, PASSWORD)[0].status_code == 429

    time.sleep(2.5)

    response, client = sign_in(user.username, PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_sign_in_keeps_working_while_the_counter_store_is_down(user, settings):
    settings.CACHES = {**settings.CACHES, "login": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}

    wrong, _ = sign_in(user.username, "wrong")
    right, client = sign_in(user.username, PASSWORD)

    assert wrong.status_code == 200
    assert right.status_code == 302 and signed_in(client)
