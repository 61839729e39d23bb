"""`telepharm retention`: only records past their legal retention go, in batches, audited as
one summary entry; the audit trail pruned below an attested checkpoint still verifies, and
still shows tampering."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.retention import Kind
from server import audit
from server.audit.models import AuditChain, AuditEvent
from server.backup import retention
from server.consults.models import ConsultRecordingRow, ConsultRow
from server.db import Database
from server.models import METADATA
from server.patient_page.models import RefillRequest
from server.prescriptions.models import InboundMessage, Prescription, PrescriptionTransition
from server.settings import Settings, SettingsError
from tests.conftest import Hub
from tests.functional.consult_helpers import patient, scheduled
from tests.functional.intake_helpers import post_script, sample_newrx
from tests.support.processes import run_cli

NOW = dt.datetime.now(dt.UTC)
YEAR = dt.timedelta(days=365)
OLD = audit.Actor("user", "u-old", None, "192.0.2.9")


async def _old_entries(db: Database, count: int, age: dt.timedelta) -> None:
    """Entries written ``age`` ago, chained first (the trail is in time order)."""
    async with db.transaction() as session:
        rows = [
            audit.values(OLD, audit.Event("test.read", "thing", str(n)), at=NOW - age)
            for n in range(count)
        ]
        await session.run_sync(audit.append, rows)


async def _prescription(
    hub: Hub, token: str, *, state: str, age: dt.timedelta, schedule: str | None
) -> uuid.UUID:
    message_id = uuid.uuid4().hex
    reply = await post_script(hub, sample_newrx(message_id), token)
    assert reply.status == 200
    async with hub.db.transaction() as session:
        rx = await session.scalar(select(Prescription).where(Prescription.message_id == message_id))
        assert rx is not None
        rx.state, rx.dea_schedule, rx.updated_at = state, schedule, NOW - age
        await _backdate(session, rx, NOW - age)
        return rx.id


async def _backdate(session: AsyncSession, rx: Prescription, at: dt.datetime) -> None:
    """Date ``rx``, its message as received and the rows that reference it ``at`` (the
    intake made them now)."""
    messages = METADATA.tables["inbound_messages"]
    await session.execute(
        update(messages).where(messages.c.id == rx.inbound_message_id).values(received_at=at)
    )
    rx.received_at = at
    for table in METADATA.tables.values():
        dated = {c: at for c in retention.DATED if c in table.c}
        if table.name != "prescriptions" and dated and "prescription_id" in table.c:
            await session.execute(
                update(table).where(table.c.prescription_id == rx.id).values(dated)
            )


async def _ids(db: Database, model: type, column: str = "id") -> set[object]:
    async with db.sessions() as session:
        return set(await session.scalars(select(getattr(model, column))))


async def _count(db: Database, model: type) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def aged(hub: Hub) -> dict[str, uuid.UUID]:
    await _old_entries(hub.db, 5, 7 * YEAR)
    await hub.pharmacy()
    token = await hub.sender_token()
    return {
        # non-controlled, settled 7 years ago: past 6 years
        "old": await _prescription(hub, token, state="completed", age=7 * YEAR, schedule=None),
        # controlled, settled 3 years ago: past 2 years
        "controlled": await _prescription(
            hub, token, state="cancelled", age=3 * YEAR, schedule="C2"
        ),
        # non-controlled, 3 years: inside its 6
        "recent": await _prescription(hub, token, state="rejected", age=3 * YEAR, schedule=None),
        # controlled, 3 years, but never settled
        "open": await _prescription(
            hub, token, state="awaiting_review", age=3 * YEAR, schedule="C4"
        ),
        # controlled, settled a year ago
        "young": await _prescription(hub, token, state="completed", age=YEAR, schedule="C3"),
    }


async def test_only_what_is_past_its_retention_goes(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID]
) -> None:
    prescriptions = await _count(hub.db, Prescription)
    transitions = await _count(hub.db, PrescriptionTransition)
    entries = await _count(hub.db, AuditEvent)

    dry = await retention.run(hub.db, settings, dry_run=True, batch=2, now=NOW)
    assert dict(dry.prescriptions) == {Kind.PRESCRIPTIONS: 1, Kind.CONTROLLED: 1}
    assert dry.messages == 2
    assert dry.audit_entries == 5
    assert dry.rows["prescription_transitions"] >= 2
    # a dry run changes nothing, and records nothing
    assert await _count(hub.db, Prescription) == prescriptions
    assert await _count(hub.db, AuditEvent) == entries

    done = await retention.run(hub.db, settings, dry_run=False, batch=2, now=NOW)
    assert done.summary() == dry.summary()
    left = await _ids(hub.db, Prescription)
    assert left == {aged["recent"], aged["open"], aged["young"]}
    assert await _count(hub.db, InboundMessage) == 3
    assert (
        await _count(hub.db, PrescriptionTransition)
        == transitions - dry.rows["prescription_transitions"]
    )
    report = await audit.verify(hub.db)
    assert report.intact, report.problem
    assert report.pruned == 5
    async with hub.db.sessions() as session:
        first = await session.scalar(select(func.min(AuditEvent.seq)))
        summaries = list(
            await session.scalars(
                select(AuditEvent.detail).where(AuditEvent.action == audit.CHECKPOINT_ACTION)
            )
        )
    assert first == 6
    (summary,) = summaries  # one entry for the run
    assert summary["prescriptions"] == {"prescriptions": 1, "controlled": 1}
    assert summary["audit"]["through_seq"] == 5
    assert summary["audit_entries"] == 5

    again = await retention.run(hub.db, settings, dry_run=False)
    assert not again.prescriptions
    assert again.audit_entries == 0
    assert (await audit.verify(hub.db)).intact


async def test_longer_retention_and_before_keep_more(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID]
) -> None:
    longer = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        issuer=settings.issuer,
        retention_controlled_days=4 * 365,
        retention_audit_days=8 * 365,
    )
    plan = await retention.run(hub.db, longer, dry_run=True)
    assert dict(plan.prescriptions) == {Kind.PRESCRIPTIONS: 1}  # the controlled one stays
    assert plan.audit_entries == 0
    # --before earlier than the records: nothing; later than the retention: the retention
    assert not (
        await retention.run(hub.db, settings, dry_run=True, before=NOW - 8 * YEAR)
    ).prescriptions
    late = await retention.run(hub.db, settings, dry_run=True, before=NOW)
    assert late.cutoffs[Kind.CONTROLLED] < NOW - 2 * YEAR
    assert sum(late.prescriptions.values()) == 2


def test_a_retention_below_the_legal_minimum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="at least 731 days"):
        Settings(data_dir=tmp_path, retention_controlled_days=365)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(TELEPHARM_DATA_DIR=str(tmp_path), TELEPHARM_RETENTION_AUDIT_DAYS="30")
    result = run_cli(env, "retention", "--dry-run")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "telepharm: TELEPHARM_RETENTION_AUDIT_DAYS: the retention of audit records must be at "
        "least 731 days (21 CFR 1311.305; 45 CFR 164.316(b)(2)), got 30"
    )
    bad = run_cli(env | {"TELEPHARM_RETENTION_AUDIT_DAYS": "3000"}, "retention", "--before", "x")
    assert bad.returncode == 2
    assert "expected an ISO 8601 date" in bad.stderr


async def test_the_database_refuses_removing_entries_above_the_checkpoint(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID]
) -> None:
    await retention.run(hub.db, settings, dry_run=False)
    with pytest.raises(Exception, match="append-only"):
        async with hub.db.transaction() as session:
            await session.execute(text("DELETE FROM audit_events WHERE seq = 6"))


async def _move_checkpoint(db: Database) -> tuple[int, str]:
    """The checkpoint moved over the entry after it (the app's role may update it)."""
    async with db.transaction() as session:
        row = await session.get(AuditChain, audit.CHECKPOINT_ID)
        assert row is not None
        nxt = (
            await session.execute(
                select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq == row.seq + 1)
            )
        ).one()
        await session.execute(
            update(AuditChain)
            .where(AuditChain.id == audit.CHECKPOINT_ID)
            .values(seq=nxt.seq, hash=nxt.hash)
        )
    return nxt.seq, nxt.hash


async def _delete_as_admin(db: Database, seq: int) -> None:
    """Someone with the database's admin rights deletes an entry, triggers off."""
    async with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            await conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        await conn.execute(delete(AuditEvent).where(AuditEvent.seq == seq))


async def test_a_young_entry_below_a_moved_checkpoint_is_refused(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID]
) -> None:
    await retention.run(hub.db, settings, dry_run=False)
    seq, _ = await _move_checkpoint(hub.db)  # over the run's own entry, written just now
    with pytest.raises(Exception, match="append-only"):
        async with hub.db.transaction() as session:
            await session.execute(delete(AuditEvent).where(AuditEvent.seq == seq))
    # an old one above the checkpoint is refused as before
    await _old_entries(hub.db, 1, 7 * YEAR)
    with pytest.raises(Exception, match="append-only"):
        async with hub.db.transaction() as session:
            await session.execute(
                delete(AuditEvent).where(
                    AuditEvent.seq == select(func.max(AuditEvent.seq)).scalar_subquery()
                )
            )


async def test_a_failed_run_names_no_checkpoint_that_did_not_commit(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    add = audit.add

    async def failing(session: AsyncSession, actor: audit.Actor, event: audit.Event) -> None:
        if event.action == audit.CHECKPOINT_ACTION and event.outcome == "success":
            raise OSError("connection lost")  # the checkpoint's transaction rolls back
        await add(session, actor, event)

    monkeypatch.setattr(audit, "add", failing)
    with pytest.raises(OSError, match="connection lost"):
        await retention.run(hub.db, settings, dry_run=False, now=NOW)
    monkeypatch.undo()
    async with hub.db.sessions() as session:
        assert await session.get(AuditChain, audit.CHECKPOINT_ID) is None
        (detail,) = await session.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.action == audit.CHECKPOINT_ACTION, AuditEvent.outcome == "failed"
            )
        )
    assert "audit" not in detail
    assert detail["prescriptions"] == {"prescriptions": 1, "controlled": 1}
    assert (await audit.verify(hub.db)).intact


async def _checkpoint_moved(db: Database) -> None:
    """Someone hides an entry: the checkpoint moved over it, the entry deleted."""
    seq, _ = await _move_checkpoint(db)
    await _delete_as_admin(db, seq)


def _attested_by_hand(actor: audit.Actor, outcome: str) -> Callable[[Database], Awaitable[None]]:
    """Someone hides a recent entry: a ``retention.run`` entry appended by hand records the
    checkpoint moved over it, the entry deleted."""

    async def tamper(db: Database) -> None:
        seq, digest = await _move_checkpoint(db)
        detail = {"audit": {"through_seq": seq, "through_hash": digest}}
        event = audit.Event(audit.CHECKPOINT_ACTION, "retention", outcome=outcome, detail=detail)
        await audit.record(db, actor, event)
        await _delete_as_admin(db, seq)

    return tamper


async def _altered(db: Database) -> None:
    """Someone with the database's admin rights edits an entry above the checkpoint."""
    async with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            await conn.execute(text("DROP TRIGGER audit_events_no_update"))
        await conn.execute(text("UPDATE audit_events SET actor = 'user:nobody' WHERE seq = 8"))


async def _forged(db: Database) -> None:
    """Someone drops the checkpoint row to make the remaining chain look whole."""
    async with db.transaction() as session:
        await session.execute(delete(AuditChain).where(AuditChain.id == audit.CHECKPOINT_ID))


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_checkpoint_moved, "no retention entry of the chain records that checkpoint"),
        (
            _attested_by_hand(audit.Actor("user", "someone"), "success"),
            "no retention entry of the chain records that checkpoint",
        ),
        (
            _attested_by_hand(audit.RETENTION, "failed"),
            "no retention entry of the chain records that checkpoint",
        ),
        (_altered, "entry 8 was altered after it was written"),
        (_forged, "entry 1 is missing (the next is 6)"),
    ],
)
async def test_verify_still_detects_tampering_after_pruning(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID], tamper: object, problem: str
) -> None:
    await retention.run(hub.db, settings, dry_run=False)
    assert (await audit.verify(hub.db)).intact
    await tamper(hub.db)  # type: ignore[operator]
    report = await audit.verify(hub.db)
    assert not report.intact
    assert problem in (report.problem or "")


async def _replaces(db: Database, newer: uuid.UUID, older: uuid.UUID) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Prescription)
            .where(Prescription.id == newer)
            .values(replaces_prescription_id=older, replacement="change")
        )


async def test_linked_prescriptions_go_together_or_not_at_all(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID]
) -> None:
    # the old one was replaced by one that stays: it stays too
    await _replaces(hub.db, aged["young"], aged["old"])
    # the controlled one was replaced by another past its retention: both go
    await _replaces(hub.db, aged["controlled"], aged["recent"])
    late = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        issuer=settings.issuer,
        retention_prescriptions_days=731,
    )
    plan = await retention.run(hub.db, late, dry_run=False, batch=1)
    assert sum(plan.prescriptions.values()) == 2
    assert await _ids(hub.db, Prescription) == {aged["old"], aged["open"], aged["young"]}
    assert (await audit.verify(hub.db)).intact


def test_the_command_says_what_it_would_remove_then_removes_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(TELEPHARM_DATA_DIR=str(tmp_path / "var"), TELEPHARM_LOG_LEVEL="WARNING")
    assert run_cli(env, "migrate").returncode == 0
    dry = run_cli(env, "retention", "--dry-run", "--before", "2020-01-01")
    assert dry.returncode == 0, dry.stderr
    assert "controlled: records last changed before 2020-01-01T00:00:00+00:00" in dry.stdout
    assert "would remove prescriptions: none" in dry.stdout
    assert "would remove 0 audit entries" in dry.stdout
    done = run_cli(env, "retention")
    assert done.returncode == 0, done.stderr
    assert "removed 0 audit entries" in done.stdout
    verified = run_cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact: 1 entries" in verified.stdout  # the run's own summary


async def test_a_recent_refill_request_keeps_its_old_prescription(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID]
) -> None:
    someone = uuid.UUID(await patient(hub))
    async with hub.db.transaction() as session:
        rx = await session.get(Prescription, aged["old"])
        assert rx is not None
        request = RefillRequest(
            pharmacy_id=rx.pharmacy_id,
            patient_id=someone,
            prescription_id=rx.id,
            kind="refill",
            state="open",
        )
        session.add(request)
    plan = await retention.run(hub.db, settings, dry_run=False, now=NOW)
    assert dict(plan.prescriptions) == {Kind.CONTROLLED: 1}
    assert aged["old"] in await _ids(hub.db, Prescription)
    assert await _ids(hub.db, RefillRequest) == {request.id}
    # once the request is as old, both go
    async with hub.db.transaction() as session:
        await session.execute(
            update(RefillRequest).values(created_at=NOW - 7 * YEAR, updated_at=NOW - 7 * YEAR)
        )
    plan = await retention.run(hub.db, settings, dry_run=False, now=NOW)
    assert dict(plan.prescriptions) == {Kind.PRESCRIPTIONS: 1}
    assert plan.rows["patient_refill_requests"] == 1
    assert aged["old"] not in await _ids(hub.db, Prescription)
    assert not await _ids(hub.db, RefillRequest)
    assert (await audit.verify(hub.db)).intact


async def test_a_consult_linked_to_an_old_prescription_stays_unlinked(
    hub: Hub, settings: Settings, aged: dict[str, uuid.UUID]
) -> None:
    consult = uuid.UUID((await scheduled(hub)).id)
    recording = settings.data_dir / "recordings" / str(consult) / "segment-1.enc"
    recording.parent.mkdir(parents=True)
    recording.write_bytes(b"synthetic")
    async with hub.db.transaction() as session:
        await session.execute(
            update(ConsultRow).where(ConsultRow.id == consult).values(prescription_id=aged["old"])
        )
        session.add(
            ConsultRecordingRow(
                consult_id=consult,
                party="patient",
                file=recording.name,
                video_frames=1,
                audio_frames=1,
                dropped_frames=0,
                bytes=9,
                ended_at=NOW,
            )
        )
    dry = await retention.run(hub.db, settings, dry_run=True, now=NOW)
    assert dict(dry.unlinked) == {"consults.prescription_id": 1}
    plan = await retention.run(hub.db, settings, dry_run=False, now=NOW)
    assert dict(plan.prescriptions) == {Kind.PRESCRIPTIONS: 1, Kind.CONTROLLED: 1}
    assert dict(plan.unlinked) == {"consults.prescription_id": 1}
    assert "consults" not in plan.rows
    assert aged["old"] not in await _ids(hub.db, Prescription)
    async with hub.db.sessions() as session:
        kept = await session.get(ConsultRow, consult)
        assert kept is not None
        assert kept.prescription_id is None
    assert await _count(hub.db, ConsultRecordingRow) == 1
    assert recording.read_bytes() == b"synthetic"
