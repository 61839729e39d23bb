"""live consults: seats with resume tokens, recording consent, quality samples, recordings

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")


def _consult_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["consult_id"], ["consults.id"], name=op.f(f"fk_{table}_consult_id_consults")
    )


def upgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.add_column(sa.Column("pharmacist_recording_consent", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("patient_recording_consent", sa.Boolean(), nullable=True))
        batch.add_column(
            sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.create_table(
        "consult_seats",
        sa.Column("consult_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("conn_id", sa.String(length=32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("resume_digest", sa.String(length=64), nullable=False),
        sa.Column("previous_digest", sa.String(length=64), nullable=True),
        sa.Column("connected_at", TIME, nullable=False),
        sa.Column("disconnected_at", TIME, nullable=True),
        sa.Column("released_at", TIME, nullable=True),
        _consult_fk("consult_seats"),
        sa.PrimaryKeyConstraint("consult_id", "role", name=op.f("pk_consult_seats")),
        sa.UniqueConstraint("resume_digest", name=op.f("uq_consult_seats_resume_digest")),
    )
    op.create_index(op.f("ix_consult_seats_previous_digest"), "consult_seats", ["previous_digest"])
    op.create_index(op.f("ix_consult_seats_disconnected_at"), "consult_seats", ["disconnected_at"])
    op.create_table(
        "consult_quality",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("consult_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("bitrate_kbps", sa.Double(), nullable=False),
        sa.Column("fps", sa.Double(), nullable=False),
        sa.Column("packet_loss", sa.Double(), nullable=False),
        sa.Column("rtt_ms", sa.Double(), nullable=False),
        _consult_fk("consult_quality"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_quality")),
    )
    op.create_index(op.f("ix_consult_quality_consult_id"), "consult_quality", ["consult_id"])
    op.create_table(
        "consult_recordings",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("consult_id", sa.Uuid(), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("file", sa.String(length=200), nullable=False),
        sa.Column("video_frames", sa.Integer(), nullable=False),
        sa.Column("audio_frames", sa.Integer(), nullable=False),
        sa.Column("dropped_frames", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", TIME, nullable=False),
        _consult_fk("consult_recordings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_recordings")),
    )
    op.create_index(op.f("ix_consult_recordings_consult_id"), "consult_recordings", ["consult_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_consult_recordings_consult_id"), table_name="consult_recordings")
    op.drop_table("consult_recordings")
    op.drop_index(op.f("ix_consult_quality_consult_id"), table_name="consult_quality")
    op.drop_table("consult_quality")
    op.drop_index(op.f("ix_consult_seats_disconnected_at"), table_name="consult_seats")
    op.drop_index(op.f("ix_consult_seats_previous_digest"), table_name="consult_seats")
    op.drop_table("consult_seats")
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("revision")
        batch.drop_column("patient_recording_consent")
        batch.drop_column("pharmacist_recording_consent")
