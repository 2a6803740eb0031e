"""Outbox attempts in doubt: exactly once at a receiver that does not deduplicate.

Adds to ``outbox`` what `service.outbox.OutboxWorker` records before a post leaves and reads on recovery:
``attempt_started_at`` (when the earliest post whose outcome is unknown started; NULL: none in doubt),
``attempt_ref`` (the streetwatch id that post carried, which reconciliation looks for at the receiver) and
``reconcile_failures`` (failed queries of the receiver in a row). The new status ``needs_check`` needs no
schema change (``status`` is a plain string). Existing rows get no attempt in doubt and no failures.

Plain ``ADD COLUMN`` on both backends (no table rebuild); the downgrade drops them (``DROP COLUMN``: SQLite
≥ 3.35) and turns ``needs_check`` rows into ``dead`` ones (an older version knows no ``needs_check``; a dead row
is only ever retried by hand, so nothing is posted again automatically).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 00:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('attempt_started_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('attempt_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('reconcile_failures', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    op.execute("UPDATE outbox SET status = 'dead', last_error = 'needs_check before downgrade: ' || "
               "COALESCE(last_error, '') WHERE status = 'needs_check'")
    with op.batch_alter_table('outbox', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('reconcile_failures')
        batch_op.drop_column('attempt_ref')
        batch_op.drop_column('attempt_started_at')
