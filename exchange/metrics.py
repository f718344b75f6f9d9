"""Prometheus metrics without a client library: counters, gauges and histograms with labels,
thread-safe, rendered in the text exposition format 0.0.4; and ``GET /metrics``.

Two kinds of figures:

- **counted by this process** as things happen: deposits, refusals, access decisions, HTTP
  requests. They start at zero when the process starts, as Prometheus expects of counters
  (``rate()`` handles the reset). Behind ``exchange serve --workers N`` each process counts
  its own requests, and a scrape reaches one of them.
- **read from the database at scrape time**: webhook deliveries by status (the dead ones are
  the dead letters), the outbox queue (unsent events and the age of the oldest), dead-lettered
  events, and blob integrity as the scrub left it. Every process answers the same.

Label values come from small fixed sets (offices, problem codes, route templates, statuses),
never from ids, so the number of series stays bounded.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from dossiers.db import utcnow
from dossiers.models import Blob, OutboxEvent, WebhookDelivery

from .deps import public

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Sample = tuple[str, dict[str, str], float]  # (name suffix, labels, value)


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


class Metric:
    """One metric family: a name, a help text, label names, and a value per label set."""

    kind = "untyped"
    _reserved: frozenset[str] = frozenset()

    def __init__(self, name: str, help: str, labels: Iterable[str] = ()):
        labels = tuple(labels)
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__") or label in self._reserved:
                raise ValueError(f"invalid label name {label!r} for {name}")
        self.name, self.help, self.labelnames = name, help, labels
        self._values: dict[tuple[str, ...], object] = {}
        self._lock = threading.Lock()

    def _key(self, labels: dict) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {', '.join(self.labelnames) or '(none)'}, "
                             f"not {', '.join(sorted(labels)) or '(none)'}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _labels(self, key: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.labelnames, key))

    def samples(self) -> Iterator[Sample]:
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield "", self._labels(key), float(value)  # type: ignore[arg-type]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for suffix, labels, value in self.samples():
            inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            lines.append(f"{self.name}{suffix}{{{inner}}} {format_value(value)}" if inner
                         else f"{self.name}{suffix} {format_value(value)}")
        return lines


class Counter(Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount  # type: ignore[operator]

    def value(self, **labels: str) -> float:
        with self._lock:
            return float(self._values.get(self._key(labels), 0.0))  # type: ignore[arg-type]


class Gauge(Metric):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Histogram(Metric):
    kind = "histogram"
    _reserved = frozenset({"le"})

    def __init__(self, name: str, help: str, labels: Iterable[str] = (), buckets: Iterable[float] = DEFAULT_BUCKETS):
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._values.setdefault(key, ([0] * len(self.buckets), [0.0, 0]))  # type: ignore[misc]
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
                    break
            total[0] += value
            total[1] += 1

    def samples(self) -> Iterator[Sample]:
        with self._lock:
            items = sorted((k, (list(c), list(t))) for k, (c, t) in self._values.items())  # type: ignore[misc]
        for key, (counts, (total, n)) in items:
            labels = self._labels(key)
            cumulative = 0
            for bound, c in zip(self.buckets, counts):
                cumulative += c
                yield "_bucket", {**labels, "le": format_value(bound)}, cumulative
            yield "_bucket", {**labels, "le": "+Inf"}, n
            yield "_sum", labels, total
            yield "_count", labels, n


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()

    def register(self, metric: Metric) -> Metric:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labels: Iterable[str] = ()) -> Counter:
        return self.register(Counter(name, help, labels))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labels: Iterable[str] = ()) -> Gauge:
        return self.register(Gauge(name, help, labels))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, labels: Iterable[str] = (), **kw) -> Histogram:
        return self.register(Histogram(name, help, labels, **kw))  # type: ignore[return-value]

    def render(self, extra: Iterable[Metric] = ()) -> str:
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for m in [*metrics, *extra]:
            lines += m.render()
        return "\n".join(lines) + "\n"


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
    up = Gauge("exchange_metrics_database_up",
               "1 if the database answered this scrape's queries; 0 and the figures below are left out if not.")
    deliveries = Gauge("exchange_webhook_deliveries",
                       "Webhook deliveries by status; dead ones are the dead letters (GET "
                       "/v1/offices/{code}/deliveries, redeliver).", ("status",))
    unsent = Gauge("exchange_outbox_unsent_events",
                   "Outbox events not yet published to the broker (dead-lettered ones excluded).")
    lag = Gauge("exchange_outbox_oldest_unsent_age_seconds",
                "Age of the oldest outbox event not yet published (0 when none waits): the relay's lag.")
    dead = Gauge("exchange_outbox_dead_events",
                 "Outbox events dead-lettered after the broker refused them too often (POST /v1/outbox/requeue).")
    blobs = Gauge("exchange_blobs", "Stored documents (blobs) by the integrity state the scrub last recorded.",
                  ("integrity",))
    verified = Gauge("exchange_blob_last_verified_timestamp_seconds",
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
        up.set(0)
        return [up]
    up.set(1)
    for status in sorted({*DELIVERY_STATUSES, *by_status}):
        deliveries.set(by_status.get(status, 0), status=status)
    unsent.set(n_unsent)
    lag.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
    dead.set(n_dead or 0)
    for state in sorted({*INTEGRITY_STATES, *by_state}):
        blobs.set(by_state.get(state, (0, None))[0], integrity=state)
    last = max((t for _, t in by_state.values() if t is not None), default=None)
    verified.set(_timestamp(last))
    return [up, deliveries, unsent, lag, dead, blobs, verified]


def broker_metrics(broker_url: str) -> list[Metric]:
    """The workers' lag: tasks waiting in the broker, read at scrape time."""
    from workers.app import queue_depth

    up = Gauge("exchange_metrics_broker_up", "1 if the broker answered this scrape; 0 and the queue depth is "
               "left out if not.")
    depth = Gauge("exchange_broker_queue_messages",
                  "Tasks waiting in the broker's queue, not yet taken by a worker: growing means too few workers.")
    try:
        n = queue_depth(broker_url)
    except Exception:  # noqa: BLE001 - any broker failure is a 0 here; /readyz names it
        up.set(0)
        return [up]
    up.set(1)
    if n is None:
        return [up]
    depth.set(n)
    return [up, depth]


def render(session_factory: sessionmaker, broker_url: str | None = None) -> str:
    extra = database_metrics(session_factory)
    if broker_url:
        extra += broker_metrics(broker_url)
    return REGISTRY.render(extra)


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
