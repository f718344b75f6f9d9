"""``exchange demo``: the embedded exchange seeded with offices, keys, clients and signed
dossiers, deposited over HTTP through the same path as any office's. A second start
reuses the data (``EXCHANGE_HOME/demo.json`` holds the credentials)."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
import httpx

from crypto import jws
from crypto.keys import PrivateKey, generate_private_key
from dossiers import registry, users
from dossiers.db import make_engine, make_session_factory

from .office_client import ExchangeClient
from .pdf import render
from .settings import Settings

ASEAN = ["BN", "ID", "KH", "LA", "MY", "PH", "SG", "TH", "VN"]
OFFICES = {
    "SG": "Intellectual Property Office of Singapore",
    "MY": "Intellectual Property Corporation of Malaysia",
    "TH": "Department of Intellectual Property, Thailand",
    "VN": "Intellectual Property Office of Viet Nam",
    "ID": "Directorate General of Intellectual Property, Indonesia",
    "PH": "Intellectual Property Office of the Philippines",
    "BN": "Brunei Intellectual Property Office",
    "KH": "Department of Industrial Property, Cambodia",
    "LA": "Department of Intellectual Property, Lao PDR",
    "JP": "Japan Patent Office",
    "US": "United States Patent and Trademark Office",
    "EP": "European Patent Office",
    "AU": "IP Australia",
    "KR": "Korean Intellectual Property Office",
}

# (office, number, filing date, title, priorities, pct, publication)
FAMILIES = [
    [("MY", "PI2022001234", "2022-03-02", "Secure exchange of examination results between offices", [], None,
      ("MY-170001-A", "2023-09-29")),
     ("SG", "10202301234X", "2023-03-01", "Secure exchange of examination results between offices",
      [("MY", "PI2022001234", "2022-03-02")], None, ("SG10202301234XA", "2024-09-01")),
     ("TH", "2301001234", "2023-03-01", "Secure exchange of examination results between offices",
      [("MY", "PI2022001234", "2022-03-02")], None, None)],
    [("SG", "10202250123Q", "2022-06-15", "Battery electrode with layered silicon anode", [], None,
      ("SG10202250123QA", "2023-12-18")),
     ("VN", "1-2023-01234", "2023-06-14", "Battery electrode with layered silicon anode",
      [("SG", "10202250123Q", "2022-06-15")], "PCT/SG2023/050123", None),
     ("PH", "1/2023/050123", "2023-06-14", "Battery electrode with layered silicon anode",
      [("SG", "10202250123Q", "2022-06-15")], "PCT/SG2023/050123", ("PH12023050123A", "2024-03-01")),
     ("ID", "P00202301234", "2023-06-14", "Battery electrode with layered silicon anode",
      [("SG", "10202250123Q", "2022-06-15")], "PCT/SG2023/050123", None)],
    [("JP", "2022-123456", "2022-08-01", "Rice polishing machine with optical sorting", [], None,
      ("JP2024012345A", "2024-02-01")),
     ("MY", "PI2023004567", "2023-07-31", "Rice polishing machine with optical sorting",
      [("JP", "2022-123456", "2022-08-01")], None, None),
     ("TH", "2301004567", "2023-07-31", "Rice polishing machine with optical sorting",
      [("JP", "2022-123456", "2022-08-01")], None, None),
     ("US", "18/123,456", "2023-07-31", "Rice polishing machine with optical sorting",
      [("JP", "2022-123456", "2022-08-01")], None, ("US20240012345A1", "2024-01-11"))],
]

CITATIONS = [("US2019123456A1", "X", [1, 2, 3]), ("EP3456789A1", "Y", [4, 5]), ("WO2020123456A1", "A", [1, 6]),
             ("JP2018765432A", "Y", [2, 7]), ("CN110123456A", "A", [8])]


def _documents(office: str, number: str, title: str, n: int) -> tuple[list[dict], dict[str, bytes], list[dict]]:
    cites = CITATIONS[n % 3: n % 3 + 3]
    sr = render(f"Search report - {office} {number}", [
        f"Application: {number} ({office})", f"Title: {title}", "Classification (IPC): H04L 9/32", "",
        "Documents considered relevant:", *[f"  Category {c}: {d}, relevant to claims {', '.join(map(str, cl))}"
                                            for d, c, cl in cites],
        "", "Fields searched: H04L, G06F; databases: EPODOC, WPI, full-text ASEAN collections.",
        f"Date of completion of the search: {date(2023, 9, 10 + n % 10).isoformat()}", "Examiner: demo examiner",
    ])
    allowable = [1, 2, 3] if n % 2 == 0 else [4, 5]
    wo = render(f"Written opinion - {office} {number}", [
        f"Application: {number}", "", "Box V: reasoned statement on novelty, inventive step and industrial application",
        *[f"Claim {c}: {'novel and inventive' if c in allowable else 'lacks inventive step over D1 and D2'}"
          for c in range(1, 9)], "", f"Claims found allowable: {', '.join(map(str, allowable))}",
    ])
    docs = [
        {"id": "sr-1", "type": "SR", "title": "Search report", "language": "en", "issued_on": "2023-09-10",
         "media_type": "application/pdf"},
        {"id": "wo-1", "type": "WO", "title": "Written opinion", "language": "en", "issued_on": "2023-09-10",
         "media_type": "application/pdf", "allowable_claims": allowable},
    ]
    files = {"sr-1": sr, "wo-1": wo}
    if n % 2 == 0:
        files["claims-1"] = render(f"Claims examined - {number}", [f"{c}. A system according to claim 1, wherein ..."
                                                                    for c in range(1, 9)])
        docs.append({"id": "claims-1", "type": "CLAIMS", "title": "Claims examined", "language": "en",
                     "media_type": "application/pdf"})
    citations = [{"cited": d, "category": c, "claims": cl} for d, c, cl in cites]
    return docs, files, citations


def _manifest(app: tuple, docs: list[dict], files: dict[str, bytes], citations: list[dict]) -> dict:
    import hashlib

    office, number, filed, title, priorities, pct, publication = app
    for d in docs:
        d["sha256"] = hashlib.sha256(files[d["id"]]).hexdigest()
        d["size"] = len(files[d["id"]])
    return {
        "office": office,
        "application": {
            "number": number, "filing_date": filed, "title": title, "ipc": ["H04L 9/32"],
            "priorities": [{"office": o, "number": n, "date": d} for o, n, d in priorities],
            "pct": pct,
            "publication": {"number": publication[0], "date": publication[1]} if publication else None,
        },
        "documents": docs,
        "citations": citations,
        "signed_at": (datetime.now(timezone.utc) - timedelta(minutes=1)).replace(microsecond=0).isoformat()
        .replace("+00:00", "Z"),
    }


def seed(url: str, settings: Settings) -> dict:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as s:
            admin, secret = registry.create_client(s, office_code=None, roles=["admin"], name="demo admin",
                                                   actor="demo")
    finally:
        engine.dispose()
    creds = {"url": url, "admin": {"client_id": admin.client_id, "client_secret": secret}, "offices": {},
             "people": {}}
    keys_dir = settings.home / "demo-keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    admin_api = ExchangeClient(url, admin.client_id, secret)
    keys: dict[str, PrivateKey] = {}
    creds["webhook_secrets"] = {}
    for code, name in OFFICES.items():
        admin_api.request("POST", "/v1/offices", json={"code": code, "name": name})
        key = generate_private_key("ES256")
        (keys_dir / f"{code}.private.pem").write_text(key.pem)
        (keys_dir / f"{code}.private.pem").chmod(0o600)
        admin_api.request("POST", f"/v1/offices/{code}/keys",
                          json={"kid": key.kid, "alg": key.alg, "public_key_pem": key.public().pem})
        c = admin_api.request("POST", f"/v1/offices/{code}/clients",
                              json={"name": f"{code} office system", "roles": ["depositor", "examiner", "office-admin"]}).json()
        creds["offices"][code] = {"client_id": c["client_id"], "client_secret": c["client_secret"], "kid": key.kid,
                                  "private_key": str(keys_dir / f"{code}.private.pem")}
        keys[code] = key
    admin_api.request("POST", "/v1/agreements", json={
        "name": "ASEAN Patent Examination Co-operation", "program": "ASPEC", "members": ASEAN,
        "document_types": ["SR", "WO", "ER", "ISR", "WOISA", "IPRP", "CLAIMS", "CCT", "GRANT", "REFUSAL"],
        "valid_from": "2009-06-15T00:00:00Z", "require_corresponding": True, "share_unpublished": False})
    admin_api.request("POST", "/v1/agreements", json={
        "name": "CASE-style sharing", "program": "CASE", "members": ["JP", "US", "EP", "AU", "KR", "SG", "MY"],
        "document_types": ["SR", "WO", "ER", "ISR", "WOISA"], "valid_from": "2020-01-01T00:00:00Z",
        "require_corresponding": True, "share_unpublished": False})
    for code in ("SG", "MY", "TH"):  # office systems listening: the demo's own receiver shows what arrives
        o = creds["offices"][code]
        hook = ExchangeClient(url, o["client_id"], o["client_secret"]).request(
            "POST", f"/v1/offices/{code}/webhooks", json={"url": f"{url}/_demo/webhooks/{code}"}).json()
        creds["webhook_secrets"][code] = hook["secret"]
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as s:
            for code in [None, *OFFICES]:
                name = "admin" if code is None else f"examiner.{code.lower()}"
                password = f"demo-{name}-pass"
                users.create_user(s, username=name, display_name="Exchange administrator" if code is None
                                  else f"Examiner at {code}", office=code,
                                  roles=["admin"] if code is None else ["examiner"], password=password,
                                  email=None, actor="demo")
                creds["people"][code or "admin"] = {"username": name, "password": password}
            for code in OFFICES:
                name, password = f"admin.{code.lower()}", f"demo-admin.{code.lower()}-pass"
                users.create_user(s, username=name, display_name=f"Office administrator at {code}", office=code,
                                  roles=["office-admin", "examiner"], password=password, email=None, actor="demo")
                creds["people"][f"{code}-admin"] = {"username": name, "password": password}
    finally:
        engine.dispose()
    (settings.home / "demo.json").write_text(json.dumps(creds, indent=2))
    n = 0
    for family in FAMILIES:
        for app in family:
            office = app[0]
            if office in ("US",):
                continue  # not every member has results in the exchange
            docs, files, citations = _documents(office, app[1], app[3], n)
            m = _manifest(app, docs, files, citations)
            token = jws.sign(json.dumps(m, separators=(",", ":")).encode(), keys[office])
            tmp = settings.home / "demo-docs" / f"{n}"
            tmp.mkdir(parents=True, exist_ok=True)
            paths = {}
            for doc_id, data in files.items():
                (tmp / f"{doc_id}.pdf").write_bytes(data)
                paths[doc_id] = tmp / f"{doc_id}.pdf"
            o = creds["offices"][office]
            ExchangeClient(url, o["client_id"], o["client_secret"]).deposit(token, paths)
            n += 1
    creds["dossiers"] = n
    return creds


def run(host: str, port: int) -> None:
    import uvicorn

    import migrations

    from .app import create_app

    # The demo's webhooks go to its own receiver on loopback, which the guard must let through.
    os.environ.setdefault("EXCHANGE_WEBHOOK_ALLOW_HOSTS", f"{host}/32" if host[0].isdigit() else host)
    settings = Settings.from_env(public_url=f"http://{host}:{port}")
    settings.home.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.database_url)
    from .cli import _embedded_worker
    from .routes import demo_sink

    worker = _embedded_worker(settings)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, extra_routers=(demo_sink.router,)), host=host,
                                           port=port, log_level="warning"))
    creds_path = settings.home / "demo.json"

    def after_start() -> None:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or server.should_exit:
                return
            time.sleep(0.05)
        url = f"http://{host}:{port}"
        if creds_path.exists() and "dossiers" in json.loads(creds_path.read_text()):
            creds = json.loads(creds_path.read_text())
            reused = True
        else:
            click.echo("seeding the demo exchange (offices, keys, signed dossiers)…", err=True)
            creds = seed(url, settings)
            creds_path.write_text(json.dumps(creds, indent=2))
            creds_path.chmod(0o600)
            reused = False
        _banner(url, creds, creds_path, reused)

    threading.Thread(target=after_start, daemon=True).start()
    try:
        server.run()
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def _banner(url: str, creds: dict, path: Path, reused: bool) -> None:
    lines = [
        "",
        f"The exchange is running at {url}  (API docs: {url}/docs)",
        f"{'Reusing' if reused else 'Seeded'} {len(creds['offices'])} offices and {creds.get('dossiers', 0)} signed dossiers;"
        f" data in {path.parent}",
        "",
        "Sign in with a browser:",
        f"  administrator:         {creds['people']['admin']['username']} / {creds['people']['admin']['password']}",
    ]
    for code in ("SG", "MY", "TH", "VN", "PH"):
        p = creds["people"][code]
        lines.append(f"  examiner at {code}:        {p['username']} / {p['password']}")
    lines += ["  (every office has examiner.<code> and admin.<code>; passwords in the file below)", "",
              "API clients (OAuth 2 client credentials):",
              f"  administrator:         {creds['admin']['client_id']}  {creds['admin']['client_secret']}"]
    for code in ("SG", "MY", "TH"):
        o = creds["offices"][code]
        lines.append(f"  {code} office system:      {o['client_id']}  {o['client_secret']}")
    lines += [f"All credentials: {path}",
              f"Try:  curl -s -d grant_type=client_credentials -d client_id=… -d client_secret=… {url}/oauth/token",
              f"Webhooks received by the demo's office systems: {url}/_demo/webhooks",
              "Stop with Ctrl-C; start again to reuse the data.", ""]
    click.echo("\n".join(lines))
