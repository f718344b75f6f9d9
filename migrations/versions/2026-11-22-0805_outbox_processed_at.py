"""outbox events record when a worker processed them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:05:00+00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossiers.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbox_event', sa.Column('processed_at', dossiers.db.UTCDateTime(timezone=True), nullable=True))
    # Events published before this revision are taken as processed: their deliveries exist.
    op.execute("UPDATE outbox_event SET processed_at = sent_at WHERE sent_at IS NOT NULL")
    op.create_index('ix_outbox_event_unprocessed', 'outbox_event', ['sent_at'], unique=False,
                    postgresql_where=sa.text('processed_at IS NULL'), sqlite_where=sa.text('processed_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_outbox_event_unprocessed', table_name='outbox_event',
                  postgresql_where=sa.text('processed_at IS NULL'), sqlite_where=sa.text('processed_at IS NULL'))
    op.drop_column('outbox_event', 'processed_at')
