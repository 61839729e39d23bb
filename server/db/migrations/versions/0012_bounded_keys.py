"""stored text fits its columns: senders as long as the parser accepts, bounded name keys

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: "DIRECT:" and 256 characters (eprescribe.ncpdp.types.PARTY_TEXT_MAX)
SENDER_MAX = 263
OLD_SENDER_MAX = 80
#: eprescribe.patients.NAME_KEY_MAX
NAME_KEY_MAX = 100

PATIENTS = sa.table(
    "patients",
    sa.column("id", sa.Uuid()),
    sa.column("last_name_key", sa.String()),
    sa.column("first_name_key", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.alter_column(
            "sender",
            type_=sa.String(length=SENDER_MAX),
            existing_type=sa.String(length=OLD_SENDER_MAX),
            existing_nullable=False,
        )
    _bound_stored_name_keys()


def _bound_stored_name_keys() -> None:
    """Keys longer than the bound could be stored only where lengths are not enforced
    (SQLite); they become what eprescribe.patients.normalise_name now gives, so the profile
    still matches its patient's next prescription."""
    connection = op.get_bind()
    long_keys = sa.or_(
        sa.func.length(PATIENTS.c.last_name_key) > NAME_KEY_MAX,
        sa.func.length(PATIENTS.c.first_name_key) > NAME_KEY_MAX,
    )
    for row in connection.execute(sa.select(PATIENTS).where(long_keys)).all():
        connection.execute(
            PATIENTS.update()
            .where(PATIENTS.c.id == row.id)
            .values(
                last_name_key=_bounded(row.last_name_key),
                first_name_key=_bounded(row.first_name_key),
            )
        )


def _bounded(letters: str) -> str:
    """eprescribe.patients' bound as of this revision (a migration does not follow later code)."""
    if len(letters) <= NAME_KEY_MAX:
        return letters
    digest = hashlib.sha256(letters.encode()).hexdigest()
    return f"{letters[: NAME_KEY_MAX - len(digest) - 1]}-{digest}"


def downgrade() -> None:
    # PostgreSQL refuses rather than cut a sender longer than the old width (false duplicates)
    with op.batch_alter_table("inbound_messages") as batch:
        batch.alter_column(
            "sender",
            type_=sa.String(length=OLD_SENDER_MAX),
            existing_type=sa.String(length=SENDER_MAX),
            existing_nullable=False,
        )
