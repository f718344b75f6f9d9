"""Celery side: the outbox relay, notifications, tracking, integrity scrub, statistics."""
