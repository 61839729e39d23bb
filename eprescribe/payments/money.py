"""Amounts of money: an integer count of the currency's minor unit (cents) and the ISO 4217
code, lower-case as the provider writes it. Never a float: 0.1 + 0.2 is not 0.3 cents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: the currencies a pharmacy may charge in, with their minor unit's exponent (ISO 4217)
CURRENCIES: Final[dict[str, int]] = {"usd": 2, "cad": 2, "eur": 2, "gbp": 2, "jpy": 0}
#: the largest amount one movement may carry (a million dollars in cents: a typo, not a copay)
AMOUNT_MAX: Final = 100_000_000


class MoneyRefused(ValueError):
    """An amount or a currency the ledger does not take; ``code`` is stable."""

    def __init__(self, code: str, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise MoneyRefused("currency_mismatch", "Amounts in two currencies do not add.")
        return Money(self.amount + other.amount, self.currency)

    def show(self) -> str:
        """For people: ``12.34 USD``."""
        exponent = CURRENCIES.get(self.currency, 2)
        sign = "-" if self.amount < 0 else ""
        whole, part = divmod(abs(self.amount), 10**exponent)
        fraction = f".{part:0{exponent}d}" if exponent else ""
        return f"{sign}{whole}{fraction} {self.currency.upper()}"


def money(amount: object, currency: object, *, allow_zero: bool = False) -> Money:
    """``amount`` must be an ``int`` (not a bool, a float or a string of digits) above 0 (or 0
    when allowed) and at most :data:`AMOUNT_MAX`; ``currency`` one of :data:`CURRENCIES`."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise MoneyRefused(
            "amount_not_integer", "An amount is a whole number of the currency's minor unit."
        )
    if amount < 0 or (amount == 0 and not allow_zero):
        raise MoneyRefused("amount_not_positive", "An amount must be above zero.")
    if amount > AMOUNT_MAX:
        raise MoneyRefused("amount_too_large", f"An amount is at most {AMOUNT_MAX}.")
    if not isinstance(currency, str) or currency.lower() not in CURRENCIES:
        known = ", ".join(sorted(CURRENCIES))
        raise MoneyRefused("currency_unknown", f"The currency must be one of {known}.")
    return Money(amount, currency.lower())
