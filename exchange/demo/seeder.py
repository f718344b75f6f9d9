"""``exchange demo``: the embedded exchange seeded with the data of :mod:`exchange.demo.data`
(offices and keys, agreements, people, a few dozen applications, signed dossiers of generated
PDF reports and ASPEC requests in every outcome), all through the public API and the same
signed deposit path as any office's; only the first administrator client and the people who
sign in to the web pages are created in the database, as ``exchange admin bootstrap`` and
``exchange admin create-user`` do.

``EXCHANGE_HOME/demo.json`` holds the credentials; it records when a seed began and when it
finished, so a second start reuses finished data and an interrupted seed is started afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import click
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from crypto import jws
from crypto.keys import PrivateKey, generate_private_key
from dossiers import registry, users
from dossiers.db import make_engine, make_session_factory
from dossiers.models import Office

from ..office.client import ExchangeClient
from ..settings import Settings
from .data import (
    AGREEMENTS,
    OFFICE_SETTINGS,
    OFFICES,
    REQUESTS,
    WEBHOOK_OFFICES,
    Deposit,
    Doc,
    Family,
    Member,
    member,
    members,
)
from .documents import render_document, title

CREDENTIALS = "demo.json"
KEYS_DIR = "demo-keys"
# Argon2id at production cost takes a fifth of a second a hash on one core: people and
# clients are created a few at a time so that the seed uses every core.
PARALLEL = max(2, min(8, os.cpu_count() or 2))
# What to look at first: (office whose examiner signs in, what to search for, what it shows).
TOUR = [
    ("SG", "10202301234X", "MY's search and examination reports, shared under ASPEC; its request was accepted"),
    ("MY", "PI2026003456", "SG's reports on an unpublished application, visible through an accepted ASPEC request"),
    ("BN", "BN/N/2026/0042", "the same family: SG's reports stay hidden (unpublished, no ASPEC request)"),
    ("VN", "PCT/SG2023/050123", "a PCT family: IPOS's international search report and written opinion as ISA"),
    ("TH", "/aspec", "Thailand's ASPEC requests: accepted, refused a written opinion, refused a report in Indonesian"),
]


class DemoSeedFailed(Exception):
    """The exchange did not answer as the demo's data say it must."""


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def _password() -> str:
    return secrets.token_urlsafe(12)


class _Seeder:
    admin: ExchangeClient  # the exchange administrator's client, the first thing run() creates
    sf: sessionmaker  # for what the API cannot do: the first admin client, people, the rollup

    def __init__(self, url: str, settings: Settings):
        self.url = url
        self.settings = settings
        self.path = settings.home / CREDENTIALS
        self.creds: dict = {"url": url, "started_at": _now(), "offices": {}}
        self.clients: dict[str, ExchangeClient] = {}
        self.keys: dict[str, PrivateKey] = {}
        self.dossier_of: dict[tuple[str, str], str] = {}  # (member, document id) -> dossier id

    def run(self) -> dict:
        engine = make_engine(self.settings.database_url)
        self.sf = make_session_factory(engine)
        try:
            return self._run()
        finally:
            engine.dispose()

    def _run(self) -> dict:
        _write(self.path, self.creds)  # from now on, what is in the database is the demo's own
        (self.settings.home / KEYS_DIR).mkdir(exist_ok=True)
        self._admin()
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(self._office, OFFICES))
            people = pool.submit(self._people)
            self._agreements_and_settings()
            self._webhooks()
            people.result()
        _write(self.path, self.creds)
        counts = self._applications()
        counts["aspec_requests"] = self._requests()
        self._statistics()
        self.creds.update(counts=counts, seeded_at=_now())
        _write(self.path, self.creds)
        return self.creds

    def _statistics(self) -> None:
        """Roll the statistics up now rather than at the scheduler's next hourly run, so the
        dashboard shows the seeded deposits and requests from the first minute."""
        from dossiers.stats import rollup

        rollup(self.sf)

    def _admin(self) -> None:
        with self.sf.begin() as s:
            client, secret = registry.create_client(s, office_code=None, roles=["admin"], name="demo admin",
                                                    actor="demo")
        self.creds["admin"] = {"client_id": client.client_id, "client_secret": secret}
        self.admin = ExchangeClient(self.url, client.client_id, secret)
        self.admin.token()

    def _office(self, code: str) -> None:
        self.admin.request("POST", "/v1/offices", json={"code": code, "name": OFFICES[code]})
        key = generate_private_key("ES256")
        pem = self.settings.home / KEYS_DIR / f"{code}.private.pem"
        pem.write_text(key.pem)
        pem.chmod(0o600)
        self.admin.request("POST", f"/v1/offices/{code}/keys",
                           json={"kid": key.kid, "alg": key.alg, "public_key_pem": key.public().pem})
        c = self.admin.request("POST", f"/v1/offices/{code}/clients", json={
            "name": f"{code} office system", "roles": ["depositor", "examiner", "office-admin"]}).json()
        self.creds["offices"][code] = {
            "client_id": c["client_id"], "client_secret": c["client_secret"], "kid": key.kid, "private_key": str(pem)}
        self.keys[code] = key
        self.clients[code] = ExchangeClient(self.url, c["client_id"], c["client_secret"])
        self.clients[code].token()

    def _agreements_and_settings(self) -> None:
        for agreement in AGREEMENTS:
            self.admin.request("POST", "/v1/agreements", json=agreement)
        for code, settings in OFFICE_SETTINGS.items():
            self.admin.request("PATCH", f"/v1/offices/{code}", json={"settings": settings})

    def _webhooks(self) -> None:
        self.creds["webhook_secrets"] = _subscribe_demo_webhooks(self.url, self.clients)

    def _people(self) -> None:
        """The administrator, and an examiner and an office administrator at every office."""
        wanted: list[tuple[str, str, str | None, list[str]]] = [("admin", "Exchange administrator", None, ["admin"])]
        for code in OFFICES:
            wanted += [(f"examiner.{code.lower()}", f"Examiner at {code}", code, ["examiner"]),
                       (f"admin.{code.lower()}", f"Office administrator at {code}", code, ["office-admin", "examiner"])]
        def create(person: tuple) -> dict:
            username, display_name, office, roles = person
            password = _password()
            with self.sf.begin() as s:
                users.create_user(s, username=username, display_name=display_name, office=office, roles=roles,
                                  password=password, email=None, actor="demo")
            return {"username": username, "password": password, "office": office}

        with ThreadPoolExecutor(PARALLEL) as pool:
            created = list(pool.map(create, wanted))
        self.creds["people"] = {
            "admin": created[0],
            "examiners": {p["office"]: p for p in created[1::2]},
            "office_admins": {p["office"]: p for p in created[2::2]},
        }

    def _applications(self) -> dict:
        """Every family member: deposited with its dossiers, or registered only."""
        counts = {"applications": 0, "dossiers": 0}
        with tempfile.TemporaryDirectory(prefix="exchange-demo-") as tmp:
            for family, m in members():
                counts["applications"] += 1
                application = _application(family, m)
                if not m.deposits:
                    self.clients[m.office].request("POST", "/v1/applications", json=application)
                for n, deposit in enumerate(m.deposits):
                    folder = Path(tmp) / f"{counts['dossiers']}"
                    folder.mkdir()
                    files, documents = {}, []
                    for doc in deposit.documents:
                        data = render_document(family, m, deposit, doc)
                        files[doc.id] = folder / f"{doc.id}.pdf"
                        files[doc.id].write_bytes(data)
                        documents.append(_document(m, doc, deposit, data))
                    manifest = {
                        "office": m.office, "application": application, "documents": documents,
                        "citations": [{"cited": c.document, "category": c.category, "claims": list(c.claims)}
                                      for c in family.citations] if _searched(deposit) else [],
                        "signed_at": _signed_at(),
                    }
                    token = jws.sign(json.dumps(manifest, separators=(",", ":")).encode(), self.keys[m.office])
                    result = self.clients[m.office].deposit(token, files)
                    if result["status"] != 201:
                        raise DemoSeedFailed(f"the deposit {n + 1} of {m.ref} was not new (HTTP {result['status']})")
                    for doc in deposit.documents:
                        self.dossier_of[(m.ref, doc.id)] = result["dossier_id"]
                    counts["dossiers"] += 1
        return counts

    def _requests(self) -> int:
        """File every ASPEC request and check that the exchange decides it as the data say."""
        for r in REQUESTS:
            so, fo = member(r.so)[1], member(r.fo)[1]
            body = {
                "route": r.route, "application": {"office": so.office, "number": so.number},
                "first_office_application": {"office": fo.office, "number": fo.number},
                "relied_documents": [{"dossier_id": self.dossier_of[(fo.ref, d)], "document_id": d} for d in r.relies],
            }
            if r.claim_correspondence:
                body["claim_correspondence"] = [{"claim": a, "first_office_claim": b, "relation": "same"}
                                                for a, b in r.claim_correspondence]
            client = self.clients[so.office]
            got = client.request("POST", "/v1/aspec-requests", json=body).json()
            decided = "accepted" if r.withdraw else r.status
            if (got["status"], sorted(got["reasons"]), got["basis"]) != (decided, sorted(r.reasons), r.basis):
                raise DemoSeedFailed(
                    f"the ASPEC request of {r.so} relying on {r.fo} should be {decided} "
                    f"(reasons {list(r.reasons)}, basis {r.basis}); the exchange answered {got['status']} "
                    f"(reasons {got['reasons']}, basis {got['basis']})")
            if r.withdraw:
                got = client.request("POST", f"/v1/aspec-requests/{got['id']}/withdraw").json()
                if got["status"] != "withdrawn":
                    raise DemoSeedFailed(f"withdrawing the ASPEC request of {r.so} left it {got['status']}")
        return len(REQUESTS)


def _subscribe_demo_webhooks(url: str, clients: dict[str, ExchangeClient]) -> dict[str, str]:
    """Point the listening office systems' webhooks at the demo's receiver at ``url`` (ending
    the subscriptions to a receiver elsewhere); return their secrets."""
    secrets_ = {}
    for code in WEBHOOK_OFFICES:
        target = f"{url}/_demo/webhooks/{code}"
        for hook in clients[code].request("GET", f"/v1/offices/{code}/webhooks").json():
            if hook["status"] == "active" and hook["url"].endswith(f"/_demo/webhooks/{code}"):
                clients[code].request("DELETE", f"/v1/offices/{code}/webhooks/{hook['id']}")
        hook = clients[code].request("POST", f"/v1/offices/{code}/webhooks", json={"url": target}).json()
        secrets_[code] = hook["secret"]
    return secrets_


def _moved(url: str, creds: dict, home: Path) -> dict:
    """A second start at another address: the webhooks follow, and demo.json says where it runs."""
    clients = {code: ExchangeClient(url, creds["offices"][code]["client_id"], creds["offices"][code]["client_secret"])
               for code in WEBHOOK_OFFICES}
    creds = {**creds, "url": url, "webhook_secrets": _subscribe_demo_webhooks(url, clients)}
    _write(home / CREDENTIALS, creds)
    return creds


def _application(family: Family, m: Member) -> dict:
    return {
        "number": m.number, "filing_date": m.filed, "title": family.title, "ipc": list(family.ipc),
        "priorities": [family.priority(ref) for ref in m.claims], "pct": m.pct,
        "publication": {"number": m.published[0], "date": m.published[1]} if m.published else None,
    }


def _document(m: Member, doc: Doc, deposit: Deposit, data: bytes) -> dict:
    out = {"id": doc.id, "type": doc.type, "title": title(m.office, doc), "language": doc.language,
           "issued_on": deposit.issued_on, "media_type": "application/pdf",
           "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    if doc.allowable is not None:
        out["allowable_claims"] = list(doc.allowable)
    if doc.translation_of is not None:
        out["translation_of"] = doc.translation_of
    return out


def _searched(deposit: Deposit) -> bool:
    return any(d.type in ("SR", "ISR") for d in deposit.documents)


def _signed_at() -> str:
    # A minute back: the exchange refuses a manifest signed in its future, and clocks drift.
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def seed(url: str, settings: Settings) -> dict:
    """Seed the empty exchange served at ``url`` with ``settings``; return the credentials,
    also written to ``EXCHANGE_HOME/demo.json``. Raises :class:`DemoSeedFailed`
    when the exchange does not answer as the data say it must."""
    return _Seeder(url, settings).run()


# --- a second start, an interrupted seed ------------------------------------------------------

def _embedded_default(settings: Settings) -> bool:
    """Database, storage and broker are the defaults under ``EXCHANGE_HOME``: the demo may delete them."""
    default = Settings.from_env({"EXCHANGE_HOME": str(settings.home)})
    return (settings.database_url, settings.storage_url, settings.broker_url) == \
        (default.database_url, default.storage_url, default.broker_url)


def _holds_data(settings: Settings) -> bool:
    """Does the database hold any office (the first thing a seed creates)?"""
    if settings.embedded and not Path(sa.engine.make_url(settings.database_url).database or "").exists():
        return False
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as c:
            if not sa.inspect(c).has_table(Office.__tablename__):
                return False
            return c.execute(sa.select(sa.func.count()).select_from(Office)).scalar_one() > 0
    except sa.exc.SQLAlchemyError as exc:
        raise click.ClickException(f"the database is not available: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _clear(settings: Settings) -> None:
    """Delete the embedded default's data and the demo's files under ``EXCHANGE_HOME``."""
    home = settings.home
    for name in ("exchange.db", "exchange.db-wal", "exchange.db-shm", CREDENTIALS, "demo-webhooks.jsonl"):
        (home / name).unlink(missing_ok=True)
    for name in ("blobs", "broker", KEYS_DIR):
        shutil.rmtree(home / name, ignore_errors=True)
    for path in home.glob("celerybeat-schedule*"):
        path.unlink()


def previous_seed(settings: Settings) -> dict | None:
    """The credentials of a finished seed to reuse, or None when the exchange must be seeded
    (afresh, or again after an interrupted seed whose data were cleared). Anything the demo may
    not delete by itself stops it with a message naming what to remove."""
    path = settings.home / CREDENTIALS
    creds = json.loads(path.read_text()) if path.exists() else None
    holds = _holds_data(settings)
    if creds is not None and creds.get("seeded_at") and holds:
        return creds
    if not holds:  # nothing to reuse, nothing in the way (at most an unused admin client)
        if creds is not None and _embedded_default(settings):
            _clear(settings)
        return None
    database = sa.engine.make_url(settings.database_url).render_as_string(hide_password=True)
    if creds is None:
        raise click.ClickException(
            f"the database {database} already holds an exchange that `exchange demo` did not seed (there is no "
            f"{path}); the demo needs an empty exchange: set EXCHANGE_HOME to another directory, or remove "
            f"{database} and the documents in {settings.storage_url}")
    if _embedded_default(settings):
        click.echo("the previous demo seed did not finish; clearing its data and seeding again", err=True)
        _clear(settings)
        return None
    raise click.ClickException(
        f"the previous demo seed in {settings.home} did not finish, and its data are not the embedded default "
        f"that the demo may delete by itself: empty the database {database} and the storage "
        f"{settings.storage_url}, remove {path}, then start `exchange demo` again")


def _lock(settings: Settings):
    """One demo at a time per ``EXCHANGE_HOME``: another one would seed, or clear, under it.
    The lock goes with the process, however it ends."""
    import fcntl

    f = open(settings.home / "demo.lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise click.ClickException(f"another `exchange demo` is running with EXCHANGE_HOME={settings.home}") from None
    return f


# --- the command ----------------------------------------------------------------------------

def run(host: str, port: int) -> None:
    import uvicorn

    import migrations

    from ..app import create_app
    from ..processes import exit_on_sigterm, start_embedded_worker, stop_process
    from . import sink as demo_sink

    # The demo's webhooks go to its own receiver on loopback, which the guard must let through.
    os.environ.setdefault("EXCHANGE_WEBHOOK_ALLOW_HOSTS", f"{host}/32" if host[0].isdigit() else host)
    settings = Settings.from_env(public_url=f"http://{host}:{port}")
    settings.home.mkdir(parents=True, exist_ok=True)
    lock = _lock(settings)
    creds = previous_seed(settings)
    migrations.upgrade(settings.database_url)
    worker = start_embedded_worker(settings)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, extra_routers=(demo_sink.router,)), host=host,
                                           port=port, log_level="warning"))
    failed: list[BaseException] = []

    def after_start() -> None:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or server.should_exit:
                return
            time.sleep(0.05)
        url = f"http://{host}:{port}"
        try:
            if creds is None:
                click.echo("seeding the demo exchange (offices, keys, people, signed dossiers, ASPEC requests)…",
                           err=True)
                _banner(url, seed(url, settings), settings.home, reused=False)
            else:
                _banner(url, creds if creds["url"] == url else _moved(url, creds, settings.home), settings.home,
                        reused=True)
        except Exception as exc:  # noqa: BLE001 - reported, and the server stops
            failed.append(exc)
            server.should_exit = True

    threading.Thread(target=after_start, daemon=True).start()
    try:
        with exit_on_sigterm():
            server.run()
    finally:
        stop_process(worker)
        lock.close()
    if failed:
        raise click.ClickException(f"{'seeding' if creds is None else 'starting'} the demo failed: {failed[0]}")


def _banner(url: str, creds: dict, home: Path, reused: bool) -> None:
    people, counts = creds["people"], creds["counts"]
    admin = people["admin"]
    lines = [
        "",
        f"The demo exchange is running at {url}   (API reference: {url}/docs)",
        f"{'Reusing' if reused else 'Seeded'} {len(creds['offices'])} offices, {len(AGREEMENTS)} agreements, "
        f"{counts['applications']} applications, {counts['dossiers']} signed dossiers and "
        f"{counts['aspec_requests']} ASPEC requests; data in {home}",
        "",
        f"Sign in at {url}/signin",
        f"  administrator: {admin['username']} / {admin['password']}",
        f"  {'office':<8}{'examiner':<15}{'password':<20}{'office admin':<14}password",
    ]
    for code in sorted(OFFICES):
        e, a = people["examiners"][code], people["office_admins"][code]
        lines.append(f"  {code:<8}{e['username']:<15}{e['password']:<20}{a['username']:<14}{a['password']}")
    lines += ["", "Worth a look, signed in as that office's examiner:"]
    for code, what, shows in TOUR:
        target = what if what.startswith("/") else f"/search?q={quote(what, safe='')}"
        lines.append(f"  examiner.{code.lower()}  {url}{target}")
        lines.append(f"      {shows}")
    lines += ["", f"API clients (OAuth 2 client credentials) of the administrator and of every office: "
              f"{home / CREDENTIALS}",
              f"  administrator: {creds['admin']['client_id']} {creds['admin']['client_secret']}",
              f"Try:  curl -s -d grant_type=client_credentials -d client_id=… -d client_secret=… {url}/oauth/token",
              f"Offices' signing keys: {home / KEYS_DIR}; webhooks received by the office systems of "
              f"{', '.join(WEBHOOK_OFFICES)}: {url}/_demo/webhooks (as the administrator)",
              f"Stop with Ctrl-C; start again to reuse the data, or delete {home} to start afresh.", ""]
    click.echo("\n".join(lines))
