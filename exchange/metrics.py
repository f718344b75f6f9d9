"""Prometheus metrics with ``prometheus-client``, and ``GET /metrics`` (text exposition format
0.0.4).

Two kinds of figures:

- **counted** as things happen: deposits, refusals, access decisions, HTTP requests. They start
  at zero, as Prometheus expects of counters (``rate()`` handles a reset). Under ``exchange
  serve`` the client library's multiprocess mode is on (``PROMETHEUS_MULTIPROC_DIR``, set up by
  :mod:`exchange.metrics_dir` before any process imports the library): each process writes its
  figures to a file there and a scrape of any of the ``--workers N`` processes reads them all,
  counters summed. Without it (an app in a test, say) a process reports its own.
- **read from the database at scrape time**: webhook deliveries by status (the dead ones are
  the dead letters), the outbox queue (unsent events and the age of the oldest), dead-lettered
  events, and blob integrity as the scrub left it. Every process answers the same.

Label values come from small fixed sets (offices, problem codes, route templates, statuses),
never from ids, so the number of series stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime

import prometheus_client
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from dossiers.db import utcnow
from dossiers.models import Blob, OutboxEvent, WebhookDelivery

from .deps import public
from .metrics_dir import ENV as MULTIPROC_ENV

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# No `_created` series: the figures are what they were before the client library.
prometheus_client.disable_created_metrics()


class _Labelled:
    """A metric of the client library, with labels given as keywords: ``inc(office="SG")``."""

    def __init__(self, metric):
        self.metric = metric
        self.name = metric._name

    def _child(self, labels: dict[str, str]):
        return self.metric.labels(**{k: str(v) for k, v in labels.items()}) if labels else self.metric

    def value(self, **labels: str) -> float:
        """This process's figure (for tests of a single process)."""
        wanted = {k: str(v) for k, v in labels.items()}
        return sum(s.value for m in self.metric.collect() for s in m.samples
                   if s.name in (self.name, f"{self.name}_total") and s.labels == wanted)


class Counter(_Labelled):
    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)


class Gauge(_Labelled):
    def set(self, value: float, **labels: str) -> None:
        self._child(labels).set(value)


class Histogram(_Labelled):
    def observe(self, value: float, **labels: str) -> None:
        self._child(labels).observe(value)


class Registry:
    """The counted metrics of this process (not the client library's default registry, which
    also holds the interpreter's own figures)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)

    def counter(self, name: str, help: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(prometheus_client.Counter(name, help, tuple(labels), registry=self.registry))

    def gauge(self, name: str, help: str, labels: Iterable[str] = ()) -> Gauge:
        # Several processes: the largest value (only one process sets a gauge of ours; others hold 0).
        return Gauge(prometheus_client.Gauge(name, help, tuple(labels), registry=self.registry,
                                             multiprocess_mode="max"))

    def histogram(self, name: str, help: str, labels: Iterable[str] = (),
                  buckets: Iterable[float] = DEFAULT_BUCKETS) -> Histogram:
        return Histogram(prometheus_client.Histogram(name, help, tuple(labels), registry=self.registry,
                                                     buckets=tuple(buckets)))

    def collect(self) -> Iterable[Metric]:
        """Every process's figures in multiprocess mode, else this process's."""
        path = os.environ.get(MULTIPROC_ENV)
        if not path:
            return self.registry.collect()
        families = list(MultiProcessCollector(None, path=path).collect())
        # A family no process has a series of yet is still declared, as in a single process.
        named = {f.name for f in families}
        return families + [Metric(f.name, f.documentation, f.type) for f in self.registry.collect()
                           if f.name not in named]


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]):
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(families: Iterable[Metric]) -> str:
    """The text exposition format 0.0.4 of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry).decode()


def _gauge(name: str, help: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help, labels=list(labels))


# --- what this process counts ----------------------------------------------------------------

REGISTRY = Registry()

DEPOSITS = REGISTRY.counter(
    "exchange_deposits_total",
    "Deposits accepted, by depositing office and result: created, or already-deposited (the same signed "
    "manifest again, answered with the first receipt).", ("office", "result"))
DEPOSIT_BYTES = REGISTRY.counter(
    "exchange_deposit_bytes_total", "Bytes of the documents of created dossiers, by depositing office.", ("office",))
DEPOSIT_REFUSALS = REGISTRY.counter(
    "exchange_deposit_refusals_total", "Deposits refused, by the problem code of the refusal.", ("code",))
ACCESS_DECISIONS = REGISTRY.counter(
    "exchange_access_decisions_total",
    "Audited decisions on reading a dossier, by outcome (granted, denied) and the kind of rule that decided "
    "(own-office, agreement, aspec-request, deny, unknown-dossier, document-not-shared).", ("outcome", "rule"))
HTTP_REQUESTS = REGISTRY.counter(
    "exchange_http_requests_total", "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"))
HTTP_DURATION = REGISTRY.histogram(
    "exchange_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response body, by method and route template.",
    ("method", "route"))


def deposit_accepted(office: str | None, created: bool, size: int) -> None:
    DEPOSITS.inc(office=office or "", result="created" if created else "already-deposited")
    if created:
        DEPOSIT_BYTES.inc(size, office=office or "")


def deposit_refused(code: str) -> None:
    DEPOSIT_REFUSALS.inc(code=code)


def access_decision(granted: bool, rule: str) -> None:
    # A rule names its agreement or request ("agreement:12"); the kind alone keeps series few.
    kinds = sorted({part.split(":", 1)[0].strip() for part in rule.split(",") if part.strip()}) or ["deny"]
    ACCESS_DECISIONS.inc(outcome="granted" if granted else "denied", rule="+".join(kinds))


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.inc(method=method, route=route, status=str(status))
    HTTP_DURATION.observe(seconds, method=method, route=route)


# --- what the database says at scrape time ---------------------------------------------------

DELIVERY_STATUSES = ("pending", "delivered", "dead")
INTEGRITY_STATES = ("unverified", "ok", "corrupt", "missing")


def _timestamp(t: datetime | None) -> float:
    return t.timestamp() if t is not None else 0.0


def database_metrics(session_factory: sessionmaker, now: datetime | None = None) -> list[Metric]:
    """Gauges read now: a few aggregate queries, each on an index but the blob one (a count by
    state over the blob table)."""
    now = now or utcnow()
    up = _gauge("exchange_metrics_database_up",
               "1 if the database answered this scrape's queries; 0 and the figures below are left out if not.")
    deliveries = _gauge("exchange_webhook_deliveries",
                       "Webhook deliveries by status; dead ones are the dead letters (GET "
                       "/v1/offices/{code}/deliveries, redeliver).", ("status",))
    unsent = _gauge("exchange_outbox_unsent_events",
                   "Outbox events not yet published to the broker (dead-lettered ones excluded).")
    lag = _gauge("exchange_outbox_oldest_unsent_age_seconds",
                "Age of the oldest outbox event not yet published (0 when none waits): the relay's lag.")
    dead = _gauge("exchange_outbox_dead_events",
                 "Outbox events dead-lettered after the broker refused them too often (POST /v1/outbox/requeue).")
    blobs = _gauge("exchange_blobs", "Stored documents (blobs) by the integrity state the scrub last recorded.",
                  ("integrity",))
    verified = _gauge("exchange_blob_last_verified_timestamp_seconds",
                     "Unix time of the most recent integrity check of any blob (0 if none yet): a scrub that "
                     "stopped running shows here.")
    try:
        with session_factory() as s:
            by_status = dict(s.execute(select(WebhookDelivery.status, func.count())
                                       .group_by(WebhookDelivery.status)).all())
            # sent_at IS NULL first: the (sent_at, available_at) index answers both queries.
            n_unsent, oldest = s.execute(select(func.count(), func.min(OutboxEvent.created_at))
                                         .where(OutboxEvent.sent_at.is_(None), OutboxEvent.dead_at.is_(None))).one()
            n_dead = s.scalar(select(func.count()).select_from(OutboxEvent)
                              .where(OutboxEvent.sent_at.is_(None), OutboxEvent.dead_at.is_not(None)))
            by_state = {state: (n, last) for state, n, last in s.execute(
                select(Blob.integrity, func.count(), func.max(Blob.verified_at)).group_by(Blob.integrity))}
    except SQLAlchemyError:
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    for status in sorted({*DELIVERY_STATUSES, *by_status}):
        deliveries.add_metric([status], by_status.get(status, 0))
    unsent.add_metric([], n_unsent)
    lag.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
    dead.add_metric([], n_dead or 0)
    for state in sorted({*INTEGRITY_STATES, *by_state}):
        blobs.add_metric([state], by_state.get(state, (0, None))[0])
    last = max((t for _, t in by_state.values() if t is not None), default=None)
    verified.add_metric([], _timestamp(last))
    return [up, deliveries, unsent, lag, dead, blobs, verified]


def broker_metrics(broker_url: str) -> list[Metric]:
    """The workers' lag: tasks waiting in the broker, read at scrape time."""
    from workers.app import queue_depth

    up = _gauge("exchange_metrics_broker_up", "1 if the broker answered this scrape; 0 and the queue depth is "
               "left out if not.")
    depth = _gauge("exchange_broker_queue_messages",
                  "Tasks waiting in the broker's queue, not yet taken by a worker: growing means too few workers.")
    try:
        n = queue_depth(broker_url)
    except Exception:  # noqa: BLE001 - any broker failure is a 0 here; /readyz names it
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    if n is None:
        return [up]
    depth.add_metric([], n)
    return [up, depth]


def render(session_factory: sessionmaker, broker_url: str | None = None) -> str:
    families = [*REGISTRY.collect(), *database_metrics(session_factory)]
    if broker_url:
        families += broker_metrics(broker_url)
    return exposition(families)


# --- the route -------------------------------------------------------------------------------

router = APIRouter(tags=["operations"])


@router.get("/metrics", dependencies=[Depends(public)], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics, text exposition format 0.0.4.

    Public, like ``/healthz`` and ``/readyz``, by convention for Prometheus: it is meant to be
    scraped over the deployment's internal network, and the edge in front of the exchange
    should not route it. It shows counts and ages only: no office's dossiers, ids or names
    beyond office codes."""
    return Response(render(request.app.state.session_factory, request.app.state.settings.broker_url),
                    media_type=CONTENT_TYPE)
