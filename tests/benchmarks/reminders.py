"""Refill reminders fanned out and delivered by email (issue 17).

`python -m tests.benchmarks.reminders` (PostgreSQL and Redis on 127.0.0.1). On a fresh
database (BENCH_DATABASE):

- **seed** (SQL, not measured): one pharmacy, BENCH_REMINDERS (10,000) patients, each with
  email as their channel (a verified address, UTC, a quiet window that is not now), one
  prescription with refills and one fill of 30 days handed over 23 days ago: each due for its
  refill reminder today;
- **fan-out**: one run of the scheduled notices (:class:`server.schedule.Schedule`, as the
  beat's task or a hub's loop runs it) in this process: every reminder rendered and written
  to the notification outbox, once; wall time and CPU (this process, PostgreSQL);
- **delivery**: a real SMTP server (aiosmtpd's ``Sink``, its own process) and one worker
  process (``telepharm worker --concurrency 1``: the solo pool, one process); the reminders'
  IDs published as the hub publishes them (32 a task) on the worker's broker (BENCH_BROKER);
  timed from the first publish until every one is ``sent`` (the SMTP server took it):
  messages a second of that one worker process, and CPU milliseconds a message of each
  process (the worker, the SMTP server, PostgreSQL, Redis), read from ``/proc/<pid>/stat``.

Target: at least 200 messages a second a worker process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.benchmarks.cpu import cpu_by_role, cpu_per_message
from tests.benchmarks.intake import PG, free_port, process, psql, reset_database, wait_port

REMINDERS = int(os.environ.get("BENCH_REMINDERS", "10000"))
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/14")
DATABASE = os.environ.get("BENCH_DATABASE", "telepharm_bench")
TARGET = 200.0
#: BENCH_PROFILE=FILE: run the worker under py-spy (BENCH_PYSPY), its raw samples to FILE
PROFILE = os.environ.get("BENCH_PROFILE", "")
PYSPY = os.environ.get("BENCH_PYSPY", str(Path(sys.executable).parent / "py-spy"))
DEADLINE = float(os.environ.get("BENCH_DEADLINE", "600"))
HERE = Path(__file__).resolve().parents[2]
_PATIENT = {
    "kind": "human",
    "name": {"last": "BENCHPATIENT", "first": "ALEX", "middle": None, "suffix": None,
             "prefix": None},
    "gender": "U",
    "date_of_birth": {"date": "1980-01-01", "datetime": None},
}  # fmt: skip
_MEDICATION = {
    "drug_description": "synthetic 10 mg tablet",
    "quantity": {"value": 30, "unit_code": "C48542"},
    "days_supply": 30,
    "number_of_refills": 3,
}


def seed(pharmacy: uuid.UUID, n: int, now: dt.datetime) -> None:
    """``n`` patients, each with one refill reminder due today (see the module docstring)."""
    handed = (now - dt.timedelta(days=23)).isoformat()
    # a one-minute quiet window twelve hours from now: never in the way
    quiet = (now + dt.timedelta(hours=12)).strftime("%H:%M")
    quiet_end = (now + dt.timedelta(hours=12, minutes=1)).strftime("%H:%M")
    patient, medication = json.dumps(_PATIENT), json.dumps(_MEDICATION)
    sql = f"""
    INSERT INTO pharmacies (id, ncpdpid, npi, name, phone, created_at)
      VALUES ('{pharmacy}', '7654321', '1000000004', 'Bench Pharmacy', '5555550100', now());
    CREATE TEMP TABLE seed AS SELECT g, gen_random_uuid() AS pat, gen_random_uuid() AS msg,
      gen_random_uuid() AS rx, gen_random_uuid() AS fill, gen_random_uuid() AS contact
      FROM generate_series(1, {n}) g;
    INSERT INTO patients (id, pharmacy_id, last_name_key, first_name_key, date_of_birth, gender,
      postal_code, demographics, allergies, created_at, updated_at)
      SELECT pat, '{pharmacy}', 'BENCH' || g, 'ALEX', '1980-01-01', 'U', '90000',
        '{patient}'::jsonb, '[]'::jsonb, now(), now() FROM seed;
    INSERT INTO patient_preferences (patient_id, language, time_zone, quiet_start, quiet_end,
      preferred_channel, ninety_day_supply, easy_open_caps, large_print_labels, consent,
      updated_at)
      SELECT pat, 'en', 'UTC', '{quiet}', '{quiet_end}', 'email', false, false, false,
        '{{}}'::jsonb, now() FROM seed;
    INSERT INTO patient_contacts (id, patient_id, pharmacy_id, kind, value, code_attempts,
      verified_at, created_at, updated_at)
      SELECT contact, pat, '{pharmacy}', 'email', 'pat' || g || '@bench.example.net', 0, now(),
        now(), now() FROM seed;
    INSERT INTO inbound_messages (id, sender_client_id, sender, message_id, transaction,
      version, pharmacy_id, sha256, raw, received_at)
      SELECT msg, 'bench', 'bench', 'BENCH' || g, 'NewRx', '2017071', '{pharmacy}',
        md5(g::text) || md5(g::text), '\\x00', now() FROM seed;
    INSERT INTO prescriptions (id, pharmacy_id, inbound_message_id, message_id, state,
      drug_description, written_date, patient_id, patient, prescriber, medication, details,
      received_at, updated_at, urgent, test, fills_dispensed)
      SELECT rx, '{pharmacy}', msg, 'BENCH' || g, 'completed', 'synthetic 10 mg tablet',
        current_date - 30, pat, '{patient}'::jsonb, '{{}}'::jsonb, '{medication}'::jsonb,
        '{{}}'::jsonb, now() - interval '30 days', now(), false, false, 1 FROM seed;
    INSERT INTO fills (id, prescription_id, pharmacy_id, number, state, state_since,
      controlled, days_supply, quantity_owed, unit, quantity, fillers, started_at, ended_at,
      updated_at)
      SELECT fill, rx, '{pharmacy}', 0, 'completed', '{handed}', false, 30, '30', 'C48542',
        '30', '[]'::jsonb, '{handed}', '{handed}', now() FROM seed;
    """  # noqa: S608 (constants and generated IDs only)
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE, "-qv", "ON_ERROR_STOP=1"],
        input=sql, text=True, check=True,
    )  # fmt: skip


def fan_out(env: dict[str, str], now: dt.datetime) -> tuple[list[uuid.UUID], dict[str, float]]:
    from server.schedule.runner import Schedule
    from server.settings import Settings

    schedule = Schedule.from_settings(Settings.from_env(env))
    before_pg = cpu_by_role({}, DATABASE)["postgres"]
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    ran = schedule.run(now)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    pg = cpu_by_role({}, DATABASE)["postgres"] - before_pg
    schedule.close()
    n = len(ran.written)
    mine = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return ran.written, {
        "written": n,
        "seconds": round(wall, 2),
        "per_second": round(n / wall, 1),
        "cpu_ms_per_notice_job": round(mine * 1000 / max(n, 1), 3),
        "cpu_ms_per_notice_postgres": round(pg * 1000 / max(n, 1), 3),
    }


def sent() -> int:
    return int(psql("SELECT count(*) FROM notifications WHERE state = 'sent'")[0])


def deliver(env: dict[str, str], written: list[uuid.UUID], work: Path) -> dict[str, object]:
    from server.notifications import QUEUE, SEND_TASK
    from server.settings import Settings
    from server.worker import create_celery

    port = free_port()
    smtp_env = dict(env)
    smtp = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
            "-c", "aiosmtpd.handlers.Sink"]  # fmt: skip
    env = dict(
        env,
        TELEPHARM_SMTP_HOST="127.0.0.1",
        TELEPHARM_SMTP_PORT=str(port),
        TELEPHARM_SMTP_SECURITY="none",
        TELEPHARM_MAIL_FROM="notify@bench.example.org",
    )
    worker_args = [sys.executable, "-m", "server", "worker", "--concurrency", "1"]
    with process(smtp, smtp_env, work / "smtp.log") as server:
        wait_port(port)
        with process(worker_args, env, work / "worker.log") as worker:
            celery = create_celery(Settings.from_env(env))
            time.sleep(3)  # the worker connected to the broker
            roots = {"worker": worker.pid, "smtp": server.pid}
            spy = None
            if PROFILE:  # py-spy's raw samples of the worker, idle time included
                spy = subprocess.Popen([PYSPY, "record", "--idle", "-f", "raw", "-o", PROFILE,
                                        "--pid", str(worker.pid)])  # fmt: skip
            before = cpu_by_role(roots, DATABASE)
            started = time.perf_counter()
            with celery.connection_for_write() as connection:
                for i in range(0, len(written), 32):
                    chunk = [str(x) for x in written[i : i + 32]]
                    celery.send_task(SEND_TASK, args=[chunk], queue=QUEUE, connection=connection)
            published = time.perf_counter() - started
            while (done := sent()) < len(written) and time.perf_counter() - started < DEADLINE:
                time.sleep(0.2)
            wall = time.perf_counter() - started
            after = cpu_by_role(roots, DATABASE)
            if spy is not None:  # py-spy writes its samples on an interrupt
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
    return {
        "sent": done,
        "seconds": round(wall, 2),
        "publish_seconds": round(published, 2),
        "per_second_per_worker": round(done / wall, 1),
        "target_per_second": TARGET,
        "cpu_ms_per_message": (spent := cpu_per_message(before, after, done)),
        # what one worker process sends a second of its own CPU (the rate with a core to
        # itself: on a loaded machine the wall-clock rate above is the machine's, not its)
        "per_worker_cpu_second": round(1000 / max(spent["worker"], 0.001), 1),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    reset_database()
    subprocess.run(["redis-cli", "-n", BROKER.rsplit("/", 1)[1], "flushdb"], check=True,
                   capture_output=True)  # fmt: skip
    env = dict(
        os.environ,
        PYTHONPATH=str(HERE),
        TELEPHARM_DATABASE_URL=PG + DATABASE,
        TELEPHARM_DATA_DIR=str(work / "var"),
        TELEPHARM_BROKER_URL=BROKER,
        TELEPHARM_LOG_LEVEL="WARNING",
    )
    subprocess.run([sys.executable, "-m", "server", "migrate"], env=env, check=True)
    now = dt.datetime.now(dt.UTC)
    seed(uuid.uuid4(), REMINDERS, now)
    written, fanned = fan_out(env, now)
    results: dict[str, object] = {"reminders": REMINDERS, "fan_out": fanned}
    results["delivery"] = deliver(env, written, work)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
