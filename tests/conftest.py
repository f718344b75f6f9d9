"""Real parts for every test: PostgreSQL, an S3-protocol server over HTTP (moto's threaded
server, driven through the ``minio`` client), SQLite and a local directory.

The schema is built once per database by the Alembic migrations (never ``create_all``).
Between tests every table is emptied: the application opens sessions of its own (refusal
audits, workers), which a rolled-back outer transaction could not contain honestly.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

import migrations
from crypto import secrets
from dossiers.db import Base, make_engine, make_session_factory
from dossiers.storage import BlobStore, store_from_url
from exchange.app import create_app
from exchange.settings import Settings
from tests.support import IN_CI, OfficeKit, ServerThread, new_key, token

PG_ADMIN_URL = os.environ.get("EXCHANGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("EXCHANGE_TEST_REDIS", "redis://127.0.0.1:6379/15")

logging.getLogger("werkzeug").setLevel(logging.ERROR)
# Argon2 at production cost takes ~0.2 s a hash; tests create hundreds of clients.
secrets.use_hasher(secrets.UNSAFE_FAST_FOR_TESTS)


def missing(part: str, why: str):
    """A real part is missing: fail in CI, skip elsewhere, saying which."""
    msg = f"{part} is not available ({why})"
    if IN_CI:
        pytest.fail(msg + "; CI needs every real part", pytrace=False)
    pytest.skip(msg)


# --- PostgreSQL -----------------------------------------------------------------------------

def _database(purpose: str):
    """A throwaway PostgreSQL database at Alembic's head, dropped at the end."""
    name = f"exchange_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT", pool_pre_ping=True)  # a test restarts PostgreSQL
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        missing("PostgreSQL", str(exc).splitlines()[0])
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrations.upgrade(url)
    yield url
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_url():
    yield from _database("test")


@pytest.fixture(scope="session")
def workers_pg_url():
    """The worker tests' own database. The session's pg-s3 stack keeps its API (and its outbox
    relay) running on ``pg_url`` all session: sharing that database, its relay would claim the
    worker tests' events and publish them to its own broker, where no worker takes them."""
    yield from _database("workers")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'exchange.db'}"
    migrations.upgrade(url)
    return url


def empty_tables(engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            c.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                c.execute(sa.text(f'DELETE FROM "{t}"'))
        c.execute(sa.text("INSERT INTO audit_head (id, seq, last_hash) VALUES (1, 0, :h)"), {"h": "0" * 64})


# --- S3 over HTTP ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def s3_server():
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        missing("moto's S3 server (moto[server])", str(exc))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield port
    server.stop()


def reset_s3(port: int) -> None:
    httpx.post(f"http://127.0.0.1:{port}/moto-api/reset").raise_for_status()


def s3_url(port: int, bucket: str = "exchange") -> str:
    return f"s3://testkey:testsecret@127.0.0.1:{port}/{bucket}?secure=false"


# --- the two stacks -------------------------------------------------------------------------

@dataclass
class Stack:
    name: str
    settings: Settings
    engine: sa.Engine
    session_factory: object
    store: BlobStore
    server: ServerThread
    s3_port: int | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def reset(self) -> None:
        self.server.config.app.state.relay.paused = False
        empty_tables(self.engine)
        if self.s3_port is not None:
            reset_s3(self.s3_port)
        else:
            root = Path(self.settings.storage_url[len("file://"):])
            shutil.rmtree(root, ignore_errors=True)
        self.store.ensure_ready()

    # helpers used across test modules

    def admin(self) -> dict:
        from dossiers import registry

        with self.session_factory.begin() as s:
            client, secret = registry.create_client(s, office_code=None, roles=["admin"], name="test admin",
                                                    actor="test")
        return {"Authorization": f"Bearer {token(self.url, client.client_id, secret)}"}

    def office(self, code: str = "SG", roles=("depositor", "examiner", "office-admin"), alg: str = "ES256",
               admin: dict | None = None, **key_window) -> OfficeKit:
        admin = admin or self.admin()
        with httpx.Client(base_url=self.url, headers=admin) as http:
            r = http.post("/v1/offices", json={"code": code, "name": f"Office {code}"})
            assert r.status_code in (201, 409), r.text
            key = new_key(alg)
            body = {"kid": key.kid, "alg": alg, "public_key_pem": key.public().pem}
            body.update({k: v.isoformat() for k, v in key_window.items()})
            r = http.post(f"/v1/offices/{code}/keys", json=body)
            assert r.status_code == 201, r.text
            r = http.post(f"/v1/offices/{code}/clients", json={"roles": list(roles)})
            assert r.status_code == 201, r.text
            c = r.json()
        return OfficeKit(code, key, c["client_id"], c["client_secret"], self.url, list(roles))

    def count(self, table: str) -> int:
        with self.engine.connect() as c:
            return c.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()

    def stored_objects(self) -> list:
        return list(self.store.list())


TEST_RATE_LIMITS = dict(signin_limit_per_address="100000/minute", signin_limit_per_account="100000/minute",
                        token_limit_per_address="100000/minute", token_limit_per_client="100000/minute")


def _make_stack(name: str, database_url: str, storage_url: str, tmp: Path, s3_port: int | None) -> Stack:
    settings = Settings.from_env(
        {}, home=tmp, database_url=database_url, storage_url=storage_url,
        broker_url=f"filesystem://{tmp / 'broker'}", public_url="http://exchange.test",
        # The suite gets hundreds of tokens from 127.0.0.1; tests/test_auth_hardening.py sets its own.
        **TEST_RATE_LIMITS,
    )
    engine = make_engine(database_url)
    sf = make_session_factory(engine)
    store = store_from_url(storage_url)
    store.ensure_ready()
    app = create_app(settings, store=store, session_factory=sf)
    server = ServerThread(app).start()
    return Stack(name, settings, engine, sf, store, server, s3_port)


@pytest.fixture(scope="session")
def pg_s3_stack(pg_url, s3_server, tmp_path_factory):
    stack = _make_stack("pg-s3", pg_url, s3_url(s3_server), tmp_path_factory.mktemp("pg-s3"), s3_server)
    yield stack
    stack.server.stop()
    stack.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_local_stack(sqlite_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sqlite-local")
    stack = _make_stack("sqlite-local", sqlite_url, f"file://{tmp / 'blobs'}", tmp, None)
    yield stack
    stack.server.stop()
    stack.engine.dispose()


@pytest.fixture(params=["pg-s3", "sqlite-local"])
def stack(request) -> Stack:
    """The whole exchange on real parts, once per backend pair, emptied before each test."""
    s = request.getfixturevalue("pg_s3_stack" if request.param == "pg-s3" else "sqlite_local_stack")
    s.reset()
    return s


@pytest.fixture
def pg_stack(pg_s3_stack) -> Stack:
    pg_s3_stack.reset()
    return pg_s3_stack
