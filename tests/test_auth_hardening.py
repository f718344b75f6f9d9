"""Sign-in and token requests under attack (issue 9, items 4, 6 and 9): the lock-out counter
under parallel guesses, rate limits per address and per account, one answer for a locked account
and an unknown user, and token requests that no longer cost an Argon2 verification each.

Every test runs over HTTP against the running exchange, on both stacks. Clients from other
addresses are real: the loopback network is 127.0.0.0/8, and httpx binds to any of them.
"""

from __future__ import annotations

import random
import re
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from crypto import secrets
from dossiers import registry, users
from dossiers.db import utcnow
from dossiers.errors import TooManyRequests
from dossiers.models import WebUser
from exchange.access.ratelimit import RateLimits
from exchange.settings import Settings, SettingsError
from tests.conftest import REDIS_URL, missing

PASSWORD = "correct horse battery staple"
CSRF = "t" * 43


# --- helpers ---------------------------------------------------------------------------------

def new_address() -> str:
    """A loopback address of this test's own (not 127.0.0.1, where the rest of the suite is)."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def http(address: str | None = None, **kw) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address) if address else None
    return httpx.Client(transport=transport, timeout=60, **kw)


def sign_in(url: str, username: str, password: str, address: str | None = None) -> httpx.Response:
    """The sign-in form as a browser posts it (the pre-session CSRF token double-submitted)."""
    with http(address) as c:
        return c.post(f"{url}/signin", data={"username": username, "password": password, "csrf_token": CSRF,
                                             "next": "/"}, headers={"Cookie": f"exchange_signin_csrf={CSRF}"})


def token_request(url: str, client_id: str, secret: str, address: str | None = None) -> httpx.Response:
    with http(address) as c:
        return c.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                  "client_secret": secret})


def make_person(stack, username: str | None = None, password: str = PASSWORD) -> str:
    username = username or f"p{uuid.uuid4().hex[:10]}@test"
    with stack.session_factory.begin() as s:
        users.create_user(s, username=username, display_name="Test person", office=None, roles=["admin"],
                          password=password, email=None, actor="test")
    return username


def make_client(stack) -> tuple[str, str]:
    with stack.session_factory.begin() as s:
        client, secret = registry.create_client(s, office_code=None, roles=["admin"], name="test", actor="test")
    return client.client_id, secret


def person_row(stack, username: str) -> dict:
    with stack.session_factory() as s:
        user = s.scalars(sa.select(WebUser).where(WebUser.username == username)).one()
        return {"failed_attempts": user.failed_attempts, "locked_until": user.locked_until,
                "password_hash": user.password_hash}


def set_person(stack, username: str, **values) -> None:
    with stack.session_factory.begin() as s:
        s.execute(sa.update(WebUser).where(WebUser.username == username).values(**values))


def stored_client_hash(stack, client_id: str) -> str:
    with stack.engine.connect() as c:
        return c.execute(sa.text("SELECT secret_hash FROM client WHERE client_id = :c"),
                         {"c": client_id}).scalar_one()


def set_client_hash(stack, client_id: str, value: str) -> None:
    with stack.engine.begin() as c:
        c.execute(sa.text("UPDATE client SET secret_hash = :h WHERE client_id = :c"), {"h": value, "c": client_id})


def signed_in(r: httpx.Response) -> bool:
    return r.status_code == 303 and "exchange_session" in r.cookies


@pytest.fixture
def production_hashing():
    """People's passwords hashed and checked as in production (Argon2id, 64 MiB, t=3), not with
    the suite's fast test parameters; put back afterwards."""
    secrets.use_hasher(secrets.PRODUCTION)
    try:
        yield
    finally:
        secrets.use_hasher(secrets.UNSAFE_FAST_FOR_TESTS)


@contextmanager
def rate_limits(stack, env: dict, **overrides):
    """The running exchange with the rate limits ``env`` sets (as the environment would), fresh
    counts; the suite's own (high) limits are put back afterwards."""
    app = stack.server.config.app
    values = dict(home=stack.settings.home, database_url=stack.settings.database_url,
                  storage_url=stack.settings.storage_url, broker_url=stack.settings.broker_url,
                  public_url=stack.settings.public_url)
    settings = Settings.from_env(env, **(values | overrides))
    before, app.state.rate_limits = app.state.rate_limits, RateLimits(settings)
    try:
        yield app.state.rate_limits
    finally:
        app.state.rate_limits = before


HIGH = "100000/minute"


def assert_429(r: httpx.Response, *, html: bool = False) -> int:
    assert r.status_code == 429, r.text
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    if html:
        assert r.headers["content-type"].startswith("text/html") and "Too many requests" in r.text
    else:
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["status"] == 429 and body["code"] == "too-many-requests" and body["type"]
        assert body["title"] == "Too many requests" and "try again" in body["detail"]
    return retry_after


# --- (1) the lock-out counter under parallel guesses -----------------------------------------

def test_parallel_wrong_passwords_lock_the_account(stack):
    """40 wrong passwords at once, as the attack did: every one is counted, the account locks,
    and the right password afterwards does not sign in."""
    username = make_person(stack)
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda i: sign_in(stack.url, username, f"guess number {i:04d}"), range(40)))
    assert [r.status_code for r in answers] == [401] * 40
    assert all(users.REFUSED in r.text for r in answers)
    row = person_row(stack, username)
    assert row["locked_until"] is not None and row["locked_until"] > utcnow() + timedelta(minutes=14)

    r = sign_in(stack.url, username, PASSWORD)
    assert r.status_code == 401 and not signed_in(r) and users.REFUSED in r.text
    with stack.engine.connect() as c:
        refused = c.execute(sa.text("SELECT reason, count(*) FROM audit_entry WHERE action = 'user.sign_in' "
                                    "AND subject = :u GROUP BY reason"), {"u": username}).all()
    # Five counted failures locked it; the 35 other guesses and the right password met the lock.
    assert dict(refused) == {"wrong password": users.MAX_FAILURES, "locked": 41 - users.MAX_FAILURES}


def test_the_lock_runs_out_and_the_count_starts_again(stack):
    username = make_person(stack)
    for i in range(users.MAX_FAILURES):
        assert sign_in(stack.url, username, f"wrong {i}").status_code == 401
    assert not signed_in(sign_in(stack.url, username, PASSWORD))
    set_person(stack, username, locked_until=utcnow() - timedelta(seconds=1))  # fifteen minutes later
    assert sign_in(stack.url, username, "wrong again").status_code == 401
    assert person_row(stack, username)["failed_attempts"] == 1  # a fresh count, not a fresh lock
    assert signed_in(sign_in(stack.url, username, PASSWORD))
    assert person_row(stack, username)["failed_attempts"] == 0


# --- (3) a locked account reads like an unknown user -----------------------------------------

def _comparable(r: httpx.Response, username: str) -> tuple:
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "x-request-id")}
    return r.status_code, headers, r.text.replace(username, "<username>")


def test_a_locked_account_reads_like_an_unknown_user(stack, production_hashing):
    """Status, headers and page are the same for an unknown username, a locked account (right or
    wrong password) and a disabled one; each does one Argon2 verification at production cost, so
    their times are of one class too."""
    locked = make_person(stack, "lockd-person@test")
    disabled = make_person(stack, "disab-person@test")
    unknown = "ghost-person@test"  # the same length: the page echoes the username
    assert person_row(stack, locked)["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    set_person(stack, locked, locked_until=utcnow() + timedelta(minutes=10))
    set_person(stack, disabled, disabled_at=utcnow())

    cases = {"unknown": (unknown, PASSWORD), "locked, right password": (locked, PASSWORD),
             "locked, wrong password": (locked, "a wrong password"), "disabled": (disabled, PASSWORD)}
    answers, times = {}, {name: [] for name in cases}
    for _ in range(3):  # interleaved, so that the machine's load falls on every case alike
        for name, (username, password) in cases.items():
            t0 = time.perf_counter()
            r = sign_in(stack.url, username, password)
            times[name].append(time.perf_counter() - t0)
            answers[name] = _comparable(r, username)
    assert answers["unknown"][0] == 401 and "set-cookie" not in answers["unknown"][1]
    assert users.REFUSED in answers["unknown"][2]
    for name in cases:
        assert answers[name] == answers["unknown"], name
    medians = {name: statistics.median(t) for name, t in times.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    assert slowest < 2.5 * fastest, medians  # one Argon2 verification each, none skipped
    # The lock held all along: the right password did not sign in, nor reset it.
    assert person_row(stack, locked)["locked_until"] > utcnow()


def test_production_argon2_signs_people_in(stack, production_hashing):
    username = make_person(stack)
    assert person_row(stack, username)["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    assert signed_in(sign_in(stack.url, username, PASSWORD))
    assert not signed_in(sign_in(stack.url, username, PASSWORD + "!"))


# --- (2) rate limits -------------------------------------------------------------------------

def test_token_requests_are_limited_per_address(stack):
    client_id, secret = make_client(stack)
    other_id, other_secret = make_client(stack)
    a, b = new_address(), new_address()
    with rate_limits(stack, {"EXCHANGE_TOKEN_LIMIT_PER_ADDRESS": "4/minute", "EXCHANGE_TOKEN_LIMIT_PER_CLIENT": HIGH}):
        assert token_request(stack.url, client_id, secret, a).status_code == 200
        assert token_request(stack.url, client_id, "wrong", a).status_code == 401
        assert token_request(stack.url, "cl_unknown", "wrong", a).status_code == 401
        assert token_request(stack.url, other_id, other_secret, a).status_code == 200
        # The fifth from this address, whichever client and however right the secret.
        assert_429(token_request(stack.url, other_id, other_secret, a))
        assert_429(token_request(stack.url, client_id, secret, a))
        # Another address is not held back, for the same clients.
        assert token_request(stack.url, client_id, secret, b).status_code == 200
        assert token_request(stack.url, other_id, other_secret, b).status_code == 200


def test_token_requests_are_limited_per_client(stack):
    client_id, secret = make_client(stack)
    other_id, other_secret = make_client(stack)
    with rate_limits(stack, {"EXCHANGE_TOKEN_LIMIT_PER_ADDRESS": HIGH, "EXCHANGE_TOKEN_LIMIT_PER_CLIENT": "3/minute"}):
        for _ in range(3):  # three guesses at the secret, each from an address of its own
            assert token_request(stack.url, client_id, "a guess", new_address()).status_code == 401
        known = token_request(stack.url, client_id, secret, new_address())
        assert_429(known)  # held back from any address, even with the right secret
        # The other client is not.
        assert token_request(stack.url, other_id, other_secret, new_address()).status_code == 200
        # An unknown client_id is limited alike, in the same words: the limit tells nobody which exist.
        for _ in range(3):
            assert token_request(stack.url, "cl_0123456789abcdef0123", "a guess", new_address()).status_code == 401
        unknown = token_request(stack.url, "cl_0123456789abcdef0123", "a guess", new_address())
        assert_429(unknown)
        def same(r):  # but for the request's id and the seconds left
            return {k: re.sub(r"\d+ s$", "N s", str(v)) for k, v in r.json().items() if k != "request_id"}

        assert same(unknown) == same(known)


def test_sign_in_is_limited_per_address(stack):
    person, other = make_person(stack), make_person(stack)
    a, b = new_address(), new_address()
    with rate_limits(stack, {"EXCHANGE_SIGNIN_LIMIT_PER_ADDRESS": "3/minute",
                             "EXCHANGE_SIGNIN_LIMIT_PER_ACCOUNT": HIGH}):
        assert sign_in(stack.url, person, "wrong", a).status_code == 401
        assert sign_in(stack.url, "nobody@test", "wrong", a).status_code == 401
        assert signed_in(sign_in(stack.url, other, PASSWORD, a))
        r = sign_in(stack.url, person, PASSWORD, a)
        assert_429(r, html=True)
        assert not signed_in(r)
        assert signed_in(sign_in(stack.url, person, PASSWORD, b))  # another address is let through
    assert person_row(stack, person)["failed_attempts"] == 0


def test_sign_in_is_limited_per_account(stack):
    person, other = make_person(stack), make_person(stack)
    with rate_limits(stack, {"EXCHANGE_SIGNIN_LIMIT_PER_ADDRESS": HIGH,
                             "EXCHANGE_SIGNIN_LIMIT_PER_ACCOUNT": "3/minute"}):
        assert signed_in(sign_in(stack.url, person, PASSWORD, new_address()))
        assert sign_in(stack.url, person.upper(), "wrong", new_address()).status_code == 401  # the same account
        assert sign_in(stack.url, f" {person}", "wrong", new_address()).status_code == 401
        assert_429(sign_in(stack.url, person, PASSWORD, new_address()), html=True)
        assert signed_in(sign_in(stack.url, other, PASSWORD, new_address()))  # others are not held back
        # An unknown username is limited alike (the limit does not tell which exist).
        for _ in range(3):
            assert sign_in(stack.url, "nobody@test", "wrong", new_address()).status_code == 401
        assert_429(sign_in(stack.url, "nobody@test", "wrong", new_address()), html=True)


def test_a_refused_attempt_is_not_checked(stack):
    """Over the limit, the password is not even looked at: no failure counted, no audit entry."""
    person = make_person(stack)
    address = new_address()
    with rate_limits(stack, {"EXCHANGE_SIGNIN_LIMIT_PER_ADDRESS": "1/minute"}):
        assert sign_in(stack.url, person, "wrong", address).status_code == 401
        for _ in range(10):
            assert_429(sign_in(stack.url, person, "wrong", address), html=True)
    assert person_row(stack, person)["failed_attempts"] == 1
    with stack.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM audit_entry WHERE subject = :u AND action = 'user.sign_in'"),
                         {"u": person}).scalar_one() == 1


def test_limit_settings_from_the_environment(tmp_path):
    embedded = Settings.from_env({"EXCHANGE_HOME": str(tmp_path)})
    assert embedded.rate_limit_storage == "memory://"
    assert (embedded.signin_limit_per_address, embedded.signin_limit_per_account) == ("120/minute", "10/minute")
    assert (embedded.token_limit_per_address, embedded.token_limit_per_client) == ("1200/minute", "300/minute")
    production = Settings.from_env({"EXCHANGE_HOME": str(tmp_path), "EXCHANGE_BROKER_URL": "redis://redis:6379/0"})
    assert production.rate_limit_storage == "redis://redis:6379/0"
    own = Settings.from_env({"EXCHANGE_HOME": str(tmp_path), "EXCHANGE_BROKER_URL": "redis://redis:6379/0",
                             "EXCHANGE_RATE_LIMIT_STORAGE_URL": "redis://limits:6379/3",
                             "EXCHANGE_TOKEN_LIMIT_PER_CLIENT": "5 per minute; 50 per hour"})
    assert own.rate_limit_storage == "redis://limits:6379/3"
    assert own.token_limit_per_client == "5 per minute; 50 per hour"
    with pytest.raises(SettingsError, match="EXCHANGE_SIGNIN_LIMIT_PER_ACCOUNT"):
        Settings.from_env({"EXCHANGE_HOME": str(tmp_path), "EXCHANGE_SIGNIN_LIMIT_PER_ACCOUNT": "lots"})


def test_a_limit_can_be_turned_off(stack):
    client_id, secret = make_client(stack)
    address = new_address()
    with rate_limits(stack, {"EXCHANGE_TOKEN_LIMIT_PER_ADDRESS": "off", "EXCHANGE_TOKEN_LIMIT_PER_CLIENT": "off"}):
        assert [token_request(stack.url, client_id, secret, address).status_code for _ in range(12)] == [200] * 12


@pytest.fixture
def redis_url():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        missing("Redis", str(exc))
    return REDIS_URL


def test_with_a_redis_broker_the_counts_are_shared_in_redis(stack, redis_url):
    """Production: the broker's Redis keeps the counts, so every API process and replica sees
    them. Two limiters (two replicas) over one Redis; then the running exchange itself."""
    settings = Settings.from_env({}, home=stack.settings.home, broker_url=redis_url, token_limit_per_address="3/minute",
                                 token_limit_per_client=HIGH)
    assert settings.rate_limit_storage == redis_url
    one, two = RateLimits(settings), RateLimits(settings)
    address = new_address()
    one.check("token", address, "cl_a")
    two.check("token", address, "cl_b")
    one.check("token", address, "cl_c")
    with pytest.raises(TooManyRequests) as refused:
        two.check("token", address, "cl_d")
    assert 1 <= refused.value.retry_after <= 60
    two.check("token", new_address(), "cl_d")

    client_id, secret = make_client(stack)
    address = new_address()
    with rate_limits(stack, {"EXCHANGE_TOKEN_LIMIT_PER_ADDRESS": "2/minute"}, broker_url=redis_url):
        assert [token_request(stack.url, client_id, secret, address).status_code for _ in range(2)] == [200, 200]
        assert_429(token_request(stack.url, client_id, secret, address))
        assert token_request(stack.url, client_id, secret, new_address()).status_code == 200


def test_an_unreachable_limit_store_does_not_refuse(stack):
    """Redis down: the limits cannot count, and let requests through (the lock-out still guards
    people's accounts) rather than answering 500."""
    client_id, secret = make_client(stack)
    with rate_limits(stack, {"EXCHANGE_RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:9/0"}):
        assert token_request(stack.url, client_id, secret, new_address()).status_code == 200
        assert sign_in(stack.url, "nobody@test", "wrong", new_address()).status_code == 401


# --- (4) machine clients' secrets: a fast hash -----------------------------------------------

def test_client_secrets_use_the_fast_hash():
    """The production path for clients (there is no test switch on it): SHA-256 of a 256-bit
    random secret, refused for anything shorter, far cheaper than one Argon2 verification."""
    secret = secrets.new_secret()
    stored = secrets.hash_client_secret(secret)
    assert stored.startswith(secrets.CLIENT_HASH_PREFIX) and secret not in stored
    assert stored == secrets.hash_client_secret(secret)  # no salt needed for a random secret
    assert secrets.client_secret_matches(stored, secret)
    assert not secrets.client_secret_matches(stored, secrets.new_secret())
    assert not secrets.client_secret_matches(stored, secret[:-1])
    assert not secrets.client_secret_matches(None, secret) and not secrets.client_secret_matches("", secret)
    assert not secrets.client_secret_matches("$exchange-sha256$" + "0" * 64, "")
    with pytest.raises(ValueError):
        secrets.hash_client_secret("a chosen password")
    # An old Argon2id hash still verifies, and is to be replaced by the fast one.
    old = secrets.PRODUCTION.hash(secret)
    assert secrets.client_secret_matches(old, secret) and not secrets.client_secret_matches(old, "cs_wrong")
    assert secrets.upgraded_client_hash(old, secret) == stored
    assert secrets.upgraded_client_hash(stored, secret) is None

    t0 = time.process_time()
    secrets.client_secret_matches(old, secret)
    argon2_cpu = time.process_time() - t0
    t0 = time.process_time()
    for _ in range(200):
        secrets.client_secret_matches(stored, secret)
        secrets.client_secret_matches(None, secret)
    assert time.process_time() - t0 < argon2_cpu  # 400 fast checks cost less than one Argon2


def test_an_old_argon2_client_hash_is_upgraded_on_its_first_token(stack):
    client_id, secret = make_client(stack)
    old = secrets.PRODUCTION.hash(secret)  # what the exchange stored before
    set_client_hash(stack, client_id, old)
    assert token_request(stack.url, client_id, "cs_" + "x" * 43).status_code == 401
    assert stored_client_hash(stack, client_id) == old  # a wrong secret changes nothing
    assert token_request(stack.url, client_id, secret).status_code == 200
    assert stored_client_hash(stack, client_id) == secrets.hash_client_secret(secret)
    assert token_request(stack.url, client_id, secret).status_code == 200


def test_an_upgrade_does_not_undo_a_rotation(stack):
    """A token request that verified the old secret against an old hash while the secret was
    being replaced must not write the old secret's hash over the new one."""
    client_id, secret = make_client(stack)
    set_client_hash(stack, client_id, secrets.PRODUCTION.hash(secret))
    with stack.session_factory() as slow:
        read = slow.get(registry.Client, client_id)  # the token request read the old hash ...
        with stack.session_factory.begin() as s:  # ... the secret is replaced and committed ...
            _, new_secret = registry.rotate_client_secret(s, None, client_id, actor="test")
        assert registry.authenticate_client(slow, client_id, secret) is read  # ... then it verifies
        slow.commit()
    assert stored_client_hash(stack, client_id) == secrets.hash_client_secret(new_secret)
    assert token_request(stack.url, client_id, secret).status_code == 401
    assert token_request(stack.url, client_id, new_secret).status_code == 200


def test_an_unknown_client_costs_what_a_known_one_does(stack):
    client_id, secret = make_client(stack)
    cases = {"known, right": (client_id, secret), "known, wrong": (client_id, secrets.new_secret()),
             "unknown": ("cl_" + "0" * 20, secrets.new_secret())}
    times = {name: [] for name in cases}
    with http() as c:
        for _ in range(15):
            for name, (cid, sec) in cases.items():
                t0 = time.perf_counter()
                r = c.post(f"{stack.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                                             "client_secret": sec})
                times[name].append(time.perf_counter() - t0)
                assert r.status_code == (200 if name == "known, right" else 401)
    medians = {name: statistics.median(t) for name, t in times.items()}
    assert medians["unknown"] < 3 * medians["known, wrong"], medians
    assert medians["known, wrong"] < 3 * medians["unknown"], medians
    assert max(medians.values()) < 0.5, medians  # no Argon2 on any of them


def test_healthz_answers_while_16_token_requests_run(stack, production_hashing):
    """Sixteen clients getting tokens at once (production hashing throughout) no longer starve
    the server: /healthz answers all the while."""
    clients = [make_client(stack) for _ in range(16)]
    stop, statuses, lock = threading.Event(), [], threading.Lock()

    def get_tokens(client):
        with http() as c:
            while True:
                r = c.post(f"{stack.url}/oauth/token", data={"grant_type": "client_credentials",
                                                             "client_id": client[0], "client_secret": client[1]})
                with lock:
                    statuses.append(r.status_code)
                if stop.is_set():
                    return

    threads = [threading.Thread(target=get_tokens, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    latencies = []
    try:
        with http() as c:
            while len(latencies) < 20:
                t0 = time.perf_counter()
                assert c.get(f"{stack.url}/healthz").status_code == 200
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert len(statuses) >= 16 and set(statuses) == {200}
    assert statistics.median(latencies) < 1.0, latencies
    assert all(stored_client_hash(stack, cid).startswith(secrets.CLIENT_HASH_PREFIX) for cid, _ in clients)
