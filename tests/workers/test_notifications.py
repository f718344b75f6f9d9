"""Events end to end on real parts: the API writes them to the outbox, the relay publishes to
Redis, a Celery worker process fans them out and delivers signed webhooks, e-mail and inbox
notifications. Faults: receiver down and flapping, 410, exhaustion, broker down during a
deposit, a worker killed mid-delivery."""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa

from crypto import webhooks
from tests.support import deposit, manifest, sign
from tests.workers.conftest import RedisServer, wait_for

DOCS = {"sr-1": b"%PDF search report", "er-1": b"%PDF examination report"}
TYPES = {"sr-1": "SR", "er-1": "ER"}


class World:
    def __init__(self, stack, receiver_url: str | None = None, events=()):
        self.stack = stack
        self.admin = stack.admin()
        self.k = {c: stack.office(c, admin=self.admin) for c in ("SG", "MY", "TH")}
        r = httpx.post(f"{stack.url}/v1/agreements", headers=self.admin, json={
            "name": "ASPEC", "program": "ASPEC", "members": ["SG", "MY", "TH"], "document_types": ["SR", "ER"],
            "valid_from": "2020-01-01T00:00:00Z"})
        assert r.status_code == 201
        r = httpx.post(f"{stack.url}/v1/applications", headers=self.k["SG"].headers, json={
            "number": "10202301234X", "filing_date": "2023-03-01", "title": "t",
            "priorities": [{"office": "MY", "number": "PI2022001234", "date": "2022-03-02"}]})
        assert r.status_code == 201
        self.hooks = {}
        if receiver_url:
            for office in ("SG", "TH", "MY"):
                r = httpx.post(f"{stack.url}/v1/offices/{office}/webhooks", headers=self.k[office].headers,
                               json={"url": f"{receiver_url}/{office}", "events": list(events)})
                assert r.status_code == 201, r.text
                self.hooks[office] = r.json()

    def deposit_my(self, number="PI2022001234"):
        my = self.k["MY"]
        r = deposit(my, sign(manifest("MY", DOCS, number=number, types=TYPES), my.key), DOCS)
        assert r.status_code == 201, r.text
        return r.json()["dossier_id"]

    def rows(self, sql: str, **params):
        with self.stack.engine.connect() as c:
            return c.execute(sa.text(sql), params).all()


def verify(received, hook: dict, public_key: str) -> None:
    webhooks.verify(received.body, received.headers, secret=hook["secret"])
    webhooks.verify(received.body, received.headers, public_key=public_key)


def test_deposit_reaches_exactly_the_offices_that_may_see_it(make_notify_stack, broker_url, receiver):
    stack = make_notify_stack(broker_url)
    w = World(stack, receiver.url, events=["dossier.deposited"])
    stack.start_worker()
    dossier = w.deposit_my()
    got = wait_for(lambda: receiver.of("dossier.deposited"), 30, what="the webhook")
    time.sleep(2)  # anything else would have arrived by now
    assert [r.path for r in receiver.requests] == ["/hooks/SG"]  # TH has no corresponding application
    body = got[0].json
    assert body["data"]["dossier_id"] == dossier and body["data"]["document_types"] == ["ER", "SR"]
    assert "sr-1" not in got[0].body.decode() or "href" not in got[0].body.decode()  # thin: ids and links
    public_key = httpx.get(f"{stack.url}/v1/webhooks/public-key").json()["public_key"]
    verify(got[0], w.hooks["SG"], public_key)
    with pytest.raises(webhooks.WebhookSignatureInvalid):
        webhooks.verify(got[0].body + b" ", got[0].headers, secret=w.hooks["SG"]["secret"])
    log = httpx.get(f"{stack.url}/v1/offices/SG/deliveries", headers=w.k["SG"].headers).json()
    assert [(d["status"], d["attempts"], d["id"]) for d in log] == [("delivered", 1, got[0].headers["webhook-id"])]


def test_flapping_receiver_gets_the_same_webhook_id_until_it_acknowledges(make_notify_stack, broker_url, receiver):
    receiver.script = [503, (429, {"Retry-After": "1"}), 500]
    stack = make_notify_stack(broker_url, schedule=(1, 1, 1, 1))
    w = World(stack, receiver.url, events=["dossier.deposited"])
    stack.start_worker()
    w.deposit_my()
    wait_for(lambda: len(receiver.requests) >= 4, 60, what="four attempts")
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1
    d = wait_for(lambda: [x for x in httpx.get(f"{stack.url}/v1/offices/SG/deliveries",
                                              headers=w.k["SG"].headers).json() if x["status"] == "delivered"], 20)
    assert d[0]["attempts"] == 4 and d[0]["last_status_code"] == 200


def test_gone_disables_and_exhaustion_dead_letters(make_notify_stack, broker_url, receiver):
    stack = make_notify_stack(broker_url, schedule=(1, 1))
    w = World(stack, receiver.url, events=["dossier.deposited", "agreement.changed"])
    receiver.script = [410]
    stack.start_worker()
    w.deposit_my()
    wait_for(lambda: [h for h in httpx.get(f"{stack.url}/v1/offices/SG/webhooks", headers=w.k["SG"].headers).json()
                      if h["status"] == "disabled"], 30, what="the subscription to be disabled")
    # MY's and TH's hooks see agreement changes; make every attempt fail: 3 attempts, then dead.
    receiver.script = [500] * 20
    aid = httpx.get(f"{stack.url}/v1/agreements", headers=w.admin).json()[0]["id"]
    httpx.post(f"{stack.url}/v1/agreements/{aid}/suspend", headers=w.admin)
    dead = wait_for(lambda: httpx.get(f"{stack.url}/v1/offices/TH/deliveries", params={"status": "dead"},
                                      headers=w.k["TH"].headers).json(), 60, what="a dead letter")
    assert dead[0]["attempts"] == 3 and dead[0]["topic"] == "agreement.changed"
    inbox = wait_for(lambda: [n for n in httpx.get(f"{stack.url}/v1/notifications", headers=w.k["TH"].headers).json()
                              if n["kind"] == "webhook.dead"], 90, what="the office-admin's notice",
                     explain=lambda: "outbox: {}\nnotifications: {}\nworker log:\n{}".format(
                         w.rows("SELECT id, topic, attempts, sent_at, dead_at, last_error FROM outbox_event"
                                " WHERE topic = 'webhook.dead'"),
                         w.rows("SELECT recipient, kind, event_id FROM notification"), stack.worker_log()))
    assert dead[0]["id"] in inbox[0]["title"]
    # Redeliver, now that the receiver is fixed: same webhook-id.
    receiver.script = []
    r = httpx.post(f"{stack.url}/v1/offices/TH/deliveries/{dead[0]['id']}/redeliver", headers=w.k["TH"].headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    wait_for(lambda: [x for x in receiver.requests if x.headers["webhook-id"] == dead[0]["id"]
                      and x.path == "/hooks/TH"][3:], 30, what="the redelivery")


def test_watch_notifies_inbox_and_email_and_access_tells_the_depositor(make_notify_stack, broker_url, receiver, smtp):
    stack = make_notify_stack(broker_url, smtp_url=smtp.url)
    w = World(stack, receiver.url, events=["dossier.accessed"])
    r = httpx.post(f"{stack.url}/v1/watches", headers=w.k["SG"].headers, json={
        "application": {"office": "SG", "number": "10202301234X"}, "scope": "family", "document_types": ["SR"],
        "email": "examiner@ipos.example"})
    assert r.status_code == 201, r.text
    stack.start_worker()
    dossier = w.deposit_my()
    inbox = wait_for(lambda: httpx.get(f"{stack.url}/v1/notifications", headers=w.k["SG"].headers).json(), 30,
                     what="the inbox notification")
    assert inbox[0]["body"]["dossier_id"] == dossier and "MY deposited" in inbox[0]["title"]
    mail = wait_for(lambda: smtp.messages, 30, what="the e-mail")
    assert mail[0].rcpt_tos == ["examiner@ipos.example"] and b"PI2022001234" in mail[0].content
    assert httpx.post(f"{stack.url}/v1/notifications/{inbox[0]['id']}/read",
                      headers=w.k["SG"].headers).json()["read_at"]
    # SG reads a document: MY (the depositor) is told who read what.
    assert httpx.get(f"{stack.url}/v1/dossiers/{dossier}/documents/sr-1", headers=w.k["SG"].headers).status_code == 200
    got = wait_for(lambda: receiver.of("dossier.accessed"), 30, what="dossier.accessed")
    assert got[0].path == "/hooks/MY" and got[0].json["data"]["accessed_by"] == "SG"
    timeline = httpx.get(f"{stack.url}/v1/dossiers/{dossier}/timeline", headers=w.k["MY"].headers).json()["events"]
    assert [e["event"] for e in timeline][:1] == ["deposited"] and any(
        e["event"] == "accessed" and e["office"] == "SG" for e in timeline)
    assert httpx.get(f"{stack.url}/v1/dossiers/{dossier}/timeline", headers=w.k["SG"].headers).status_code == 404


def test_broker_down_during_a_deposit_loses_nothing(make_notify_stack, receiver, tmp_path):
    broker = RedisServer(tmp_path)
    broker.start()
    stack = make_notify_stack(broker.url)
    w = World(stack, receiver.url, events=["dossier.deposited"])
    stack.start_worker()
    broker.stop()
    dossier = w.deposit_my()  # the deposit does not need the broker
    wait_for(lambda: w.rows("SELECT 1 FROM outbox_event WHERE topic='dossier.deposited' AND last_error IS NOT NULL"),
             30, what="a failed publication to be recorded")
    assert not receiver.requests
    broker.start()  # same port: the worker and the relay reconnect
    got = wait_for(lambda: receiver.of("dossier.deposited"), 90, what="the webhook after recovery")
    time.sleep(3)
    assert len(receiver.of("dossier.deposited")) == 1 and got[0].json["data"]["dossier_id"] == dossier
    assert w.rows("SELECT count(*) FROM webhook_delivery")[0][0] == 1
    broker.stop()


def test_broker_restarted_without_its_queue_loses_no_event(make_notify_stack, receiver, tmp_path):
    """The relay published the event, then the broker restarted empty (no persistence) before any
    worker took the task: the event is published again and delivered once."""
    broker = RedisServer(tmp_path)
    broker.start()
    stack = make_notify_stack(broker.url, republish=3)
    w = World(stack, receiver.url, events=["dossier.deposited"])
    dossier = w.deposit_my()  # no worker yet: the task waits in the broker
    wait_for(lambda: w.rows("SELECT 1 FROM outbox_event WHERE topic='dossier.deposited' AND sent_at IS NOT NULL"),
             30, what="the event to be published")
    broker.stop()
    broker.start()  # same port, empty
    stack.start_worker()
    got = wait_for(lambda: receiver.of("dossier.deposited"), 60, what="the webhook after the broker's restart",
                   explain=lambda: "outbox: "
                   + str(w.rows("SELECT topic, attempts, sent_at, processed_at, last_error FROM outbox_event")))
    time.sleep(3)
    assert len(receiver.of("dossier.deposited")) == 1 and got[0].json["data"]["dossier_id"] == dossier
    assert w.rows("SELECT attempts FROM outbox_event"
                  " WHERE topic='dossier.deposited' AND processed_at IS NOT NULL")[0][0] >= 1
    broker.stop()


def test_worker_killed_mid_delivery_is_delivered_once_under_one_id(make_notify_stack, broker_url, receiver):
    receiver.hold_first = 4.0  # the first attempt hangs while the worker is killed
    stack = make_notify_stack(broker_url, lease=5)
    w = World(stack, receiver.url, events=["dossier.deposited"])
    stack.start_worker()
    w.deposit_my()
    wait_for(lambda: receiver.requests, 30, what="the first attempt")
    stack.kill_workers()  # SIGKILL, the whole worker process group
    stack.start_worker()
    wait_for(lambda: w.rows("SELECT 1 FROM webhook_delivery WHERE status='delivered'"), 60,
             what="delivery by the new worker")
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert w.rows("SELECT count(*) FROM webhook_delivery")[0][0] == 1


def test_private_targets_are_refused_at_registration(stack):
    kit = stack.office("SG")
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://10.0.0.5/", "ftp://example.org/"):
        r = httpx.post(f"{stack.url}/v1/offices/SG/webhooks", headers=kit.headers, json={"url": url})
        assert r.status_code == 422 and r.json()["code"] == "webhook-target-refused", (url, r.text)
    assert stack.count("webhook_subscription") == 0


def _restart_postgresql() -> None:
    import shutil
    import subprocess
    from pathlib import Path

    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        from tests.conftest import missing

        missing("pg_ctlcluster", "this test restarts the local PostgreSQL cluster")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    wait_for(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0, 60,
             what="PostgreSQL to accept connections again")


def test_database_restart_loses_no_event(make_notify_stack, broker_url, receiver):
    stack = make_notify_stack(broker_url)
    w = World(stack, receiver.url, events=["dossier.deposited"])
    stack.start_worker()
    first = w.deposit_my()
    wait_for(lambda: receiver.of("dossier.deposited"), 30, what="the first webhook")
    _restart_postgresql()  # every open connection of the API and of the worker is cut
    second = w.deposit_my(number="PI2022001234")  # same application, a new dossier (a new manifest)
    got = wait_for(lambda: receiver.of("dossier.deposited")[1:], 60, what="the webhook after the restart")
    assert {r.json["data"]["dossier_id"] for r in receiver.of("dossier.deposited")} == {first, second}
    assert got and len(receiver.of("dossier.deposited")) == 2
