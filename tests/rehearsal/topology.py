"""The production topology of deploy/ on this machine, from the shipped files: PostgreSQL (a new
database of its own, migrated) and Redis (two DBs of its own), coturn, the hub processes of
``telepharm@.service``, a worker per ``worker-*.env`` of ``telepharm-worker@.service``, the
beat, and nginx with a self-signed certificate in front, every port unprivileged and free.

What systemd would do is done here as it would: the command of each unit's ExecStart with its
specifiers and the variables of its EnvironmentFiles, in an environment holding only those
variables (and what runs Python: PATH, PYTHONPATH, HOME, LANG)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support.processes import children, command_line, free_port, running, stop, tagged

from .shipped import (
    DEPLOY,
    ShippedFileError,
    check_turn,
    command,
    name,
    option,
    read_env,
    read_unit,
    relocate,
    render_env,
    render_turn,
    specifiers,
    substitute,
    turn_urls,
)

TAG = "TELEPHARM_REHEARSAL_RUN"
#: what a process needs to run the hub's Python, passed on from the rehearsal's environment
#: how long a process may take to start (the whole hub imported: slow on a loaded machine)
START_TIMEOUT = 150
PASSED_ON = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


class RehearsalError(Exception):
    """The topology did not do what production must: the message says what."""


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Topology:
    work: Path
    #: PostgreSQL's maintenance database (CREATE and DROP DATABASE are run there)
    admin_url: str
    broker_url: str
    bus_url: str
    hubs: int = 2
    #: the files rehearsed (a copy with a fault, in the rehearsal's own tests)
    deploy: Path = DEPLOY
    prefix: str = sys.prefix
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)
    database: str = field(default_factory=lambda: f"telepharm_rehearsal_{secrets.token_hex(4)}")
    turn_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    started: list[Started] = field(default_factory=list)
    #: each unit instance's command and the variables of its EnvironmentFiles
    commands: dict[str, list[str]] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    database_made: bool = False

    def __post_init__(self) -> None:
        self.root = self.work / "root"
        self.ports = {k: free_port() for k in ("https", "http", "hub", "turn", "turns")}
        self.issuer = f"https://127.0.0.1:{self.ports['https']}"
        self.certificate = self.root / "etc/ssl/telepharm/fullchain.pem"
        self.telepharm = Path(self.prefix) / "bin" / "telepharm"
        self.hub_env: dict[str, str] = {}
        self.hub_address = ""
        self.relay_ports = (0, 0)

    # rendering the shipped files

    def install(self) -> None:
        """The shipped files rendered under the root, as the runbook installs them."""
        if not self.telepharm.exists():
            raise RehearsalError(f"no {self.telepharm}: install the hub into {self.prefix}")
        for sub in ("etc/telepharm", "etc/nginx", "var/lib/telepharm", "var/log/nginx"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("etc/ssl/telepharm", "var/log/turnserver", "run/turnserver", "var/lib/turn"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._certificate()
        turn = self._turn()
        self._env(turn)
        self._units()
        self._nginx()

    def _certificate(self) -> None:
        key = self.certificate.with_name("privkey.pem")
        made = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(self.certificate)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if made.returncode:
            raise RehearsalError(f"openssl could not make a certificate: {made.stderr.strip()}")

    def _turn(self) -> dict[str, list[str]]:
        path = self.deploy / "coturn/turnserver.conf"
        text = path.read_text()
        shipped = check_turn(text, name(path))
        text = render_turn(
            relocate(text, self.root, self.prefix),
            {
                "listening-port": str(self.ports["turn"]),
                "tls-listening-port": str(self.ports["turns"]),
                "static-auth-secret": self.turn_secret,
            },
            name(path),
        )
        # Everything of the rehearsal is on loopback, which the shipped file rightly denies
        # relays: here, and only here, loopback peers are let through.
        text += (
            "\n# the rehearsal: on loopback\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1\n"
            "allow-loopback-peers\nallowed-peer-ip=127.0.0.1\n"
        )
        (self.work / "turnserver.conf").write_text(text)
        self.relay_ports = (int(shipped["min-port"][0]), int(shipped["max-port"][0]))
        return shipped

    def _env(self, turn: dict[str, list[str]]) -> None:
        path = self.deploy / "hub.env.example"
        text = path.read_text()
        shipped = read_env(text, name(path))
        ports = {
            int(turn["listening-port"][0]): self.ports["turn"],
            int(turn["tls-listening-port"][0]): self.ports["turns"],
        }
        if "TELEPHARM_TURN_URLS" not in shipped:
            raise ShippedFileError(f"{name(path)}: TELEPHARM_TURN_URLS is not set")
        database = urlsplit(self.admin_url)._replace(
            scheme="postgresql+asyncpg", path=f"/{self.database}"
        )
        values = {
            "TELEPHARM_DATABASE_URL": urlunsplit(database),
            "TELEPHARM_BROKER_URL": self.broker_url,
            "TELEPHARM_REDIS_URL": self.bus_url,
            "TELEPHARM_ISSUER": self.issuer,
            "TELEPHARM_TURN_URLS": turn_urls(shipped["TELEPHARM_TURN_URLS"], ports, name(path)),
            "TELEPHARM_TURN_SECRET": self.turn_secret,
        }
        if not shipped.get("TELEPHARM_ISSUER", "").startswith("https://"):
            raise ShippedFileError(f"{name(path)}: TELEPHARM_ISSUER must be https")
        rendered = relocate(render_env(text, values, name(path)), self.root, self.prefix)
        (self.root / "etc/telepharm/hub.env").write_text(rendered)
        self.hub_env = read_env(rendered, "hub.env")
        for worker_env in sorted((self.deploy / "systemd").glob("worker-*.env")):
            target = self.root / "etc/telepharm" / worker_env.name
            target.write_text(relocate(worker_env.read_text(), self.root, self.prefix))

    def _commands(self, unit_file: str, instance: str = "") -> tuple[list[str], dict[str, str]]:
        unit = read_unit(self.deploy / "systemd" / unit_file)
        where = name(unit.path)
        env: dict[str, str] = {}
        for entry in unit.environment_files:
            optional = entry.startswith("-")
            path = Path(relocate(specifiers(entry.lstrip("-"), instance), self.root, self.prefix))
            if not path.exists():
                if optional:
                    continue
                raise ShippedFileError(f"{where}: EnvironmentFile {entry} is not shipped")
            env.update(read_env(path.read_text(), str(path)))
        start = relocate(specifiers(unit.exec_start, instance), self.root, self.prefix)
        return command(start, env, where), env

    def _units(self) -> None:
        for number in range(1, self.hubs + 1):
            argv, env = self._commands("telepharm@.service", str(number))
            where = "deploy/systemd/telepharm@.service"
            self.hub_address = f"{option(argv, '--host', where)}:{option(argv, '--port', where)}"
            argv[argv.index("--port") + 1] = str(self.ports["hub"])
            self.commands[f"hub@{number}"] = argv
            self.envs[f"hub@{number}"] = env
        workers = sorted((self.deploy / "systemd").glob("worker-*.env"))
        if not workers:
            raise ShippedFileError("deploy/systemd: no worker-*.env, so no worker runs")
        for worker_env in workers:
            instance = worker_env.stem.removeprefix("worker-")
            argv, env = self._commands("telepharm-worker@.service", instance)
            self.commands[f"worker@{instance}"] = argv
            self.envs[f"worker@{instance}"] = env
        argv, env = self._commands("telepharm-beat.service")
        self.commands["beat"] = argv
        self.envs["beat"] = env

    def _nginx(self) -> None:
        path = self.deploy / "nginx/telepharm.conf"
        where = name(path)
        # without its comments: what is substituted must be in a directive
        text = re.sub(r"(?m)^\s*#.*\n|[ \t]+#[^'\"\n]*$", "", path.read_text())
        text = relocate(text, self.root, self.prefix)
        text = substitute(text, self.hub_address, f"127.0.0.1:{self.ports['hub']}", where)
        text = substitute(text, "listen 443 ", f"listen 127.0.0.1:{self.ports['https']} ", where)
        text = substitute(text, "listen 80;", f"listen 127.0.0.1:{self.ports['http']};", where)
        site = self.root / "etc/nginx/telepharm.conf"
        site.write_text(text)
        temp = self.work / "nginx-temp"
        temp.mkdir()
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (self.work / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {self.work}/nginx.pid;\n"
            f"error_log {self.root}/var/log/nginx/error.log;\n"
            "events { worker_connections 1024; }\n"
            "http {\n    include /etc/nginx/mime.types;\n"
            + "".join(
                f"    {kind}_temp_path {temp}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"    include {site};\n}}\n"
        )
        checked = subprocess.run(
            ["nginx", "-t", "-q", "-c", str(self.work / "nginx.conf"), "-p", str(self.work)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if checked.returncode:
            raise ShippedFileError(f"{where}: nginx -t: {checked.stderr.strip()}")

    # the machine's services

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self._admin(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self.database_made = True

    def drop_database(self) -> None:
        if not self.database_made:
            return
        import psycopg

        with psycopg.connect(self._admin(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def _admin(self) -> str:
        return urlunsplit(urlsplit(self.admin_url)._replace(scheme="postgresql"))

    def flush_redis(self) -> None:
        import redis

        for url in (self.broker_url, self.bus_url):
            client = redis.Redis.from_url(url)
            try:
                client.flushdb()
            finally:
                client.close()

    # processes

    def environment(self, unit_env: dict[str, str]) -> dict[str, str]:
        passed = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
        return {**passed, **unit_env, TAG: self.tag}

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """``telepharm ARGS`` as the operator runs it, with hub.env."""
        done = subprocess.run(
            [str(self.telepharm), *args],
            env=self.environment(self.hub_env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode:
            raise RehearsalError(f"telepharm {args[0]}: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def start(self, label: str, argv: list[str], env: dict[str, str] | None = None) -> Started:
        log = self.work / f"{label.replace('@', '-')}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                env=self.environment(env if env is not None else self.hub_env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.work,
            )
        self.started.append(Started(label, process, log))
        return self.started[-1]

    def start_all(self) -> None:
        self.start("coturn", ["turnserver", "-c", str(self.work / "turnserver.conf")], env={})
        self.wait(lambda: bool(self.listening(self.ports["turn"])), 20, "coturn listening")
        # the hubs first, then the rest: on a busy machine they start soonest alone
        for label, argv in self.commands.items():
            if label.startswith("hub@"):
                self.start(label, argv, self.envs[label])
        hubs = self.hub_pids()
        self.wait(
            lambda: set(self.listening(self.ports["hub"]).values()) == set(hubs),
            START_TIMEOUT,
            f"every hub process listening on port {self.ports['hub']}",
        )
        for hub in hubs:  # the checks are the workers': no hub runs an embedded one
            if children(hub):
                raise RehearsalError(
                    f"hub process {hub} runs a worker of its own ({command_line(children(hub)[0])})"
                    ": the hub unit's serve needs --no-worker"
                )
        for label, argv in self.commands.items():
            if not label.startswith("hub@"):
                self.start(label, argv, self.envs[label])
        self.start("nginx", ["nginx", "-c", str(self.work / "nginx.conf"), "-p", str(self.work)])
        self.wait(
            lambda: bool(self.listening(self.ports["https"], any_owner=True)), 20, "nginx listening"
        )

    def hub_pids(self) -> list[int]:
        return [s.process.pid for s in self.started if s.name.startswith("hub@")]

    def wait(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        """Until ``condition``; an error naming ``what`` after ``seconds`` or as soon as a
        started process has exited (with the end of its log)."""
        deadline = time.monotonic() + seconds
        while not condition():
            self.alive()
            if time.monotonic() > deadline:
                raise RehearsalError(f"no {what} within {seconds:.0f} s")
            time.sleep(0.2)

    def alive(self) -> None:
        for started in self.started:
            code = started.process.poll()
            if code is not None:
                tail = _read(started.log).decode(errors="replace").strip().splitlines()[-5:]
                raise RehearsalError(
                    f"{started.name} exited ({code}): " + " / ".join(tail or ["(no output)"])
                )

    def stop_all(self) -> None:
        """Everything started, stopped as systemd stops it (SIGTERM, newest first, then
        SIGKILL after a grace); then whatever carries the tag still (the workers' pools)."""
        stop([s.process for s in self.started], grace=20)
        for pid in tagged(f"{TAG}={self.tag}".encode()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue

    # who holds which connection (what `ss -tnp` shows an operator)

    def listening(self, port: int, any_owner: bool = False) -> dict[int, int]:
        """Listening sockets on ``port``: inode -> owning process (of those started)."""
        return {
            inode: pid
            for inode, (state, local, _) in _tcp().items()
            if state == "0A" and local == port
            for pid in [self._owners(any_owner).get(inode)]
            if pid is not None
        }

    def connections(self) -> dict[int, int]:
        """Established connections accepted by the hub processes: inode -> hub process."""
        owners = self._owners()
        hubs = set(self.hub_pids())
        return {
            inode: owners[inode]
            for inode, (state, local, _) in _tcp().items()
            if state == "01" and local == self.ports["hub"] and owners.get(inode) in hubs
        }

    def relays(self) -> list[int]:
        """The UDP ports coturn holds in its relay range: one per allocation."""
        (coturn,) = [s.process.pid for s in self.started if s.name == "coturn"]
        owners = self._owners()
        low, high = self.relay_ports
        return sorted(
            local
            for inode, (_, local, _) in _tcp(("/proc/net/udp", "/proc/net/udp6")).items()
            if low <= local <= high and owners.get(inode) == coturn
        )

    def _owners(self, any_owner: bool = False) -> dict[int, int]:
        pids = [s.process.pid for s in self.started if running(s.process.pid)]
        if any_owner:
            pids += [int(p) for p in os.listdir("/proc") if p.isdigit()]
        owners = {}
        for pid in pids:
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owners[int(target[8:-1])] = pid
        return owners

    def logs(self) -> list[Path]:
        return [s.log for s in self.started]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


_ROW = re.compile(
    r"\s*\d+: [0-9A-F]+:([0-9A-F]{4}) [0-9A-F]+:([0-9A-F]{4}) ([0-9A-F]{2})(?:\s+\S+){5}\s+(\d+)"
)


def _tcp(
    tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6"),
) -> dict[int, tuple[str, int, int]]:
    """This network namespace's sockets (TCP, or those of ``tables``): inode -> (state, local
    port, remote port)."""
    found = {}
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            row = _ROW.match(line)
            if row:
                local, remote, state, inode = row.groups()
                found[int(inode)] = (state, int(local, 16), int(remote, 16))
    return found
