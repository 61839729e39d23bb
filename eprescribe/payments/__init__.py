"""Payments' pure rules: money in integer minor units, the ledger's signs, balances and
accounts-receivable ageing, instalment plans, the provider's webhook signature, and the day's
reconciliation of the ledger against the provider's balance transactions.

No web, no database, no provider SDK: ``server/payments`` reads the rows, asks these
functions and writes what they allow.
"""

from .ledger import (
    AGEING_BUCKETS,
    Ageing,
    Entry,
    EntryKind,
    ageing,
    balance,
    signed,
)
from .money import CURRENCIES, Money, MoneyRefused, money
from .plans import Instalment, PlanRefused, instalments
from .reconcile import (
    REFUND_FAILURE,
    Discrepancy,
    LedgerMovement,
    ProviderMovement,
    Reconciliation,
    reconcile,
    write_csv,
)
from .signature import SignatureRefused, sign, verify_signature

__all__ = [
    "AGEING_BUCKETS",
    "CURRENCIES",
    "REFUND_FAILURE",
    "Ageing",
    "Discrepancy",
    "Entry",
    "EntryKind",
    "Instalment",
    "LedgerMovement",
    "Money",
    "MoneyRefused",
    "PlanRefused",
    "ProviderMovement",
    "Reconciliation",
    "SignatureRefused",
    "ageing",
    "balance",
    "instalments",
    "money",
    "reconcile",
    "sign",
    "signed",
    "verify_signature",
    "write_csv",
]
