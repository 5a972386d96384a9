"""Whose address a request comes from, and the sign-in lockout that counts by it.

X-Forwarded-For is believed only from the proxies in GNDP_TRUSTED_PROXIES (none by default):
a client cannot pick a fresh address for each guess, nor step out of a lockout by naming
another. Failures for one account from any addresses lock the account. Through the real
sign-in page and the admin's, in this process and in the app served by uvicorn the way
`scripts/run.sh` serves it.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from types import SimpleNamespace

import pytest
from django.test import Client

from gndp.addresses import client_address
from tests import servers
from tests.conftest import ROOT
from tests.factories import UserFactory

PASSWORD = "correct horse"
PAIR_LOCKED = "Too many failed sign-ins for this account from your address."
ACCOUNT_LOCKED = "Too many failed sign-ins for this account. Sign-in is locked"


def wrong_password(page: str) -> bool:
    """The password was evaluated, and refused (the sign-in page's words, or the admin's)."""
    return "didn't match" in page or "Please enter the correct" in page


@pytest.fixture(autouse=True)
def limits(settings):
    settings.GNDP_LOGIN_FAILURE_LIMIT = 5
    settings.GNDP_LOGIN_LOCKOUT_SECONDS = 60
    settings.GNDP_LOGIN_ACCOUNT_FAILURE_LIMIT = 20
    settings.GNDP_LOGIN_ACCOUNT_LOCKOUT_SECONDS = 60
    settings.GNDP_TRUSTED_PROXIES = []


def fresh_user(**extra):
    # A fresh name each run: with Redis the counters outlive the test database.
    person = UserFactory(username=f"lock-{uuid.uuid4().hex[:10]}", **extra)
    person.set_password(PASSWORD)
    person.save()
    return person


def sign_in(username: str, password: str, *, peer: str = "203.0.113.7", forwarded: str | None = None,
            path: str = "/accounts/login/"):
    headers = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    client = Client(**headers)
    response = client.post(path, {"username": username, "password": password})
    return response, "_auth_user_id" in client.session


# --- the address ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("trusted", "peer", "forwarded", "expected"), [
    ([], "203.0.113.7", "1.2.3.4", "203.0.113.7"),  # no trusted proxy: the header is the client's say
    (["10.0.0.0/8"], "203.0.113.7", "1.2.3.4", "203.0.113.7"),  # the peer is no proxy of ours
    (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, 198.51.100.9", "198.51.100.9"),  # the right-most untrusted
    (["10.0.0.0/8", "192.0.2.1"], "10.0.0.5", "1.2.3.4, 198.51.100.9, 192.0.2.1, 10.1.1.1", "198.51.100.9"),
    (["10.0.0.0/8"], "10.0.0.5", "10.0.0.9, 10.0.0.8", "10.0.0.9"),  # only proxies: the farthest
    (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, not-an-address", "10.0.0.5"),  # garbage: the last proxy
    (["10.0.0.0/8"], "10.0.0.5", "", "10.0.0.5"),
    (["10.0.0.0/8"], "10.0.0.5", "198.51.100.9:4711", "198.51.100.9"),
    (["2001:db8::/32"], "2001:db8::1", "[2001:db8:ffff::7]:443, [2606:4700::1111]", "2606:4700::1111"),
    (["10.0.0.0/8"], "::ffff:10.0.0.5", "::ffff:198.51.100.9", "198.51.100.9"),  # IPv4 mapped into IPv6
])
def test_the_client_is_the_peer_or_the_rightmost_hop_no_trusted_proxy_wrote(settings, trusted, peer, forwarded,
                                                                              expected):
    settings.GNDP_TRUSTED_PROXIES = trusted
    request = SimpleNamespace(META={"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded})

    assert client_address(request) == expected


# --- the lockout through the pages ---------------------------------------------------------------

@pytest.mark.django_db
def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(settings):
    settings.GNDP_TRUSTED_PROXIES = ["10.0.0.0/8"]
    user = fresh_user()
    for hop in range(5):  # whatever the client writes in front, the proxy appends what it saw
        sign_in(user.username, "wrong", peer="10.0.0.5", forwarded=f"192.0.2.{hop}, 198.51.100.9")

    locked, signed_in = sign_in(user.username, PASSWORD, peer="10.0.0.6", forwarded="7.7.7.7, 198.51.100.9")
    neighbour = sign_in(user.username, PASSWORD, peer="10.0.0.5", forwarded="198.51.100.10")

    assert locked.status_code == 429 and PAIR_LOCKED in locked.content.decode() and not signed_in
    assert neighbour[0].status_code == 302 and neighbour[1]  # another client behind the same proxy


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_failures_from_many_addresses_lock_the_account(path):
    user = fresh_user(is_staff=True)
    answers = [sign_in(user.username, "wrong", peer=f"198.51.100.{n}", path=path)[0] for n in range(1, 26)]
    right, signed_in = sign_in(user.username, PASSWORD, peer="192.0.2.200", path=path)
    other = fresh_user(is_staff=True)

    evaluated = [n for n, answer in enumerate(answers, 1) if wrong_password(answer.content.decode())]
    refused = [n for n, answer in enumerate(answers, 1) if ACCOUNT_LOCKED in answer.content.decode()]
    assert evaluated == list(range(1, 21)) and refused == list(range(21, 26))
    assert ACCOUNT_LOCKED in right.content.decode() and not signed_in
    if path == "/accounts/login/":
        assert right.status_code == 429
    assert sign_in(other.username, PASSWORD, peer="198.51.100.1", path=path)[1]  # only that account


@pytest.mark.django_db
def test_a_name_nobody_holds_locks_alike():
    known, unknown = fresh_user().username, f"nobody-{uuid.uuid4().hex[:10]}"
    for name in (known, unknown):
        for n in range(20):
            sign_in(name, "wrong", peer=f"198.51.100.{n + 1}")

    answers = [sign_in(name, "anything", peer="192.0.2.9")[0] for name in (known, unknown)]

    assert [a.status_code for a in answers] == [429, 429]
    pages = [re.sub(r'(csrfmiddlewaretoken" value="|CSRFToken": ")[^"]+', "", answer.content.decode()).replace(name, "X")
             for answer, name in zip(answers, (known, unknown))]
    assert pages[0] == pages[1]


@pytest.mark.django_db
def test_the_apis_anonymous_rate_limit_counts_by_the_same_address(settings):
    from django.core.cache import cache

    from gndp.api.throttling import UserRateThrottle

    cache.clear()
    original = UserRateThrottle.THROTTLE_RATES
    UserRateThrottle.THROTTLE_RATES = {**original, "user": "3/minute"}
    try:
        codes = [Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").get("/api/schema/").status_code
                 for n in range(4)]
    finally:
        UserRateThrottle.THROTTLE_RATES = original

    assert codes == [200, 200, 200, 429]


# --- the app served as scripts/run.sh serves it ------------------------------------------------

def run_script_server_flags() -> list[str]:
    """The options scripts/run.sh gives uvicorn beyond host, port and log level."""
    line = next(line for line in (ROOT / "scripts" / "run.sh").read_text().splitlines()
                if line.startswith("$BIN/uvicorn "))
    return [token for token in line.split() if token.startswith("--") and token not in ("--host", "--port",
                                                                                           "--log-level")]


@pytest.fixture
def served(transactional_db, tmp_path):
    env = servers.server_env(GNDP_LOGIN_FAILURE_LIMIT="5", GNDP_LOGIN_ACCOUNT_FAILURE_LIMIT="20",
                             GNDP_TRUSTED_PROXIES="")
    with servers.running(env, tmp_path / "server.log", args=tuple(run_script_server_flags())) as server:
        yield server.url


def served_sign_in(url: str, username: str, password: str, forwarded: str) -> tuple[int, str, bool]:
    """(status, page, signed in) of one sign-in through the page, as a browser does it."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                         _NoRedirect)
    page = opener.open(url + "/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(url + "/accounts/login/", data=body.encode(), method="POST",
                                     headers={"X-Forwarded-For": forwarded, "Referer": url + "/accounts/login/"})
    try:
        response = opener.open(request, timeout=10)
        status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, text, any(cookie.name == "sessionid" for cookie in jar)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 after sign-in is the answer itself


def test_the_served_app_does_not_believe_a_clients_forwarded_for(served):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = UserFactory(username=f"lock-{uuid.uuid4().hex[:10]}")
    # the server hashes as production does, not with the suite's fast test hasher
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000)
    user.save(update_fields=["password"])

    answers = [served_sign_in(served, user.username, "wrong", forwarded=f"192.0.2.{n}") for n in range(25)]
    right = served_sign_in(served, user.username, PASSWORD, forwarded="198.51.100.77")

    evaluated = [n for n, (_, page, _) in enumerate(answers, 1) if wrong_password(page)]
    assert evaluated == [1, 2, 3, 4, 5]
    assert {status for status, _, _ in answers[5:]} == {429}
    assert right[0] == 429 and PAIR_LOCKED in right[1] and not right[2]
