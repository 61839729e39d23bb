"""Client ids are passed on the command line, so none may look like an option."""

import pytest

from server.auth import clients


def test_a_drawn_id_that_starts_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["-looks-like-an-option", "-again", "Abc_-123"])
    monkeypatch.setattr(clients.secrets, "token_urlsafe", lambda _n: next(drawn))
    assert clients.new_client_id() == "Abc_-123"


def test_both_kinds_of_client_get_such_an_id(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["the-secret", "-dash", "machine-id", "-dash", "browser-id"])
    monkeypatch.setattr(clients.secrets, "token_urlsafe", lambda _n: next(drawn))
    machine, secret = clients.new_machine_client("EHR", "script:send", None)
    browser = clients.new_browser_client("Console", "openid rx:read", ["http://127.0.0.1:8080/"])
    drawn_ids = (secret, machine.client_id, browser.client_id)
    assert drawn_ids == ("the-secret", "machine-id", "browser-id")
