"""The ``telepharm`` command as operators use it: real processes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eprescribe.drugs import DrugReference
from tests.support import rxnorm_release as rx

TELEPHARM = [sys.executable, "-m", "server"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    return {**clean, "TELEPHARM_DATA_DIR": str(tmp_path / "var"), "TELEPHARM_LOG_LEVEL": "WARNING"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TELEPHARM, *args], env=env, capture_output=True, text=True, timeout=120)


def test_migrate_pharmacy_and_clients(env: dict[str, str]) -> None:
    assert run(env, "migrate").returncode == 0
    assert run(env, "migrate").returncode == 0  # idempotent
    added = run(
        env,
        "pharmacy",
        "add",
        "--ncpdpid",
        "1234567",
        "--npi",
        "1000000004",
        "--name",
        "Corner Pharmacy",
    )
    assert added.returncode == 0, added.stderr
    sender = run(env, "client", "add", "--name", "EHR", "--scope", "script:send")
    assert sender.returncode == 0, sender.stderr
    credentials = json.loads(sender.stdout)
    assert set(credentials) == {"client_id", "client_secret"}
    assert len(credentials["client_secret"]) >= 43  # 256 bits
    reader = run(
        env, "client", "add", "--name", "PMS", "--scope", "rx:read", "--pharmacy", "1234567"
    )
    assert reader.returncode == 0, reader.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pharmacy", "add", "--ncpdpid", "12345", "--npi", "1000000004", "--name", "X"],
            "--ncpdpid must be 7 digits",
        ),
        (
            ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1234567898", "--name", "X"],
            "--npi must be a valid",
        ),
        (
            ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", " "],
            "--name must be",
        ),
        (["client", "add", "--name", "X", "--scope", "admin"], "--scope must be one or more of"),
        (["client", "add", "--name", "X", "--scope", "rx:read"], "must be bound with --pharmacy"),
        (
            ["client", "add", "--name", "X", "--scope", "rx:read", "--pharmacy", "7654321"],
            "no pharmacy with NCPDPID 7654321",
        ),
        (["pharmacy", "add", "--ncpdpid", "1234567"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    env: dict[str, str], args: list[str], message: str
) -> None:
    assert run(env, "migrate").returncode == 0
    result = run(env, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert lines[0].startswith("telepharm: ")


def test_duplicate_pharmacy_is_refused(env: dict[str, str]) -> None:
    run(env, "migrate")
    args = ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "A"]
    assert run(env, *args).returncode == 0
    again = run(env, *args)
    assert again.returncode == 1
    assert again.stderr.strip() == "telepharm: a pharmacy with NCPDPID 1234567 already exists"


def test_unmigrated_database_is_a_clear_error(env: dict[str, str]) -> None:
    result = run(
        env, "pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "A"
    )
    assert result.returncode == 1
    assert "is the schema migrated?" in result.stderr


def test_bad_environment_is_a_clear_error(env: dict[str, str]) -> None:
    result = run({**env, "TELEPHARM_ISSUER": "http://hub.example.org"}, "migrate")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "telepharm: TELEPHARM_ISSUER must use https unless the hub is on loopback"
    )


def test_processes_sharing_a_port_need_redis(env: dict[str, str]) -> None:
    """Without Redis each hub process's consult bus is its own: refused before listening."""
    result = run(env, "serve", "--port", "0", "--no-worker", "--reuse-port")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "telepharm: --reuse-port needs TELEPHARM_REDIS_URL: without Redis the two sides of a"
        " consult, on different hub processes, never meet"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queues", "telepharm.checks,checks"], "--queues takes some of telepharm.checks, "),
        (["--queues", ","], "--queues takes some of"),
        (["--concurrency", "0"], "--concurrency must be 1 or more, got 0"),
    ],
)
def test_a_worker_on_no_known_queue_is_refused(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = run(env, "worker", *args)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"telepharm: {message}")


def test_demo_is_idempotent_and_prints_how_to_send(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "migrate")
    first = run(env, "demo")
    assert first.returncode == 0, first.stderr
    second = run(env, "demo")
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout  # same pharmacy, same clients
    assert "curl" in first.stdout
    assert "/ncpdp/script" in first.stdout
    assert (tmp_path / "var" / "sample-newrx.xml").exists()
    assert oct((tmp_path / "var" / "demo-clients.json").stat().st_mode & 0o777) == "0o600"
    assert "Demo pharmacist (sign in at http://127.0.0.1:8080/): demo.pharmacist / " in (
        first.stdout
    )
    assert "otpauth://totp/Telepharmacy%20Hub:demo.pharmacist?secret=" in first.stdout
    assert oct((tmp_path / "var" / "demo-users.json").stat().st_mode & 0o777) == "0o600"


FDA = Path(__file__).resolve().parents[1] / "unit" / "eprescribe" / "drugs" / "fixtures"


def test_drugs_import_loads_the_fda_files_for_the_workers(env: dict[str, str]) -> None:
    from server.drugs import reference_with_imports
    from server.settings import Settings
    from server.worker.checking import sync_engine

    run(env, "migrate")
    result = run(
        env,
        "drugs",
        "import",
        "--product",
        str(FDA / "product.txt"),
        "--package",
        str(FDA / "package.txt"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported ")
    engine = sync_engine(Settings(data_dir=Path(env["TELEPHARM_DATA_DIR"])).sync_database_url)
    try:
        drug = reference_with_imports(engine).by_ndc("99999-101-30")
    finally:
        engine.dispose()
    assert drug is not None
    assert "sertraline" in drug.ingredient_names
    again = run(
        env,
        "drugs",
        "import",
        "--product",
        str(FDA / "product.txt"),
        "--package",
        str(FDA / "package.txt"),
    )
    assert again.returncode == 0  # a re-import replaces, it does not duplicate


def test_drugs_import_refuses_other_files(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "migrate")
    bogus = tmp_path / "product.txt"
    bogus.write_text("name,ndc\nx,y\n")
    result = run(
        env, "drugs", "import", "--product", str(bogus), "--package", str(FDA / "package.txt")
    )
    assert result.returncode == 1
    assert result.stderr.startswith("telepharm: not an FDA NDC Directory file")
    missing = run(
        env,
        "drugs",
        "import",
        "--product",
        str(tmp_path / "nope.txt"),
        "--package",
        str(FDA / "package.txt"),
    )
    assert missing.stderr.strip() == f"telepharm: no such file: {tmp_path / 'nope.txt'}"


def _imported_reference(env: dict[str, str]) -> DrugReference:
    from server.drugs import reference_with_imports
    from server.settings import Settings
    from server.worker.checking import sync_engine

    engine = sync_engine(Settings(data_dir=Path(env["TELEPHARM_DATA_DIR"])).sync_database_url)
    try:
        return reference_with_imports(engine)
    finally:
        engine.dispose()


def test_drugs_import_rxnorm_loads_the_release_for_the_workers(
    env: dict[str, str], tmp_path: Path
) -> None:
    run(env, "migrate")
    rx.release().write(tmp_path / "release" / "rrf")  # as NLM's zip unpacks
    result = run(env, "drugs", "import", "--rxnorm", str(tmp_path / "release"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported 8 RxNorm drugs (2 GPCK, 1 SBD, 5 SCD) with 6 NDCs")
    reference = _imported_reference(env)
    by_rxcui = reference.identify(None, rx.SERTRALINE_150, "").drug
    assert by_rxcui is not None
    assert by_rxcui.name == rx.SERTRALINE_150_NAME
    assert reference.identify(rx.ZOLOFT_NDC, None, "").drug == by_rxcui
    assert reference.identify(None, None, rx.SERTRALINE_150_NAME).drug == by_rxcui
    odt = reference.identify(None, None, rx.ODT_NAME).drug
    assert odt is not None
    assert odt.rxcui == rx.ONDANSETRON_4_ODT

    smaller = rx.release()
    smaller.conso = [row for row in smaller.conso if not row.startswith(rx.ZORBITIDE_10)]
    smaller.write(tmp_path / "next")
    again = run(env, "drugs", "import", "--rxnorm", str(tmp_path / "next"))
    assert again.returncode == 0, again.stderr
    replaced = _imported_reference(env)
    assert replaced.by_rxcui(rx.ZORBITIDE_10) is None  # replaced, not added to
    assert replaced.by_rxcui(rx.SERTRALINE_150) is not None


def test_drugs_import_rxnorm_refuses_a_broken_release_and_keeps_the_last(
    env: dict[str, str], tmp_path: Path
) -> None:
    run(env, "migrate")
    assert run(env, "drugs", "import", "--rxnorm", str(rx.release().write(tmp_path / "good")))
    broken = rx.release()
    broken.rel[2] = broken.rel[2].replace("|", "\t")
    result = run(env, "drugs", "import", "--rxnorm", str(broken.write(tmp_path / "broken")))
    assert result.returncode == 1
    assert result.stderr == (
        "telepharm: not an RxNorm release (nothing changed): RXNREL.RRF line 3: 1 fields, "
        "RRF has 16 and a final '|'\n"
    )
    assert _imported_reference(env).by_rxcui(rx.ZOLOFT_150) is not None  # the last import
    (tmp_path / "good" / "RXNSAT.RRF").unlink()
    missing = run(env, "drugs", "import", "--rxnorm", str(tmp_path / "good"))
    assert missing.stderr == (
        f"telepharm: no RxNorm file {tmp_path / 'good' / 'RXNSAT.RRF'} "
        "(give the release directory or its rrf/)\n"
    )
    empty = tmp_path / "empty"
    rx.Release([rx.conso(rx.SERTRALINE_IN, "IN", "sertraline")], [], []).write(empty)
    nothing = run(env, "drugs", "import", "--rxnorm", str(empty))
    assert "holds no clinical drug" in nothing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --product and --package (FDA NDC Directory) or --rxnorm DIR"),
        (["--product", "product.txt"], "give --product and --package"),
        (["--rxnorm", ".", "--product", "p.txt"], "import --rxnorm and the FDA files"),
        (["--rxnorm", "no-such-dir"], "no such directory: no-such-dir"),
    ],
)
def test_drugs_import_wants_one_kind_of_files(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = run(env, "drugs", "import", *args)
    assert result.returncode == 1
    assert result.stderr.startswith(f"telepharm: {message}")


def test_a_pharmacys_label_address_and_phone(env: dict[str, str]) -> None:
    run(env, "migrate")
    args = ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "A"]
    assert run(env, *args).returncode == 0
    contact = ["--address", "120 Main Street", "--address", "Riverbend, MT 59000"]
    done = run(env, "pharmacy", "set-contact", "1234567", *contact, "--phone", "(406) 555-0142")
    assert done.returncode == 0, done.stderr
    missing = run(env, "pharmacy", "set-contact", "7654321", *contact, "--phone", "1")
    assert missing.stderr.strip() == "telepharm: no pharmacy with NCPDPID 7654321"
    too_long = run(env, "pharmacy", "set-contact", "1234567", *contact, "--phone", "5" * 21)
    assert "--phone must be 1 to 20 characters" in too_long.stderr
