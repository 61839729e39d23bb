"""The demo prescriber system's summaries and memory (server.demo_ehr), and its switch."""

from __future__ import annotations

import datetime as dt

import pytest

from eprescribe.ncpdp import Header, Party, SenderSoftware, parse_message
from eprescribe.ncpdp.outbound import CancelRxResponse, cancel_rx_response
from server import demo_ehr
from server.settings import Settings, SettingsError

SENT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
HUB = SenderSoftware("Telepharm", "Telepharm Hub", "0.1.0")


def answer(response: CancelRxResponse) -> str:
    cancel = Header(
        to=Party("P", "1234567"),
        from_=Party("D", "9990001"),
        message_id="CANCEL-0001",
        sent_time=SENT,
        sender_software=SenderSoftware("ExampleEHR", "ExampleEHR eRx", "1.0"),
    )
    data = cancel_rx_response(cancel, response, message_id="M", sent_time=SENT, software=HUB)
    return demo_ehr.summarize(parse_message(data))


@pytest.mark.parametrize(
    ("response", "summary"),
    [
        (CancelRxResponse.approve(), "cancel approved"),
        (CancelRxResponse.approve("Done"), "cancel approved: Done"),
        (
            CancelRxResponse.deny("AH", reason="Picked up this morning"),
            "cancel denied: AH (Patient has picked up prescription). Picked up this morning",
        ),
    ],
)
def test_a_cancels_answer_reads_as_the_prescriber_needs_it(
    response: CancelRxResponse, summary: str
) -> None:
    assert answer(response) == summary


def test_the_inbox_keeps_the_newest_hundred_newest_first() -> None:
    inbox = demo_ehr.Inbox()
    for n in range(demo_ehr.KEEP + 5):
        inbox.add(demo_ehr.Received(SENT, "RxChangeRequest", f"M{n}", None, "x"))
    kept = [item.message_id for item in inbox.newest_first()]
    assert len(kept) == demo_ehr.KEEP
    assert (kept[0], kept[-1]) == (f"M{demo_ehr.KEEP + 4}", "M5")


def test_the_demo_ehr_is_off_unless_switched_on_and_only_on_loopback() -> None:
    assert Settings.from_env({}).demo_ehr is False
    assert Settings.from_env({"TELEPHARM_DEMO_EHR": "1"}).demo_ehr is True
    assert Settings.from_env({"TELEPHARM_DEMO_EHR": "0"}).demo_ehr is False
    with pytest.raises(SettingsError, match="1 \\(on\\) or 0 \\(off\\)"):
        Settings.from_env({"TELEPHARM_DEMO_EHR": "yes"})
    with pytest.raises(SettingsError, match="loopback only"):
        Settings.from_env({"TELEPHARM_DEMO_EHR": "1", "TELEPHARM_ISSUER": "https://hub.example"})
