"""The workers' building blocks run synchronously on the test stacks: relay dead-lettering,
the retry schedule, tracking reminders, the fan-out's idempotence."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from dossiers import tracking
from dossiers.db import utcnow
from tests.test_aspec import Aspec
from workers import notify, outbox


def test_relay_dead_letters_after_repeated_broker_failures_and_requeues(stack):
    admin = stack.admin()
    stack.office("SG", admin=admin)  # writes no event; an agreement does
    httpx.post(f"{stack.url}/v1/offices", headers=admin, json={"code": "MY", "name": "MY"})
    stack.server.config.app.state.relay.paused = True
    r = httpx.post(f"{stack.url}/v1/agreements", headers=admin, json={
        "name": "x", "program": "CASE", "members": ["SG", "MY"], "document_types": ["SR"],
        "valid_from": "2020-01-01T00:00:00Z"})
    assert r.status_code == 201

    def broken(ev):
        raise ConnectionError("broker down")

    with stack.engine.begin() as c:  # whatever the API's relay did, start from unsent
        c.execute(sa.text("UPDATE outbox_event SET sent_at = NULL, attempts = 0, dead_at = NULL"))
    for _ in range(outbox.MAX_ATTEMPTS):
        with stack.engine.begin() as c:
            c.execute(sa.text("UPDATE outbox_event SET available_at = :t"), {"t": utcnow() - timedelta(seconds=1)})
        assert outbox.relay_once(stack.session_factory, broken) == 0
    dead = httpx.get(f"{stack.url}/v1/outbox", params={"state": "dead"}, headers=admin).json()
    assert len(dead) == 1 and dead[0]["attempts"] == outbox.MAX_ATTEMPTS and "broker down" in dead[0]["last_error"]
    assert httpx.post(f"{stack.url}/v1/outbox/requeue", headers=admin).json() == {"requeued": 1}
    published = []
    assert outbox.relay_once(stack.session_factory, published.append) == 1 and len(published) == 1
    stack.server.config.app.state.relay.paused = False


def test_retry_schedule_jitter_and_retry_after():
    schedule = (5, 60, 300)
    for attempt, base in enumerate(schedule, 1):
        d = notify.next_delay(attempt, schedule, None)
        assert 0.9 * base <= d <= 1.1 * base
    assert notify.next_delay(4, schedule, None) is None  # exhausted
    assert notify.next_delay(1, schedule, 120) >= 120  # Retry-After wins when longer
    assert notify.next_delay(1, schedule, 10 ** 9) <= notify.MAX_RETRY_AFTER
    assert notify._retry_after("30") == 30 and notify._retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert notify._retry_after("soon") is None


def test_default_schedule_spans_about_three_days():
    from dossiers.settings import Settings

    total = sum(Settings.from_env({}).webhook_retry_schedule)
    assert 2.5 * 86400 <= total <= 3.5 * 86400


def test_fan_out_is_idempotent(stack):
    w = Aspec(stack)
    kit = w.k["SG"]
    r = httpx.post(f"{stack.url}/v1/offices/SG/webhooks", headers=kit.headers,
                   json={"url": "https://93.184.216.34/hook"})
    assert r.status_code == 201
    from tests.test_aspec import fo_dossier

    fo_dossier(w.k["MY"], published=True)
    with stack.engine.connect() as c:
        ev = c.execute(sa.text("SELECT id FROM outbox_event WHERE topic='dossier.deposited' "
                               "ORDER BY created_at DESC LIMIT 1")).scalar_one()
    first = notify.fan_out_event(stack.session_factory, ev)
    second = notify.fan_out_event(stack.session_factory, ev)
    assert len(first[0]) == 1 and first[0] == second[0]
    assert stack.count("webhook_delivery") == 1


def test_overdue_results_and_expiring_agreements_are_reminded_once(stack):
    w = Aspec(stack)
    r = w.request()
    assert r.json()["status"] == "accepted"
    with stack.engine.begin() as c:
        c.execute(sa.text("UPDATE aspec_request SET created_at = :t"), {"t": utcnow() - timedelta(days=200)})
        # The relied-on results came before the request; no examination report since.
        c.execute(sa.text("UPDATE dossier SET received_at = :t"), {"t": utcnow() - timedelta(days=300)})
    assert tracking.overdue_requests(stack.session_factory, days=120) == 1
    assert tracking.overdue_requests(stack.session_factory, days=120) == 0  # once
    aid = httpx.get(f"{stack.url}/v1/agreements", headers=w.admin).json()[0]["id"]
    with stack.engine.begin() as c:
        c.execute(sa.text("UPDATE agreement SET valid_until = :t WHERE id = :a"),
                  {"t": utcnow() + timedelta(days=10), "a": aid})
    assert tracking.expiring_agreements(stack.session_factory) == 1
    assert tracking.expiring_agreements(stack.session_factory) == 0
    with stack.engine.connect() as c:
        events = c.execute(sa.text("SELECT id, payload FROM outbox_event WHERE topic='tracking.reminder'")).all()
    offices = sorted((e[1] if isinstance(e[1], dict) else __import__("json").loads(e[1]))["office"] for e in events)
    assert offices == ["MY", "SG", "SG", "TH"]  # SG: overdue + expiry; MY, TH: expiry
    for e in events:
        notify.fan_out_event(stack.session_factory, e[0])
    inbox = httpx.get(f"{stack.url}/v1/notifications", headers=w.k["SG"].headers).json()
    assert sorted(n["kind"] for n in inbox) == ["agreement-expiry", "aspec-overdue"]


def test_a_published_event_no_worker_processed_is_published_again_then_dead_lettered(stack):
    """A task lost after publication (a broker restarted without persistence, a fan-out that
    failed) does not lose the event: the relay publishes it again until a worker processes it."""
    admin = stack.admin()
    stack.server.config.app.state.relay.paused = True
    for code in ("SG", "MY"):
        httpx.post(f"{stack.url}/v1/offices", headers=admin, json={"code": code, "name": code})
    r = httpx.post(f"{stack.url}/v1/agreements", headers=admin, json={
        "name": "x", "program": "CASE", "members": ["SG", "MY"], "document_types": ["SR"],
        "valid_from": "2020-01-01T00:00:00Z"})
    assert r.status_code == 201
    with stack.engine.begin() as c:
        c.execute(sa.text("UPDATE outbox_event SET sent_at = NULL, attempts = 0, dead_at = NULL"))
    lost: list[str] = []
    assert outbox.relay_once(stack.session_factory, lambda ev: lost.append(ev.id)) == 1
    # Not yet due again: a worker may still be on it.
    assert outbox.relay_once(stack.session_factory, lost.append, republish_after=timedelta(minutes=5)) == 0
    unprocessed = httpx.get(f"{stack.url}/v1/outbox", params={"state": "unprocessed"}, headers=admin).json()
    assert [e["id"] for e in unprocessed] == lost
    again: list[str] = []
    assert outbox.relay_once(stack.session_factory, lambda ev: again.append(ev.id), republish_after=timedelta(0)) == 1
    assert again == lost
    row = httpx.get(f"{stack.url}/v1/outbox", params={"state": "sent"}, headers=admin).json()[0]
    assert row["attempts"] == 1 and "not processed" in row["last_error"]
    # Processing the event (here, synchronously) ends it: nothing more is published.
    notify.fan_out_event(stack.session_factory, lost[0])
    assert outbox.relay_once(stack.session_factory, again.append, republish_after=timedelta(0)) == 0
    assert httpx.get(f"{stack.url}/v1/outbox", params={"state": "processed"}, headers=admin).json()[0]["id"] == lost[0]
    # An event no worker ever processes ends dead-lettered, visible to administrators.
    with stack.engine.begin() as c:
        c.execute(sa.text("UPDATE outbox_event SET processed_at = NULL, attempts = :n"),
                  {"n": outbox.MAX_ATTEMPTS - 1})
    assert outbox.relay_once(stack.session_factory, again.append, republish_after=timedelta(0)) == 0
    dead = httpx.get(f"{stack.url}/v1/outbox", params={"state": "dead"}, headers=admin).json()
    assert [e["id"] for e in dead] == lost
    # A late worker still processes it, and it is no longer dead.
    notify.fan_out_event(stack.session_factory, lost[0])
    assert httpx.get(f"{stack.url}/v1/outbox", params={"state": "dead"}, headers=admin).json() == []
    stack.server.config.app.state.relay.paused = False


def test_outbox_listing_refuses_an_unknown_state(stack):
    r = httpx.get(f"{stack.url}/v1/outbox", params={"state": "lost"}, headers=stack.admin())
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "unprocessed" in r.json()["detail"]
