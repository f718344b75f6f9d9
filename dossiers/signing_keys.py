"""The exchange's own signing keys (tokens and receipts), kept in the database so that
every API replica signs with the same key. Retired keys stay published until the
tokens and receipts they signed no longer need them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crypto import keys as ck

from .db import utcnow
from .models import SigningKey


def current(session: Session) -> ck.PrivateKey:
    row = session.scalars(
        select(SigningKey).where(SigningKey.retired_at.is_(None), SigningKey.alg == ck.EXCHANGE_ALGORITHM)
        .order_by(SigningKey.created_at.desc()).limit(1)
    ).first()
    if row is None:
        row = _create(session)
    return ck.PrivateKey(row.kid, row.alg, row.private_key_pem)


def _create(session: Session) -> SigningKey:
    key = ck.generate_private_key(ck.EXCHANGE_ALGORITHM)
    row = SigningKey(kid=key.kid, alg=key.alg, private_key_pem=key.pem, public_key_pem=key.public().pem)
    session.add(row)
    session.flush()
    return row


WEBHOOK_ALG = "EdDSA"


def webhook_key(session: Session) -> tuple[str, str]:
    """The exchange's Ed25519 key for ``v1a`` webhook signatures: (private "whsk_…", public "whpk_…")."""
    from crypto import webhooks

    row = session.scalars(
        select(SigningKey).where(SigningKey.alg == WEBHOOK_ALG, SigningKey.retired_at.is_(None)).limit(1)
    ).first()
    if row is None:
        private, public = webhooks.new_signing_keypair()
        row = SigningKey(kid="webhooks-" + public[5:21], alg=WEBHOOK_ALG, private_key_pem=private,
                         public_key_pem=public)
        session.add(row)
        session.flush()
    return row.private_key_pem, row.public_key_pem


def published(session: Session) -> list[ck.PublicKey]:
    now = utcnow()
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.published_until.is_(None), SigningKey.published_until > now),
               SigningKey.alg != WEBHOOK_ALG)
        .order_by(SigningKey.created_at)
    ).all()
    return [ck.PublicKey(r.kid, r.alg, r.public_key_pem) for r in rows]


def rotate(session: Session, *, keep_published: timedelta = timedelta(days=3650)) -> ck.PrivateKey:
    """Retire the current key and start a new one. Receipts are long-lived evidence, so the
    retired key stays in the JWKS for ``keep_published`` (ten years by default)."""
    now = utcnow()
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None),
                                                        SigningKey.alg == ck.EXCHANGE_ALGORITHM)):
        row.retired_at = now
        row.published_until = now + keep_published
    row = _create(session)
    return ck.PrivateKey(row.kid, row.alg, row.private_key_pem)
