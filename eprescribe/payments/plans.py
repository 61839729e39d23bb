"""Payment plans: a balance split into instalments due on a schedule.

The amounts differ by at most one minor unit, the larger ones first, and always sum to the
total; the due dates are the first one and every ``every_days`` after it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

#: a plan has between two and twenty-four instalments (one is a payment, not a plan)
COUNT_MIN: Final = 2
COUNT_MAX: Final = 24
#: instalments are one to ninety days apart
EVERY_MIN: Final = 1
EVERY_MAX: Final = 90
#: the smallest instalment (a dollar): a plan of cent-sized charges costs more than it brings
INSTALMENT_MIN: Final = 100


class PlanRefused(ValueError):
    def __init__(self, code: str, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words


@dataclass(frozen=True, slots=True)
class Instalment:
    number: int
    due: dt.date
    amount: int


def instalments(total: int, count: int, first_due: dt.date, every_days: int) -> list[Instalment]:
    if not COUNT_MIN <= count <= COUNT_MAX:
        raise PlanRefused(
            "plan_count", f"A plan has {COUNT_MIN} to {COUNT_MAX} instalments, not {count}."
        )
    if not EVERY_MIN <= every_days <= EVERY_MAX:
        raise PlanRefused(
            "plan_interval", f"Instalments are {EVERY_MIN} to {EVERY_MAX} days apart."
        )
    if total < count * INSTALMENT_MIN:
        raise PlanRefused(
            "plan_too_small",
            f"Each instalment must be at least {INSTALMENT_MIN} minor units: "
            f"{total} does not split in {count}.",
        )
    base, larger = divmod(total, count)
    return [
        Instalment(
            number=i + 1,
            due=first_due + dt.timedelta(days=every_days * i),
            amount=base + (1 if i < larger else 0),
        )
        for i in range(count)
    ]
