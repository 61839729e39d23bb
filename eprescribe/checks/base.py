"""The check registry and the value objects checks consume and produce."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from eprescribe.drugs import Drug, DrugReference, Identification
from eprescribe.epcs import Verification
from eprescribe.ncpdp import DigitalSignature, MedicationPrescribed, NewRx

# NCI codes of SCRIPT DEASchedule, and the names pharmacists use.
SCHEDULE_II, SCHEDULE_III, SCHEDULE_IV, SCHEDULE_V = "C48675", "C48676", "C48677", "C48679"
SCHEDULE_I = "C48672"
SCHEDULE_NAMES = {
    SCHEDULE_I: "C-I",
    SCHEDULE_II: "C-II",
    SCHEDULE_III: "C-III",
    SCHEDULE_IV: "C-IV",
    SCHEDULE_V: "C-V",
}


class Severity(enum.StrEnum):
    HARD_STOP = "hard_stop"  # blocks approval
    WARNING = "warning"  # approval needs an override reason
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str  # plain words for a pharmacist
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": dict(self.evidence),
        }


#: Federal defaults (prescription-checks.md §6): C-II 90 days, III/IV 6 months, V and
#: non-controlled 1 year. States override per schedule.
DEFAULT_EXPIRY_DAYS: Mapping[str | None, int] = MappingProxyType(
    {SCHEDULE_II: 90, SCHEDULE_III: 183, SCHEDULE_IV: 183, SCHEDULE_V: 365, None: 365}
)


@dataclass(frozen=True, slots=True)
class ExpiryRules:
    """Days a prescription stays fillable after it was written, by schedule (None =
    non-controlled), with per-state overrides keyed by the two-letter state code."""

    default: Mapping[str | None, int] = field(default_factory=lambda: DEFAULT_EXPIRY_DAYS)
    states: Mapping[str, Mapping[str | None, int]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ExpiryRules:
        """From ``{"default": {"C-II": 90, ...}, "states": {"HI": {"C-II": 7}}}``: schedule
        labels C-II to C-V and "non-controlled"; values are days. Raises ValueError."""
        default = {**DEFAULT_EXPIRY_DAYS, **_days_by_schedule(data.get("default", {}))}
        states = {
            str(state).upper(): _days_by_schedule(days)
            for state, days in dict(data.get("states", {})).items()
        }
        return cls(MappingProxyType(default), states)

    def days(self, schedule: str | None, state: str | None) -> int:
        override = self.states.get(state or "", {})
        return override.get(schedule, self.default.get(schedule, self.default[None]))


_LABELS = {label: code for code, label in SCHEDULE_NAMES.items()} | {"non-controlled": None}


def _days_by_schedule(data: Mapping[str, Any]) -> dict[str | None, int]:
    rules: dict[str | None, int] = {}
    for label, days in dict(data).items():
        if label not in _LABELS:
            raise ValueError(f"unknown schedule {label!r}: use {', '.join(_LABELS)}")
        if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
            raise ValueError(f"days for {label} must be a positive whole number")
        rules[_LABELS[label]] = days
    return rules


@dataclass(frozen=True, slots=True)
class ActiveMedication:
    """Another prescription in the patient's picture: accepted and its supply not run out,
    or pending (still open in the pharmacy: received, being checked or verified) since
    ``pending_since``, its receipt."""

    prescription_id: str
    description: str
    drug: Drug | None  # None when the reference cannot identify it
    pending_since: dt.datetime | None = None

    def label(self, name: str) -> str:
        """How a finding names it: ``name`` is the drug as the reference knows it."""
        if self.pending_since is None:
            return f"the active {name}"
        received = self.pending_since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"the pending prescription {self.description} (received {received}, not yet verified)"
        )

    def evidence(self, name: str) -> dict[str, str]:
        """What a finding's evidence says of it: the active drug and its prescription, or
        the pending prescription, when it came, and that it is not yet verified."""
        if self.pending_since is None:
            return {"active_drug": name, "active_prescription_id": self.prescription_id}
        return {
            "pending_drug": name,
            "pending_prescription_id": self.prescription_id,
            "pending_received_at": self.pending_since.isoformat(),
        }


#: assumed supply of an accepted prescription that states no days supply
DEFAULT_DAYS_SUPPLY = 30


def supply_ends(medication: MedicationPrescribed, received: dt.date) -> dt.date:
    """The last day a prescription received on ``received`` lasts, refills included: until
    then it is one of the patient's active medications."""
    days = medication.days_supply or DEFAULT_DAYS_SUPPLY
    fills = 1 + medication.number_of_refills
    return received + dt.timedelta(days=days * fills)


@dataclass(frozen=True, slots=True)
class PatientMatch:
    """How the message's patient matched the pharmacy's profiles (prescription-checks.md §3).

    ``exact``: one profile agrees on normalised name, date of birth, gender and ZIP;
    ``new``: no profile shares name and date of birth; ``weak``: profiles share name and date of
    birth but differ in gender or ZIP; ``ambiguous``: several profiles match exactly. Only
    ``exact`` links the prescription to a profile: the others go to a pharmacist, never merged.
    """

    kind: Literal["exact", "new", "weak", "ambiguous"]
    candidates: tuple[str, ...] = ()  # profile IDs
    differences: tuple[str, ...] = ()  # for weak matches: "gender", "postal_code"


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything the checks may look at; gathered by the caller, never fetched by a check."""

    newrx: NewRx
    received_at: dt.datetime
    signature: DigitalSignature | None = None
    #: where the prescription is dispensed, for state rules
    state: str | None = None
    expiry: ExpiryRules = field(default_factory=ExpiryRules)
    #: the drug reference and what it made of the prescribed drug (None: checks needing it skip)
    reference: DrugReference | None = None
    identification: Identification | None = None
    #: the patient's other medications (active and pending), and allergy entries from the
    #: message and profile
    active: tuple[ActiveMedication, ...] = ()
    allergies: tuple[str, ...] = ()
    patient_match: PatientMatch | None = None
    #: the message's PrescriberOrderNumber, and the patient's other prescriptions that came
    #: with the same one for the same drug (under other MessageIDs)
    prescriber_order_number: str | None = None
    same_order: tuple[str, ...] = ()
    #: the patient's pending prescriptions left out of ``active`` (beyond the most compared)
    pending_omitted: int = 0
    #: what verifying the practitioner's signature found, when signature parts came (verified
    #: by the caller on receipt: it may fetch a CRL, which no check may)
    epcs: Verification | None = None

    @property
    def drug(self) -> Drug | None:
        return self.identification.drug if self.identification else None

    @property
    def reference_schedule(self) -> str | None:
        """The drug's schedule from the reference, when the drug was identified."""
        drug = self.drug
        return drug.dea_schedule if drug is not None else None

    @property
    def schedule(self) -> str | None:
        """The schedule the legal rules apply: the reference's when known (a message that
        understates the schedule must not escape the stricter rule), else the message's."""
        return self.reference_schedule or self.message_schedule

    @property
    def message_schedule(self) -> str | None:
        sent = self.newrx.medication.dea_schedule
        return sent if sent in SCHEDULE_NAMES else None

    @property
    def controlled(self) -> bool:
        return self.schedule is not None


#: the evidence fields that name the patient's other prescriptions a finding rests on
RELATED_EVIDENCE = ("active_prescription_id", "pending_prescription_id", "other_prescription_ids")


def related_prescriptions(findings: Iterable[Finding]) -> frozenset[str]:
    """The IDs of the other prescriptions ``findings`` rest on (a pair with them, or the same
    order sent again). The checks that compare two prescriptions are symmetric: what one
    finds about the pair, the other finds too, so a prescription these findings do not name
    would find nothing new about theirs."""
    named: set[str] = set()
    for finding in findings:
        for key in RELATED_EVIDENCE:
            value = finding.evidence.get(key)
            if isinstance(value, str):
                named.add(value)
            elif isinstance(value, list | tuple):
                named.update(str(v) for v in value)
    return frozenset(named)


#: a check: the findings a prescription deserves under one rule family
Check = Callable[[CheckContext], Iterable[Finding]]
