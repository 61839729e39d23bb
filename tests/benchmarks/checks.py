"""Check throughput: ``run_checks`` over a realistic mix of prescriptions, per core.

Run with ``.venv/bin/python -m tests.benchmarks.checks``. The checks are pure functions, so
the contexts (parsing, drug identification) are built first and only ``run_checks`` is timed,
with ``time.process_time`` (CPU of this one process). The mix, fixed by a seeded random
generator: drugs drawn from the bundled reference (controlled ones included, each sent with
its schedule, some with none or a wrong one), one in ten an unknown drug, a third of patients
with 2-5 active medications, a quarter with allergy entries, some with a weak or ambiguous
profile match. ``BENCH_CONTEXTS`` (1000) and ``BENCH_SECONDS`` (5) adjust a run; the target
is at least 5,000 prescriptions per second.

Then the same mix with each patient's picture holding :data:`PICTURES` other prescriptions (0,
5 and 50 in place of the mix's 0-5 active medications; two in five accepted and active, the
rest still open in the pharmacy, ``pending_since`` set), each timed for ``BENCH_SECONDS``, with
its rate and its ratio to the empty picture: what a whole picture costs the pure checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import time
from collections import Counter

from eprescribe.checks import (
    ActiveMedication,
    CheckContext,
    PatientMatch,
    build_context,
    run_checks,
)
from eprescribe.drugs import Drug, DrugReference
from eprescribe.ncpdp import Message, NewRx, parse_message
from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX
from tests.support.script_samples import newrx_xml

CONTEXTS = int(os.environ.get("BENCH_CONTEXTS", "1000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
TARGET = 5000
#: other prescriptions in each patient's picture, for the picture runs
PICTURES = (0, 5, 50)
RECEIVED = dt.datetime(2025, 1, 15, 18, 0, tzinfo=dt.UTC)
SCHEDULE = "Body/NewRx/MedicationPrescribed/DrugCoded/DEASchedule/Code"
ALLERGIES = ("penicillin", "sulfa", "codeine", "amoxicillin", "cephalosporins", "peanuts")
SIGS = (
    "Take 1 tablet by mouth twice daily",
    "Take 2 tablets by mouth three times a day",
    "Take 1 capsule by mouth daily",
    "Take 1 tablet every 6 hours as needed for pain",
    "Use as directed",
)


def contexts(reference: DrugReference, count: int, seed: int = 2017071) -> list[CheckContext]:
    rng = random.Random(seed)
    drugs = [d for d in reference.drugs if len(d.name) <= DRUG_DESCRIPTION_MAX]
    return [_context(rng, reference, drugs, n) for n in range(count)]


def _context(
    rng: random.Random, reference: DrugReference, drugs: list[Drug], n: int
) -> CheckContext:
    drug = rng.choice(drugs)
    unknown = rng.random() < 0.1
    message = _newrx(rng, drug, unknown, n)
    assert isinstance(message.body, NewRx)
    signature = message.header.digital_signature
    base = build_context(message.body, RECEIVED, signature=signature, reference=reference)
    active = tuple(
        ActiveMedication(f"rx-{n}-{k}", d.name, d)
        for k, d in enumerate(rng.sample(drugs, rng.randint(2, 5)) if rng.random() < 0.33 else ())
    )
    allergies = tuple(rng.sample(ALLERGIES, rng.randint(1, 2))) if rng.random() < 0.25 else ()
    match = rng.choice(
        [PatientMatch("exact", ("p-1",))] * 8
        + [PatientMatch("weak", ("p-1",), ("postal_code",)), PatientMatch("new")]
    )
    return dataclasses.replace(base, active=active, allergies=allergies, patient_match=match)


def _newrx(rng: random.Random, drug: Drug, unknown: bool, n: int) -> Message:
    controlled = drug.dea_schedule is not None and rng.random() < 0.9
    replace = {SCHEDULE: drug.dea_schedule} if controlled and drug.dea_schedule else {}
    xml = newrx_xml(
        message_id=f"BENCH-{n}",
        drug_description=f"UNKNOWNDRUG {n} MG ORAL TABLET" if unknown else drug.name,
        controlled=controlled,
        refills=str(rng.choice([0, 0, 1, 3, 6])),
        sig_text=rng.choice(SIGS),
        replace=replace,
    )
    return parse_message(xml)


def with_pictures(
    reference: DrugReference, batch: list[CheckContext], size: int, seed: int = 14
) -> list[CheckContext]:
    """``batch`` with each context's picture replaced by ``size`` other prescriptions of the
    patient, drawn from the reference: two in five active (accepted), the rest pending (still
    open, received in the last days)."""
    rng = random.Random(seed)
    drugs = [d for d in reference.drugs if len(d.name) <= DRUG_DESCRIPTION_MAX]
    out = []
    for n, context in enumerate(batch):
        active = tuple(
            ActiveMedication(
                f"rx-{n}-{k}",
                d.name,
                d,
                None if k % 5 < 2 else RECEIVED - dt.timedelta(hours=rng.randint(1, 96)),
            )
            for k, d in enumerate(rng.sample(drugs, size))
        )
        out.append(dataclasses.replace(context, active=active))
    return out


def measure(batch: list[CheckContext], seconds: float) -> tuple[int, float]:
    """Prescriptions checked and CPU seconds spent, over whole passes of the batch."""
    done, start = 0, time.process_time()
    while (spent := time.process_time() - start) < seconds:
        for context in batch:
            run_checks(context)
        done += len(batch)
    return done, spent


def main() -> None:
    reference = DrugReference.bundled()
    batch = contexts(reference, CONTEXTS)
    findings = Counter(f.code for context in batch for f in run_checks(context))
    run_checks(batch[0])  # warm up
    done, spent = measure(batch, SECONDS)
    rate = done / spent
    print(f"{len(batch)} contexts, {sum(findings.values())} findings per pass:")
    for code, count in findings.most_common():
        print(f"  {code:32} {count}")
    print(f"{done} prescriptions in {spent:.2f} s CPU: {rate:,.0f} prescriptions/s per core")
    print(f"target {TARGET:,}/s: {'met' if rate >= TARGET else 'NOT met'}")
    print("\nthe same mix, each patient's picture holding N other prescriptions (2/5 active):")
    rates: dict[int, float] = {}
    for size in PICTURES:
        cases = with_pictures(reference, batch, size)
        per_pass = sum(len(run_checks(context)) for context in cases)
        done, spent = measure(cases, SECONDS)
        rates[size] = done / spent
        print(
            f"  N={size:<3} {rates[size]:>9,.0f} prescriptions/s per core"
            f"  ratio to N=0 {rates[size] / rates[PICTURES[0]]:.3f}"
            f"  ({per_pass} findings per pass)"
        )


if __name__ == "__main__":
    main()
