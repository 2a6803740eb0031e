"""Flight jobs: what a flight job reads, who submitted it, and where it is.

Adds to ``flights`` the columns the service's flight jobs (`service.flights`) need beyond migration 0003's:
``input`` (JSON: the server paths of the video and its SRT, or of the stills folder, so a job restarted after
the service was killed reads the same files), ``created_by`` (the API key's holder: a pilot key reads its own
flights only), ``stage``, ``progress`` (0..1), ``findings`` and ``eta_s`` (the running job's progress),
``notes`` (JSON list: what the run could not do, e.g. "SRT covers 0–42 s of 60 s"), ``case_ids`` (JSON list:
the cases its violations opened or updated), ``cancel_requested`` (a cancel asked for while the job runs; the
worker polls it) and ``attempts`` (how many times the job started).
Existing rows (flights met through ingest, all ``done``) get ``progress`` 1, not cancelled, no attempt.

Plain ``ADD COLUMN`` on both backends (no table rebuild; the server defaults fill the existing rows and stay,
harmless: the application writes every column); the downgrade drops them (``DROP COLUMN``: SQLite ≥ 3.35).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09 00:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_COLUMNS = ('input', 'created_by', 'stage', 'progress', 'findings', 'eta_s', 'notes', 'case_ids', 'cancel_requested',
            'attempts')


def upgrade() -> None:
    with op.batch_alter_table('flights', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('input', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('stage', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('progress', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('findings', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('eta_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('notes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('case_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('cancel_requested', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE flights SET progress = 1 WHERE status = 'done'")


def downgrade() -> None:
    with op.batch_alter_table('flights', schema=None, recreate='never') as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
