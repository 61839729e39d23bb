import json

from eprescribe.ncpdp import parse_message, to_json
from server.db import json_dumps
from tests.support.script_samples import FIXTURES


def test_json_columns_store_value_objects_as_the_domain_serialises_them() -> None:
    message = parse_message((FIXTURES / "newrx_full.xml").read_bytes())
    newrx = message.body
    for part in (newrx.patient, newrx.prescriber, newrx.medication, newrx.pharmacy,
                 message.header.digital_signature):  # fmt: skip
        assert json.loads(json_dumps(part)) == to_json(part)
    assert json.loads(json_dumps(newrx.allergies)) == [to_json(a) for a in newrx.allergies]
