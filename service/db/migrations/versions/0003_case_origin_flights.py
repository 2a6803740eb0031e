"""Case origins: a case comes from a camera or from a drone flight.

Adds the table ``flights`` (a flight as the case system sees it, with the fields its background job will
report: status, source, start/end, frames done/total, error) and ``cases.flight_id`` (nullable, foreign key
to ``flights.id``, index ``(flight_id, id)`` for the cases list filtered by flight). ``cases.camera_id``
becomes nullable and the CHECK ``ck_cases_one_origin`` requires exactly one of ``camera_id`` and
``flight_id``. Existing cases all have a camera, so they satisfy it unchanged.

On SQLite the ``cases`` table is rebuilt through ``batch_alter_table`` (SQLite cannot alter a column or add
a constraint); `service.db.session.run_migrations` turns foreign-key enforcement off around the rebuild and
checks every key afterwards, as SQLite's own procedure for table rebuilds prescribes (the rebuild drops
``cases``, which evidence, audit and outbox rows refer to). On PostgreSQL the same calls are plain ALTER
TABLE statements.

The downgrade refuses, with the count, when a case comes from a flight: revision 0002 has nowhere to keep
it (``cases.camera_id`` is NOT NULL there), and dropping such cases silently would lose reviewers' work.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 00:00:00
"""
from alembic import op
import sqlalchemy as sa
from alembic.util import CommandError


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# The same text as service.db.models.ONE_ORIGIN_SQL (a migration does not import application code: a later
# change of the model must not change what this revision did).
ONE_ORIGIN_SQL = ("(camera_id IS NOT NULL AND flight_id IS NULL) OR "
                  "(camera_id IS NULL AND flight_id IS NOT NULL)")


def upgrade() -> None:
    op.create_table('flights',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=2000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lat_deg', sa.Float(), nullable=True),
    sa.Column('lon_deg', sa.Float(), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('grid_code', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('frames_done', sa.Integer(), nullable=False),
    sa.Column('frames_total', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flight_id', sa.String(length=64), nullable=True))
        batch_op.alter_column('camera_id', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_foreign_key('fk_cases_flight_id_flights', 'flights', ['flight_id'], ['id'])
        batch_op.create_check_constraint('ck_cases_one_origin', ONE_ORIGIN_SQL)
        batch_op.create_index('ix_cases_flight_id', ['flight_id', 'id'], unique=False)


def downgrade() -> None:
    flight_cases = op.get_bind().execute(sa.text("SELECT count(*) FROM cases WHERE flight_id IS NOT NULL")).scalar()
    if flight_cases:
        raise CommandError(
            f"migration 0003 downgrade: {flight_cases} case(s) come from drone flights (cases.flight_id set); "
            "revision 0002 cannot hold them (cases.camera_id is NOT NULL there): export and delete them first")
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_flight_id')
        batch_op.drop_constraint('ck_cases_one_origin', type_='check')
        batch_op.drop_constraint('fk_cases_flight_id_flights', type_='foreignkey')
        batch_op.drop_column('flight_id')
        batch_op.alter_column('camera_id', existing_type=sa.String(length=64), nullable=False)
    op.drop_table('flights')
