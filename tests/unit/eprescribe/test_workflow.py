import datetime as dt

import pytest

from eprescribe.workflow import State, TransitionNotAllowed, can_move, move, received

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)


def test_happy_path_history() -> None:
    history = [received("client:ehr", "NewRx received", NOW)]
    for target in (
        State.CHECKING,
        State.AWAITING_REVIEW,
        State.IN_REVIEW,
        State.APPROVED,
        State.FILLING,
        State.PRODUCT_CHECK,
        State.FILLING,
        State.PRODUCT_CHECK,
        State.READY,
        State.COMPLETED,
        State.FILLING,
        State.PRODUCT_CHECK,
        State.READY,
        State.RETURNED_TO_STOCK,
        State.FILLING,
    ):
        history.append(move(history[-1].to_state, target, "user:rph", "step", NOW))
    assert [(t.from_state, t.to_state) for t in history] == [
        (None, State.RECEIVED),
        (State.RECEIVED, State.CHECKING),
        (State.CHECKING, State.AWAITING_REVIEW),
        (State.AWAITING_REVIEW, State.IN_REVIEW),
        (State.IN_REVIEW, State.APPROVED),
        (State.APPROVED, State.FILLING),
        (State.FILLING, State.PRODUCT_CHECK),
        # sent back by the pharmacist checking the product
        (State.PRODUCT_CHECK, State.FILLING),
        (State.FILLING, State.PRODUCT_CHECK),
        (State.PRODUCT_CHECK, State.READY),
        (State.READY, State.COMPLETED),
        # a refill, not collected in time, filled again
        (State.COMPLETED, State.FILLING),
        (State.FILLING, State.PRODUCT_CHECK),
        (State.PRODUCT_CHECK, State.READY),
        (State.READY, State.RETURNED_TO_STOCK),
        (State.RETURNED_TO_STOCK, State.FILLING),
    ]


def test_nothing_reaches_ready_without_the_product_check() -> None:
    with pytest.raises(TransitionNotAllowed):
        move(State.FILLING, State.READY, "user:tech", "skip", NOW)
    with pytest.raises(TransitionNotAllowed):
        move(State.APPROVED, State.READY, "user:tech", "skip", NOW)


def test_cancel_only_from_open_states() -> None:
    assert can_move(State.AWAITING_REVIEW, State.CANCELLED)
    assert not can_move(State.COMPLETED, State.CANCELLED)
    for state in (State.FILLING, State.PRODUCT_CHECK, State.READY, State.RETURNED_TO_STOCK):
        assert can_move(state, State.CANCELLED), state
    assert not can_move(State.REJECTED, State.CANCELLED)


def test_skipping_review_is_refused() -> None:
    with pytest.raises(TransitionNotAllowed):
        move(State.RECEIVED, State.APPROVED, "user:rph", "skip", NOW)


def test_transitions_need_aware_time_actor_and_reason() -> None:
    with pytest.raises(ValueError, match="timezone"):
        received("client:ehr", "x", dt.datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="actor"):
        received("", "x", NOW)
