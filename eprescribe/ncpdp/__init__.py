"""Parse, validate and answer NCPDP SCRIPT Standard 2017071 messages.

Pure domain code: no web framework, no database. Inbound bytes go through
:func:`parse_message` (the one hardened XML parser, then structure, then content); every failure
is a :class:`ScriptRejection` that :func:`build_rejection` turns into the ``Error`` reply.
"""

from eprescribe.ncpdp.cancelrx import CancelRequest, CancelRx
from eprescribe.ncpdp.clinical import (
    CoAgent,
    CompoundInformation,
    CompoundIngredient,
    DoNotFill,
    DrugUseEvaluation,
    Facility,
    Measurement,
    NeedNoLaterThan,
    Observation,
    PriorAuthorization,
    Supervisor,
)
from eprescribe.ncpdp.error import Error
from eprescribe.ncpdp.errors import (
    ContentInvalidError,
    DuplicateMessageError,
    Script106Error,
    ScriptRejection,
    StandardViolationError,
    UnidentifiedError,
    UnsupportedTransactionError,
    XmlSyntaxError,
)
from eprescribe.ncpdp.header import DigitalSignature, Header
from eprescribe.ncpdp.medication import (
    CONTROLLED_SCHEDULES,
    DEA_SCHEDULES,
    Code,
    Diagnosis,
    DrugDbCode,
    MedicationPrescribed,
    ProductCode,
    Quantity,
    Strength,
)
from eprescribe.ncpdp.message import Body, Message, parse_message
from eprescribe.ncpdp.newrx import Allergy, NewRx, OrderDetails
from eprescribe.ncpdp.parties import Patient, Pharmacy, Prescriber
from eprescribe.ncpdp.prescriber_response import (
    DENIAL_REASONS,
    Answer,
    PrescriberResponse,
    ResponseKind,
)
from eprescribe.ncpdp.replies import (
    ReplyContext,
    build_error,
    build_rejection,
    build_status,
    build_verify,
    reply_context,
    salvage_reply_context,
    salvage_transaction,
)
from eprescribe.ncpdp.sig import Sig, SigInstruction
from eprescribe.ncpdp.status import Status
from eprescribe.ncpdp.types import (
    Address,
    Coded,
    CommunicationNumber,
    DateValue,
    JsonValue,
    Name,
    Party,
    SenderSoftware,
    from_json,
    to_json,
)
from eprescribe.ncpdp.verify import Verify
from eprescribe.ncpdp.xml import parse_document

__all__ = [
    "CONTROLLED_SCHEDULES",
    "DEA_SCHEDULES",
    "DENIAL_REASONS",
    "Address",
    "Allergy",
    "Answer",
    "Body",
    "CancelRequest",
    "CancelRx",
    "CoAgent",
    "Code",
    "Coded",
    "CommunicationNumber",
    "CompoundInformation",
    "CompoundIngredient",
    "ContentInvalidError",
    "DateValue",
    "Diagnosis",
    "DigitalSignature",
    "DoNotFill",
    "DrugDbCode",
    "DrugUseEvaluation",
    "DuplicateMessageError",
    "Error",
    "Facility",
    "Header",
    "JsonValue",
    "Measurement",
    "MedicationPrescribed",
    "Message",
    "Name",
    "NeedNoLaterThan",
    "NewRx",
    "Observation",
    "OrderDetails",
    "Party",
    "Patient",
    "Pharmacy",
    "Prescriber",
    "PrescriberResponse",
    "PriorAuthorization",
    "ProductCode",
    "Quantity",
    "ReplyContext",
    "ResponseKind",
    "Script106Error",
    "ScriptRejection",
    "SenderSoftware",
    "Sig",
    "SigInstruction",
    "StandardViolationError",
    "Status",
    "Strength",
    "Supervisor",
    "UnidentifiedError",
    "UnsupportedTransactionError",
    "Verify",
    "XmlSyntaxError",
    "build_error",
    "build_rejection",
    "build_status",
    "build_verify",
    "from_json",
    "parse_document",
    "parse_message",
    "reply_context",
    "salvage_reply_context",
    "salvage_transaction",
    "to_json",
]
