"""The checks as a worker runs them: state history, stored findings, idempotence."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from eprescribe.drugs import DrugReference, Identification
from server.patients.models import PatientProfile
from server.prescriptions.expiry import load_expiry_rules
from server.prescriptions.models import Finding, Prescription, PrescriptionTransition
from server.settings import Settings, SettingsError
from server.worker.checking import Checker, sync_engine
from server.worker.failures import TransientError, transient_as_retry
from tests.conftest import Hub
from tests.functional.check_helpers import (
    EXPANDING,
    assert_parked,
    history,
    make_unreadable,
    someone,
)
from tests.functional.verification_helpers import receive


async def _approve(hub: Hub, rx_id: uuid.UUID) -> None:
    """Stand-in for the pharmacist's approval (the verification workflow is a later issue)."""
    async with hub.db.transaction() as session:
        await session.execute(
            update(Prescription).where(Prescription.id == rx_id).values(state="approved")
        )


async def _patient_of(hub: Hub, rx_id: uuid.UUID) -> uuid.UUID | None:
    async with hub.db.sessions() as session:
        return await session.scalar(select(Prescription.patient_id).where(Prescription.id == rx_id))


async def _codes(hub: Hub, rx_id: uuid.UUID) -> list[str]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(Finding.code).where(Finding.prescription_id == rx_id).order_by(Finding.id)
            )
        )


async def test_check_moves_to_review_with_findings(hub: Hub, checker: Checker) -> None:
    rx_id = await receive(
        hub,
        prescriber_npi="1234567898",
        controlled=True,
        refills="2",
        drug_description="oxycodone hydrochloride 5 MG Oral Tablet",
    )
    outcome = await asyncio.to_thread(checker.check, rx_id)
    assert outcome is not None
    assert await _codes(hub, rx_id) == ["NPI_INVALID", "REFILLS_NOT_ALLOWED"]
    assert await history(hub, rx_id) == [
        (None, "received"),
        ("received", "checking"),
        ("checking", "awaiting_review"),
    ]
    response = await hub.client.get(
        f"/api/v1/prescriptions/{rx_id}",
        headers={
            "Authorization": "Bearer "
            + await hub.token(
                await hub.machine_client("rx:read", pharmacy="1234567"), scope="rx:read"
            )
        },
    )
    body = await response.json()
    assert body["state"] == "awaiting_review"
    assert [f["code"] for f in body["findings"]] == ["NPI_INVALID", "REFILLS_NOT_ALLOWED"]
    assert body["findings"][0]["severity"] == "hard_stop"


async def test_second_run_changes_nothing(hub: Hub, checker: Checker) -> None:
    rx_id = await receive(hub, prescriber_npi="1234567898")
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    assert await asyncio.to_thread(checker.check, rx_id) is None
    assert await _codes(hub, rx_id) == ["NPI_INVALID"]
    assert len(await history(hub, rx_id)) == 3


async def test_a_check_interrupted_after_start_is_finished_by_the_next_run(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await receive(hub, prescriber_npi="1234567898")
    assert rx_id in (await asyncio.to_thread(checker._start, [rx_id]))[0]  # the worker dies here
    assert await history(hub, rx_id) == [(None, "received"), ("received", "checking")]
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    assert await _codes(hub, rx_id) == ["NPI_INVALID"]
    assert await history(hub, rx_id) == [
        (None, "received"),
        ("received", "checking"),
        ("checking", "awaiting_review"),
    ]


async def test_concurrent_runs_leave_one_set_of_findings(hub: Hub, checker: Checker) -> None:
    rx_id = await receive(hub, prescriber_npi="1234567898")
    barrier = threading.Barrier(2)

    def run() -> object:
        barrier.wait()
        return checker.check(rx_id)

    results = await asyncio.gather(asyncio.to_thread(run), asyncio.to_thread(run))
    assert sum(r is not None for r in results) == 1
    assert await _codes(hub, rx_id) == ["NPI_INVALID"]
    async with hub.db.sessions() as session:
        moves = await session.scalar(
            select(func.count())
            .select_from(PrescriptionTransition)
            .where(PrescriptionTransition.to_state == "awaiting_review")
        )
    assert moves == 1


async def test_unknown_prescription_is_a_no_op(checker: Checker, hub: Hub) -> None:
    assert await asyncio.to_thread(checker.check, uuid.uuid4()) is None


async def test_ssri_for_a_patient_with_an_active_maoi_is_an_interaction(
    hub: Hub, checker: Checker
) -> None:
    maoi = await receive(hub, drug_description="phenelzine 15 MG Oral Tablet")
    assert await asyncio.to_thread(checker.check, maoi) is not None
    await _approve(hub, maoi)
    ssri = await receive(hub, drug_description="sertraline 50 MG Oral Tablet")
    await asyncio.to_thread(checker.check, ssri)
    assert "DRUG_INTERACTION" in await _codes(hub, ssri)
    assert await _patient_of(hub, ssri) == await _patient_of(hub, maoi) is not None


async def test_the_same_order_under_another_message_id_is_a_duplicate_order(
    hub: Hub, checker: Checker
) -> None:
    again = {"Header/PrescriberOrderNumber": "EHR-ORDER-42"}
    first = await receive(hub, replace=again)
    await asyncio.to_thread(checker.check, first)
    second = await receive(hub, replace=again)
    await asyncio.to_thread(checker.check, second)
    other = await receive(hub, replace={"Header/PrescriberOrderNumber": "EHR-ORDER-43"})
    await asyncio.to_thread(checker.check, other)
    assert "DUPLICATE_ORDER" not in await _codes(hub, other)
    # the first copy was checked again when the second arrived: both name each other
    for rx_id, copy in ((second, first), (first, second)):
        async with hub.db.sessions() as session:
            found = await session.scalar(
                select(Finding).where(
                    Finding.prescription_id == rx_id, Finding.code == "DUPLICATE_ORDER"
                )
            )
        assert found is not None
        assert found.severity == "warning"
        assert found.evidence == {
            "prescriber_order_number": "EHR-ORDER-42",
            "other_prescription_ids": [str(copy)],
        }


async def test_weak_patient_match_is_not_linked(hub: Hub, checker: Checker) -> None:
    first = await receive(hub)
    await asyncio.to_thread(checker.check, first)
    moved = await receive(
        hub, replace={"Body/NewRx/Patient/HumanPatient/Address/PostalCode": "10001"}
    )
    await asyncio.to_thread(checker.check, moved)
    assert await _patient_of(hub, first) is not None
    assert await _patient_of(hub, moved) is None
    assert "PATIENT_MATCH_REVIEW" in await _codes(hub, moved)


async def test_a_patient_met_twice_in_one_chunk_gets_one_profile(
    hub: Hub, checker: Checker, caplog: pytest.LogCaptureFixture
) -> None:
    """Linking runs for the whole chunk at once: the second script of a new patient matches
    the profile the first one just made; a weak match beside them stays unlinked."""
    first, second = await receive(hub, **someone(7)), await receive(hub, **someone(7))
    moved = await receive(
        hub,
        replace={"Body/NewRx/Patient/HumanPatient/Address/PostalCode": "10001"},
        **someone(7),
    )
    other = await receive(hub, **someone(8))
    await asyncio.to_thread(checker.check_many, [first, second, moved, other])
    assert "one at a time" not in caplog.text  # checked together
    patient = await _patient_of(hub, first)
    assert patient is not None
    assert await _patient_of(hub, second) == patient
    assert await _patient_of(hub, moved) is None
    assert await _patient_of(hub, other) not in (None, patient)
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PatientProfile)) == 2


async def test_a_chunk_is_checked_together_and_skips_finished_ones(
    hub: Hub, checker: Checker
) -> None:
    first = await receive(hub, prescriber_npi="1234567898", **someone(1))
    await asyncio.to_thread(checker.check, first)
    second, third = await receive(hub, **someone(2)), await receive(hub, **someone(3))
    outcomes = await asyncio.to_thread(checker.check_many, [first, second, third, second])
    assert sorted(o.prescription_id for o in outcomes) == sorted([second, third])
    assert await _codes(hub, first) == ["NPI_INVALID"]
    for rx_id in (first, second, third):
        assert (await history(hub, rx_id))[-1] == ("checking", "awaiting_review")


async def test_expiry_follows_the_pharmacy_state_rules(
    hub: Hub, settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "expiry.json"
    rules.write_text('{"states": {"HI": {"C-II": 7}}}')
    checker = Checker.from_settings(dataclasses.replace(settings, expiry_rules_file=str(rules)))
    await hub.pharmacy(state="HI")
    ten_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).date().isoformat()
    try:
        rx_id = await receive(
            hub,
            controlled=True,
            written_date=ten_days_ago,
            drug_description="oxycodone hydrochloride 5 MG Oral Tablet",
        )
        outcome = await asyncio.to_thread(checker.check, rx_id)
    finally:
        checker.close()
    assert outcome is not None, await history(hub, rx_id)
    assert "RX_EXPIRED" in await _codes(hub, rx_id)


def test_a_bad_expiry_file_is_a_settings_error(tmp_path: Path) -> None:
    bad = tmp_path / "expiry.json"
    bad.write_text('{"default": {"CII": 90}}')
    with pytest.raises(SettingsError, match="unknown schedule"):
        load_expiry_rules(str(bad))


async def _profile_keys(hub: Hub) -> list[tuple[str, str]]:
    async with hub.db.sessions() as session:
        rows = await session.execute(
            select(PatientProfile.last_name_key, PatientProfile.first_name_key)
        )
        return [(last, first) for last, first in rows]


async def test_a_name_whose_key_expands_is_checked_and_matched(hub: Hub, checker: Checker) -> None:
    first = await receive(hub, patient_last=EXPANDING)
    assert await asyncio.to_thread(checker.check, first) is not None
    assert await history(hub, first) == [
        (None, "received"),
        ("received", "checking"),
        ("checking", "awaiting_review"),
    ]
    bound = PatientProfile.__table__.c.last_name_key.type.length
    assert [len(last) <= bound for last, _ in await _profile_keys(hub)] == [True]
    again = await receive(hub, patient_last=EXPANDING)
    assert await asyncio.to_thread(checker.check, again) is not None
    assert await _patient_of(hub, again) == await _patient_of(hub, first) is not None


async def test_a_prescription_whose_checks_cannot_run_is_parked_and_its_chunk_checked(
    hub: Hub, checker: Checker
) -> None:
    ordinary = [await receive(hub, prescriber_npi="1234567898", **someone(n)) for n in range(20)]
    expanding = await receive(hub, prescriber_npi="1234567898", patient_last=EXPANDING)
    poison = await receive(hub)
    await make_unreadable(hub, poison)
    chunk = [*ordinary, expanding, poison]
    outcomes = await asyncio.to_thread(checker.check_many, chunk)
    assert sorted(o.prescription_id for o in outcomes) == sorted(chunk)
    for rx_id in [*ordinary, expanding]:
        assert await _codes(hub, rx_id) == ["NPI_INVALID"]
        assert (await history(hub, rx_id))[-1] == ("checking", "awaiting_review")
    await assert_parked(hub, poison)
    assert await asyncio.to_thread(checker.check_many, chunk) == []  # never checked again


async def test_a_database_that_is_down_is_retried_not_parked(
    hub: Hub, settings: Settings, tmp_path: Path
) -> None:
    rx_id = await receive(hub)
    if settings.database_url.startswith("postgresql"):
        down_url = "postgresql+psycopg://postgres@127.0.0.1:9/telepharm"  # nothing listens
    else:
        down_url = f"sqlite:///{tmp_path / 'missing' / 'hub.sqlite3'}"
    down = Checker(sessionmaker(sync_engine(down_url)), DrugReference.bundled())
    try:
        with pytest.raises(TransientError), transient_as_retry():  # as the task runs it
            await asyncio.to_thread(down.check_many, [rx_id])
    finally:
        down.close()
    assert await history(hub, rx_id) == [(None, "received")]


class _HeldReference(DrugReference):
    """The bundled reference, whose first identification waits until the test releases it:
    a worker deterministically in the middle of transaction 1."""

    def __init__(self) -> None:
        bundled = DrugReference.bundled()
        super().__init__(bundled.vocabulary, bundled.drugs)
        self.entered = threading.Event()
        self.released = threading.Event()

    def identify(self, ndc: str | None, rxcui: str | None, description: str) -> Identification:
        self.entered.set()
        self.released.wait(timeout=60)
        return super().identify(ndc, rxcui, description)


async def test_intake_does_not_wait_for_a_worker_gathering_its_chunk(
    hub: Hub, settings: Settings
) -> None:
    """Transaction 1 appends its audit entries (a new patient's profile) last: the chain
    head's lock, which every intake batch takes, is not held while the chunk is identified."""
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's worker transactions lock the whole file: PostgreSQL only")
    rx_id = await receive(hub)  # its patient has no profile yet: the check creates one
    reference = _HeldReference()
    checker = Checker(sessionmaker(sync_engine(settings.sync_database_url)), reference)
    check = asyncio.create_task(asyncio.to_thread(checker.check, rx_id))
    try:
        assert await asyncio.to_thread(reference.entered.wait, 30)
        async with asyncio.timeout(5):  # the writer's store_timeout is 10 s
            await receive(hub)
        assert not check.done()
    finally:
        reference.released.set()
        await check
        checker.close()
    async with hub.db.sessions() as session:
        profile = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    assert profile is not None
