from eprescribe.checks import CheckContext, Severity, build_context
from eprescribe.identifiers import dea_name_mismatch, dea_valid
from eprescribe.ncpdp import NewRx, parse_message
from tests.support.script_samples import edit, newrx_xml, veterinarian_without_npi

from .helpers import RECEIVED, codes, context, finding

DEA = "Body/NewRx/Prescriber/NonVeterinarian/Identification/DEANumber"


def test_valid_prescriber_raises_nothing() -> None:
    assert codes(context()) == []
    assert codes(context(controlled=True)) == []


def test_npi_failing_luhn_is_a_hard_stop() -> None:
    found = finding(context(prescriber_npi="1234567898"), "NPI_INVALID")
    assert found.severity is Severity.HARD_STOP
    assert found.evidence == {"npi": "1234567898"}


def test_npi_with_wrong_length_fires() -> None:
    assert "NPI_INVALID" in codes(context(prescriber_npi="123456789"))


def test_dea_check_digit() -> None:
    assert dea_valid("BT1234563")
    assert dea_valid("AP5836727")
    assert dea_valid("F91234563-001AB")
    assert not dea_valid("BT1234564")
    assert not dea_valid("B1234563")
    assert "DEA_INVALID" in codes(context(controlled=True, prescriber_dea="BT1234564"))
    assert "DEA_INVALID" not in codes(context(controlled=True, prescriber_dea="BT1234563"))


def test_a_bad_dea_number_blocks_only_a_controlled_substance() -> None:
    controlled = finding(context(controlled=True, prescriber_dea="BT1234564"), "DEA_INVALID")
    assert controlled.severity is Severity.HARD_STOP
    other = finding(context(prescriber_dea="BT1234564"), "DEA_INVALID")
    assert other.severity is Severity.WARNING
    assert "not controlled" in other.message


def test_dea_name_initial() -> None:
    assert dea_name_mismatch("BA1234563", "TESTPRESCRIBER")
    assert not dea_name_mismatch("BT1234563", "TESTPRESCRIBER")
    assert not dea_name_mismatch("F91234563", "TESTPRESCRIBER")  # business registrant
    found = finding(context(controlled=True, prescriber_dea="BA1234563"), "DEA_NAME_MISMATCH")
    assert found.severity is Severity.WARNING
    assert "DEA_NAME_MISMATCH" not in codes(context(controlled=True))


def test_dea_required_for_controlled_only() -> None:
    ctx = context(controlled=True, omit=(DEA,))
    assert finding(ctx, "DEA_REQUIRED").evidence == {"schedule": "C-II"}
    assert "DEA_REQUIRED" not in codes(context())  # no DEA number, not controlled


def test_reference_schedule_makes_an_unmarked_drug_controlled() -> None:
    """A message that omits DEASchedule for a C-II drug still needs a DEA number."""
    ctx = context(
        with_reference=True,
        drug_description="oxycodone hydrochloride 5 MG Oral Tablet",
        omit=("Body/NewRx/MedicationPrescribed/DrugCoded/ProductCode",),
    )
    assert ctx.reference_schedule == "C48675"
    assert ctx.newrx.medication.dea_schedule is None
    assert "DEA_REQUIRED" in codes(ctx)


def _vet(licence: str | None = "VET-CA-12345", *, controlled: bool = False) -> CheckContext:
    document = veterinarian_without_npi(licence)
    if controlled:
        schedule = "<DEASchedule><Code>C48677</Code></DEASchedule>"
        document = edit(document, append={"Body/NewRx/MedicationPrescribed/DrugCoded": schedule})
    parsed = parse_message(document)
    assert isinstance(parsed.body, NewRx)
    return build_context(parsed.body, RECEIVED, signature=parsed.header.digital_signature)


def test_a_veterinarian_without_npi_is_not_npi_invalid() -> None:
    ctx = _vet()
    assert ctx.newrx.prescriber.npi is None
    assert codes(ctx) == []


def test_a_veterinarian_sending_an_npi_has_it_checked() -> None:
    vet = newrx_xml(prescriber_npi="1234567898").replace(b"NonVeterinarian>", b"Veterinarian>")
    parsed = parse_message(vet)
    assert isinstance(parsed.body, NewRx)
    assert "NPI_INVALID" in codes(build_context(parsed.body, RECEIVED, signature=None))


def test_a_veterinarian_with_no_licence_nor_dea_is_flagged() -> None:
    found = finding(_vet(licence=None), "VET_LICENSE_MISSING")
    assert found.severity is Severity.WARNING
    assert found.evidence == {"prescriber_kind": "veterinarian"}
    assert "NPI_INVALID" not in codes(_vet(licence=None))


def test_a_veterinarian_prescribing_a_controlled_substance_still_needs_a_dea_number() -> None:
    ctx = _vet(controlled=True)
    assert ctx.controlled
    assert "DEA_REQUIRED" in codes(ctx)
    assert "NPI_INVALID" not in codes(ctx)
