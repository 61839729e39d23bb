"""``telepharm stock``: a recall (national: it names an NDC and a lot, and every pharmacy's
shelf loses that lot) and receiving stock from the command line (the demo, a first count)."""

from __future__ import annotations

import argparse
import datetime as dt
from decimal import Decimal, InvalidOperation

from eprescribe.drugs import normalize_ndc

from ..commands import CliError, Commands, group, with_database
from ..db import Database
from ..settings import Settings


def register_cli(commands: Commands) -> None:
    stock = group(commands, "stock", help="pharmacy stock: recalls and receiving")
    recall = stock.add_parser(
        "recall", help="recall a lot everywhere: refused at every fill and receipt from now on"
    )
    recall.add_argument("ndc", help="the package NDC: 11 digits, or 10 with hyphens")
    recall.add_argument("lot")
    recall.add_argument("--reason", required=True, help="the recall's notice, in a few words")
    recall.set_defaults(run=cmd_recall)
    receive = stock.add_parser("receive", help="receive stock into a pharmacy")
    receive.add_argument("--pharmacy", required=True, metavar="NCPDPID")
    receive.add_argument("--ndc", required=True)
    receive.add_argument("--lot", required=True)
    receive.add_argument("--expiry", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
    receive.add_argument("--quantity", required=True, type=_quantity)
    receive.set_defaults(run=cmd_receive)


def _quantity(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError("expected a number") from None


def _ndc11(text: str) -> str:
    code = normalize_ndc(text)
    if code is None:
        raise CliError("give the NDC as 11 digits, or as 10 with its hyphens (e.g. 0002-3227-30)")
    return code


def cmd_recall(args: argparse.Namespace, settings: Settings) -> None:
    from ..admin import OPERATOR
    from ..errors import Problem
    from .service import Inventory

    ndc11 = _ndc11(args.ndc)
    reason = args.reason.strip()
    if not reason:
        raise CliError("--reason must say why")

    async def work(db: Database) -> int:
        return len(await Inventory(db).recall(OPERATOR, ndc11, args.lot, reason[:500]))

    try:
        shelves = with_database(settings, work)
    except Problem as exc:
        raise CliError(exc.detail) from None
    print(f"recalled lot {args.lot.strip()} of NDC {ndc11}; taken off {shelves} shelves")


def cmd_receive(args: argparse.Namespace, settings: Settings) -> None:
    from ..admin import OPERATOR, find_pharmacy
    from ..errors import Problem
    from .service import Inventory
    from .store import Receipt

    receipt = Receipt((_ndc11(args.ndc),), args.lot, args.expiry, args.quantity)

    async def work(db: Database) -> str:
        pharmacy = await find_pharmacy(db, args.pharmacy)
        moved = await Inventory(db).receive(OPERATOR, pharmacy.id, receipt)
        return (
            f"received {moved.quantity.normalize():f} of lot {moved.lot} of NDC "
            f"{moved.ndc11}; on hand {moved.balance_after.normalize():f}"
        )

    try:
        print(with_database(settings, work))
    except Problem as exc:
        raise CliError(exc.detail) from None
