"""What typed API bodies cost the hub (issue 13): msgspec Structs against pydantic v2 models,
on the work one ``/api/v1`` request does, with today's dicts and orjson as the baseline.

`python -m tests.benchmarks.api_types` (no services; about half a minute; pydantic must be
installed by hand: the hub does not depend on it). In this process, each for BENCH_SECONDS (1)
of CPU (``time.process_time``):
- decode and validate an approve body (``{"overrides": {CODE: reason}}``, three overrides);
- decode and validate a consult creation body (two UUIDs, unknown members refused);
- build a prescription detail (~40 fields: patient, prescriber, medication, 6 findings, 8
  history steps, 2 notes) as typed objects and encode it to JSON bytes.
Then, BENCH_STARTS (5) times each in a fresh process: importing the library, declaring the
types, and generating their JSON Schema once (the OpenAPI document), with the resident
memory that added; the medians are printed.
"""

# no `from __future__ import annotations`: the types are declared inside functions (so that a
# fresh process times their declaration), and msgspec and pydantic resolve string annotations
# in the module, where those local names do not exist
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

SECONDS = float(os.environ.get("BENCH_SECONDS", "1"))
STARTS = int(os.environ.get("BENCH_STARTS", "5"))
AT = "2026-12-01T09:30:00.123456+00:00"

APPROVE = orjson.dumps(
    {
        "overrides": {
            "DRUG_INTERACTION": "Discussed with the prescriber; the patient is monitored.",
            "THERAPEUTIC_DUPLICATION": "The earlier prescription was stopped.",
            "QUANTITY_DAYS_SUPPLY_MISMATCH": "Sig confirmed by phone.",
        }
    }
)
CONSULT = orjson.dumps({"patient_id": str(uuid.uuid4()), "prescription_id": str(uuid.uuid4())})


def detail_fields() -> dict[str, Any]:
    """The values a prescription detail is built from (what the handler has after its reads)."""
    return {
        "id": uuid.uuid4(),
        "state": "in_review",
        "urgent": False,
        "claim": {"user_id": str(uuid.uuid4()), "username": "alice", "until": AT},
        "notes": [
            {"author": "alice", "text": f"Note {i} about the order.", "at": AT} for i in (1, 2)
        ],
        "message_id": "msg-000123",
        "prescriber_order_number": "ORD-55",
        "received_at": AT,
        "written_date": "2026-11-30",
        "patient": {
            "name": {"last": "Testperson", "first": "Alex", "middle": "Q"},
            "gender": "F",
            "date_of_birth": {"date": "1970-01-01"},
            "address": {
                "line1": "1 Test Street",
                "city": "Testville",
                "state": "OH",
                "zip": "43000",
            },
        },
        "patient_id": uuid.uuid4(),
        "prescriber": {
            "name": {"last": "Doctor", "first": "Sam"},
            "npi": "1000000004",
            "dea": "AD1234563",
            "phone": "6145550100",
        },
        "medication": {
            "description": "Oxycodone HCl 5 mg oral tablet",
            "ndc": "00000000000",
            "quantity": "30",
            "days_supply": 5,
            "sig": "Take one tablet every six hours as needed for pain.",
            "refills": 0,
            "dea_schedule": "C48672",
        },
        "details": {"substitutions": "0", "note": None},
        "findings": [
            {
                "code": f"CODE_{i}",
                "severity": ("hard_stop", "warning", "info")[i % 3],
                "message": f"Plain words for finding {i}.",
                "evidence": {"field": "medication.ndc", "value": str(i), "rule": "test"},
            }
            for i in range(6)
        ],
        "history": [
            {
                "from": None if i == 0 else f"state_{i - 1}",
                "to": f"state_{i}",
                "actor": f"user:{uuid.uuid4()}",
                "actor_name": "alice",
                "reason": "step",
                "at": AT,
            }
            for i in range(8)
        ],
    }


def build_detail(
    v: dict[str, Any], detail: Any, claim: Any, note: Any, finding: Any, step: Any
) -> Any:
    """A detail response of either library's types from the plain values (the same work the
    hub's handler does: one object per nested value)."""
    return detail(
        id=v["id"],
        state=v["state"],
        urgent=v["urgent"],
        claim=claim(**v["claim"]),
        notes=[note(**n) for n in v["notes"]],
        message_id=v["message_id"],
        prescriber_order_number=v["prescriber_order_number"],
        received_at=v["received_at"],
        written_date=v["written_date"],
        patient=v["patient"],
        patient_id=v["patient_id"],
        prescriber=v["prescriber"],
        medication=v["medication"],
        details=v["details"],
        findings=[finding(**f) for f in v["findings"]],
        history=[
            step(
                from_state=s["from"],
                to_state=s["to"],
                actor=s["actor"],
                actor_name=s["actor_name"],
                reason=s["reason"],
                at=s["at"],
            )
            for s in v["history"]
        ],
    )


def define_msgspec() -> dict[str, Any]:
    """The bodies as msgspec Structs (frozen, unknown members refused in requests)."""
    from typing import Literal

    import msgspec

    class Approve(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
        overrides: dict[str, str] = {}

    class NewConsult(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
        patient_id: uuid.UUID
        prescription_id: uuid.UUID | None = None

    class Claim(msgspec.Struct, frozen=True):
        user_id: str
        username: str | None
        until: str

    class Note(msgspec.Struct, frozen=True):
        author: str | None
        text: str
        at: str

    class Finding(msgspec.Struct, frozen=True):
        code: str
        severity: Literal["hard_stop", "warning", "info"]
        message: str
        evidence: dict[str, Any]

    class Step(msgspec.Struct, frozen=True, rename={"from_state": "from", "to_state": "to"}):
        from_state: str | None
        to_state: str
        actor: str
        actor_name: str | None
        reason: str
        at: str

    class Detail(msgspec.Struct, frozen=True):
        id: uuid.UUID
        state: str
        urgent: bool
        claim: Claim | None
        notes: list[Note]
        message_id: str
        prescriber_order_number: str | None
        received_at: str
        written_date: str
        patient: dict[str, Any]
        patient_id: uuid.UUID | None
        prescriber: dict[str, Any]
        medication: dict[str, Any]
        details: dict[str, Any]
        findings: list[Finding]
        history: list[Step]

    approve = msgspec.json.Decoder(Approve)
    consult = msgspec.json.Decoder(NewConsult)
    encode = msgspec.json.Encoder().encode

    def build(v: dict[str, Any]) -> Detail:
        return build_detail(v, Detail, Claim, Note, Finding, Step)

    return {
        "approve": approve.decode,
        "consult": consult.decode,
        "respond": lambda v: encode(build(v)),
        "schema": lambda: msgspec.json.schema_components([Approve, NewConsult, Detail]),
    }


def define_pydantic() -> dict[str, Any]:
    """The same bodies as pydantic v2 models (``extra="forbid"`` in requests)."""
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

    class Approve(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        overrides: dict[str, str] = {}

    class NewConsult(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        patient_id: uuid.UUID
        prescription_id: uuid.UUID | None = None

    class Claim(BaseModel):
        user_id: str
        username: str | None
        until: str

    class Note(BaseModel):
        author: str | None
        text: str
        at: str

    class Finding(BaseModel):
        code: str
        severity: Literal["hard_stop", "warning", "info"]
        message: str
        evidence: dict[str, Any]

    class Step(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        from_state: str | None = Field(alias="from")
        to_state: str = Field(alias="to")
        actor: str
        actor_name: str | None
        reason: str
        at: str

    class Detail(BaseModel):
        id: uuid.UUID
        state: str
        urgent: bool
        claim: Claim | None
        notes: list[Note]
        message_id: str
        prescriber_order_number: str | None
        received_at: str
        written_date: str
        patient: dict[str, Any]
        patient_id: uuid.UUID | None
        prescriber: dict[str, Any]
        medication: dict[str, Any]
        details: dict[str, Any]
        findings: list[Finding]
        history: list[Step]

    detail = TypeAdapter(Detail)

    def build(v: dict[str, Any]) -> Detail:
        return build_detail(v, Detail, Claim, Note, Finding, Step)

    def schema() -> object:
        return [
            TypeAdapter(t).json_schema(mode=mode)
            for t, mode in (
                (Approve, "validation"),
                (NewConsult, "validation"),
                (Detail, "serialization"),
            )
        ]

    return {
        "approve": Approve.model_validate_json,
        "consult": NewConsult.model_validate_json,
        "respond": lambda v: detail.dump_json(build(v), by_alias=True),
        "schema": schema,
    }


def define_dicts() -> dict[str, Any]:
    """Today: orjson into dicts, hand-written checks, dicts out."""

    def approve(raw: bytes) -> dict[str, str]:
        body = orjson.loads(raw)
        overrides = body.get("overrides", {})
        if (
            not isinstance(body, dict)
            or set(body) - {"overrides"}
            or not isinstance(overrides, dict)
        ):
            raise ValueError(raw)
        if not all(isinstance(k, str) and isinstance(r, str) for k, r in overrides.items()):
            raise ValueError(raw)
        return overrides

    def consult(raw: bytes) -> tuple[uuid.UUID, uuid.UUID | None]:
        body = orjson.loads(raw)
        if not isinstance(body, dict) or set(body) - {"patient_id", "prescription_id"}:
            raise ValueError(raw)
        rx = body.get("prescription_id")
        return uuid.UUID(body["patient_id"]), uuid.UUID(rx) if rx else None

    def respond(v: dict[str, Any]) -> bytes:
        return orjson.dumps({**v, "id": str(v["id"]), "patient_id": str(v["patient_id"])})

    return {"approve": approve, "consult": consult, "respond": respond, "schema": lambda: None}


LIBRARIES: dict[str, Callable[[], dict[str, Any]]] = {
    "dicts+orjson": define_dicts,
    "msgspec": define_msgspec,
    "pydantic": define_pydantic,
}


def per_call(step: Callable[[], object]) -> float:
    """Microseconds of CPU per call, over about BENCH_SECONDS."""
    calls, start = 0, time.process_time()
    while (spent := time.process_time() - start) < SECONDS:
        for _ in range(200):
            step()
        calls += 200
    return spent / calls * 1e6


def requests_cost() -> dict[str, dict[str, float]]:
    fields = detail_fields()
    results = {}
    for name, define in LIBRARIES.items():
        lib = define()
        results[name] = {
            "approve decode µs": per_call(lambda lib=lib: lib["approve"](APPROVE)),
            "consult decode µs": per_call(lambda lib=lib: lib["consult"](CONSULT)),
            "detail build+encode µs": per_call(lambda lib=lib: lib["respond"](fields)),
        }
    return results


def resident_kib() -> int:
    """The process's resident memory now (``ru_maxrss`` would be no use: a child started by
    exec keeps its parent's peak)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def start_up(name: str) -> dict[str, float]:
    """In a fresh process: milliseconds to import and declare, then to generate the schema,
    and the resident memory that added."""
    rss, start = resident_kib(), time.perf_counter()
    lib = LIBRARIES[name]()
    declared = time.perf_counter()
    lib["schema"]()
    schema = time.perf_counter()
    return {
        "import+declare ms": (declared - start) * 1e3,
        "schema ms": (schema - declared) * 1e3,
        "RSS growth MiB": (resident_kib() - rss) / 1024,
    }


def start_ups(name: str) -> dict[str, float]:
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.api_types", "--start-up", name],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(STARTS)
    ]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    if sys.argv[1:2] == ["--start-up"]:
        print(json.dumps(start_up(sys.argv[2])))
        return
    table = requests_cost()
    for name in ("msgspec", "pydantic"):
        table[name].update(start_ups(name))
    columns = list(table["msgspec"])
    print("| | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in table.items():
        print(
            f"| {name} | "
            + " | ".join(f"{row[c]:.2f}" if c in row else "—" for c in columns)
            + " |"
        )
    print(
        "| pydantic / msgspec | "
        + " | ".join(f"{table['pydantic'][c] / table['msgspec'][c]:.1f}x" for c in columns)
        + " |"
    )


if __name__ == "__main__":
    main()
