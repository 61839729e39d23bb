"""audit hash chain, append-only audit table

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

Existing entries are chained in ``id`` order, with the entry format of this revision, frozen
here: a migration replays the same way whatever the live code (server.audit.entry_hash) later
becomes. The format is part of the audit contract: it may only change with a migration that
re-chains.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MESSAGE = "audit_events is append-only"
GENESIS = "0" * 64
HEAD_ID = 1


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    head = _chain_existing_entries()
    op.bulk_insert(chain, [{"id": HEAD_ID, "seq": head[0], "hash": head[1]}])
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def _chain_existing_entries() -> tuple[int, str]:
    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        *(
            sa.column(name)
            for name in (
                "id", "at", "actor", "pharmacy_id", "action", "resource_type",
                "resource_id", "outcome", "ip", "detail", "seq", "prev_hash", "hash",
            )
        ),
    )  # fmt: skip
    rows = [dict(r) for r in bind.execute(sa.select(events).order_by(events.c.id)).mappings()]
    for row in rows:
        row["at"] = _aware(row["at"])
        if isinstance(row["detail"], str):  # JSON text on SQLite
            row["detail"] = json.loads(row["detail"])
    head = seal((0, GENESIS), rows)
    for row in rows:
        bind.execute(
            events.update()
            .where(events.c.id == row["id"])
            .values(seq=row["seq"], prev_hash=row["prev_hash"], hash=row["hash"])
        )
    return head


def seal(head: tuple[int, str], rows: list[dict[str, Any]]) -> tuple[int, str]:
    """Give ``rows`` their positions and hashes after ``head`` (seq, hash); the new head."""
    seq, previous = head
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = previous
        previous = row["hash"] = entry_hash(previous, row)
    return seq, previous


def entry_hash(previous: str, row: dict[str, Any]) -> str:
    """The entry format of this revision: SHA-256 over the previous hash and the entry's
    canonical JSON (sorted keys, UTC time with microseconds, decimals as exact strings)."""
    pharmacy_id = row["pharmacy_id"]
    canonical = orjson.dumps(
        [
            row["seq"],
            row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds"),
            row["actor"],
            None if pharmacy_id is None else str(pharmacy_id),
            row["action"],
            row["resource_type"],
            row["resource_id"],
            row["outcome"],
            row["ip"],
            row["detail"],
        ],
        default=_decimal_as_text,
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(previous.encode("ascii") + canonical).hexdigest()


def _decimal_as_text(value: object) -> str:
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _aware(value: dt.datetime | str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
