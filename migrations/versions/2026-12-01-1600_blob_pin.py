"""blob pins: the deposits in flight that rely on a blob's bytes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:00:00+00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossiers.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'blob_pin',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('deposit_id', sa.String(length=36), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', dossiers.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_blob_pin')),
    )
    op.create_index(op.f('ix_blob_pin_deposit_id'), 'blob_pin', ['deposit_id'], unique=False)
    op.create_index(op.f('ix_blob_pin_sha256'), 'blob_pin', ['sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_blob_pin_sha256'), table_name='blob_pin')
    op.drop_index(op.f('ix_blob_pin_deposit_id'), table_name='blob_pin')
    op.drop_table('blob_pin')
