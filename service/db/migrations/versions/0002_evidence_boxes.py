"""Evidence boxes: the boxes of the observation an evidence image shows, stored with its evidence row.

Adds the nullable JSON column ``evidence.boxes`` (format: see `service.db.models.Evidence`). Rows written
before this revision keep NULL: nothing knows which boxes their frame showed (``cases.boxes`` holds only the
case's latest observation), and readers fall back to the old pairing for them.

On SQLite the column is added and dropped through ``batch_alter_table`` (dropping a column rebuilds the
table there); on PostgreSQL the same calls are plain ALTER TABLE statements.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 00:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('boxes', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_column('boxes')
