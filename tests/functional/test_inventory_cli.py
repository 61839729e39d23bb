"""``telepharm stock receive | recall`` and the demo's shelf, as operators use them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

TELEPHARM = [sys.executable, "-m", "server"]
EXPIRY = (dt.date.today() + dt.timedelta(days=300)).isoformat()  # noqa: DTZ011


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    return {**clean, "TELEPHARM_DATA_DIR": str(tmp_path / "var"), "TELEPHARM_LOG_LEVEL": "WARNING"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TELEPHARM, *args], env=env, capture_output=True, text=True, timeout=120)


def stock(tmp_path: Path) -> list[tuple[str, str, int]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'hub.sqlite3'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT p.ndc11, l.lot, l.on_hand FROM inventory_lots l "
                    "JOIN inventory_products p ON p.id = l.product_id ORDER BY p.ndc11, l.lot"
                )
            ).all()
    finally:
        engine.dispose()
    return [(ndc, lot, on_hand // 1000) for ndc, lot, on_hand in rows]


def test_the_demo_stocks_its_pharmacy_once(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "migrate").returncode == 0
    first = run(env, "demo")
    assert first.returncode == 0, first.stderr
    assert "Demo stock:" in first.stdout
    shelf = stock(tmp_path)
    assert shelf == [
        ("99999041090", "DEMO-LIS-1", 270),
        ("99999052001", "DEMO-OXY-1", 100),
        ("99999063030", "DEMO-ATO-1", 20),
    ]
    assert run(env, "demo").returncode == 0
    assert stock(tmp_path) == shelf  # seeding again adds nothing
    received = run(
        env,
        *["stock", "receive", "--pharmacy", "1234567", "--ndc", "99999-410-90"],
        *["--lot", "L2", "--expiry", EXPIRY, "--quantity", "90"],
    )
    assert received.returncode == 0, received.stderr
    assert received.stdout.strip() == ("received 90 of lot L2 of NDC 99999041090; on hand 360")
    recalled = run(env, "stock", "recall", "99999-0410-90", "L2", "--reason", "FDA notice")
    assert recalled.returncode == 0, recalled.stderr
    assert recalled.stdout.strip() == "recalled lot L2 of NDC 99999041090; taken off 1 shelves"
    assert ("99999041090", "L2", 0) in stock(tmp_path)
    again = run(
        env,
        *["stock", "receive", "--pharmacy", "1234567", "--ndc", "99999041090"],
        *["--lot", "L2", "--expiry", EXPIRY, "--quantity", "90"],
    )
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "telepharm: Lot L2 of NDC 99999041090 is recalled: it may not be dispensed."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stock", "recall", "9999941090", "L1", "--reason", "x"], "give the NDC as 11 digits"),
        (["stock", "recall", "99999041090", "L1", "--reason", " "], "--reason must say why"),
        (
            ["stock", "receive", "--pharmacy", "1234567", "--ndc", "99999041090", "--lot", "L",
             "--expiry", EXPIRY, "--quantity", "0"],
            "The quantity is not valid",
        ),
    ],
)  # fmt: skip
def test_bad_stock_commands_say_why(env: dict[str, str], args: list[str], message: str) -> None:
    assert run(env, "migrate").returncode == 0
    assert run(env, "demo").returncode == 0
    result = run(env, *args)
    assert result.returncode == 1
    assert message in result.stderr
