"""the job queue on PostgreSQL: procrastinate's tables and functions

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 19:20:00

On PostgreSQL the job queue is procrastinate, whose jobs live in this database beside
the group orders (so that a job is queued in the group order's own transaction). This
revision installs procrastinate's schema as the installed release ships it; a later
release that changes it comes with a revision that applies procrastinate's migration
files. SQLite keeps the embedded queue (the ``job`` table) and gets nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
    procrastinate_jobs, procrastinate_workers CASCADE;
DO $$
DECLARE item record;
BEGIN
    FOR item IN
        SELECT p.oid::regprocedure AS signature FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'
    LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || item.signature || ' CASCADE';
    END LOOP;
END $$;
DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
    procrastinate_job_to_defer_v1 CASCADE;
"""


def _run_script(script: str) -> None:
    """Run a script of many statements (functions included) as one, through the
    driver: a prepared statement holds only one."""
    bind = op.get_bind()
    driver = bind.connection.driver_connection
    result = driver.execute(script)
    if hasattr(result, "__await__"):
        await_(result)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _run_script(_DROP)
