"""The shipped deployment files (deploy/) as the rehearsal reads them: systemd units, the
environment files, nginx's site and coturn's configuration, rendered for a temporary root with
the least change: paths moved under that root, ports and addresses of this machine, secrets.

Every substitution names what it expects to find in the shipped file and fails when it is not
there, so a shipped file that disagrees with another (nginx proxying to a port no hub listens
on, the TURN URLs naming a port coturn does not listen on) fails the rehearsal instead of being
papered over.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: where the shipped files install things (the runbook's layout), moved under the rehearsal's root
INSTALLED = (
    "/etc/telepharm",
    "/var/lib/telepharm",
    "/etc/ssl/telepharm",
    "/var/log/nginx",
    "/var/www/acme",
    "/var/log/turnserver",
    "/run/turnserver",
    "/var/lib/turn",
)
#: the virtual environment the units run the hub from
INSTALL_PREFIX = "/opt/telepharm"


class ShippedFileError(Exception):
    """A shipped file is wrong, or disagrees with another: the message says which and how."""


def name(path: Path) -> str:
    try:
        return str(path.relative_to(DEPLOY.parent))
    except ValueError:
        return str(path)


def substitute(text: str, old: str, new: str, where: str) -> str:
    """``text`` with every ``old`` replaced by ``new``; ``old`` must be there."""
    if old not in text:
        raise ShippedFileError(f"{where}: expected {old!r} in it")
    return text.replace(old, new)


def relocate(text: str, root: Path, prefix: str) -> str:
    """The installed paths of ``text`` moved under ``root``, the hub's venv to ``prefix``."""
    for path in INSTALLED:
        text = re.sub(re.escape(path) + r"(?=[/\s;\"']|$)", f"{root}{path}", text, flags=re.M)
    return re.sub(re.escape(INSTALL_PREFIX) + r"(?=/)", prefix, text)


# systemd


@dataclass(frozen=True)
class Unit:
    path: Path
    environment_files: tuple[str, ...]
    exec_start: str

    @property
    def template(self) -> bool:
        return self.path.stem.endswith("@")


def read_unit(path: Path) -> Unit:
    """ExecStart and EnvironmentFile of a unit's [Service] section."""
    section, files, exec_start = "", [], []
    lines = path.read_text().replace("\\\n", " ").splitlines()
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section == "[Service]" and key.strip() == "EnvironmentFile":
            files.append(value.strip())
        elif section == "[Service]" and key.strip() == "ExecStart":
            exec_start.append(value.strip())
    if len(exec_start) != 1:
        raise ShippedFileError(f"{name(path)}: expected one ExecStart=, found {len(exec_start)}")
    return Unit(path, tuple(files), exec_start[0])


def specifiers(text: str, instance: str) -> str:
    """The unit specifiers the shipped units use: %i and %I (the instance), %%."""

    def one(match: re.Match[str]) -> str:
        spec = match.group(1)
        if spec in "iI":
            return instance
        if spec == "%":
            return "%"
        raise ShippedFileError(f"unit specifier %{spec} is not one the rehearsal knows")

    return re.sub(r"%(.)", one, text)


def read_env(text: str, where: str) -> dict[str, str]:
    """An EnvironmentFile: ``KEY=value`` lines (comments and blank lines skipped)."""
    found = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, equals, value = line.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ShippedFileError(f"{where}:{number}: not KEY=value: {raw!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        found[key] = value
    return found


def command(exec_start: str, env: Mapping[str, str], where: str) -> list[str]:
    """ExecStart's command line as systemd runs it: ``${VAR}`` one word, ``$VAR`` split."""

    def value(var: str) -> str:
        if var not in env:
            raise ShippedFileError(f"{where}: ExecStart uses ${var}, which no EnvironmentFile sets")
        return env[var]

    words: list[str] = []
    for word in shlex.split(exec_start.lstrip("-@:+!")):
        whole = re.fullmatch(r"\$(?:\{(\w+)\}|(\w+))", word)
        if whole and whole.group(2):
            words.extend(value(whole.group(2)).split())
            continue
        words.append(re.sub(r"\$\{(\w+)\}", lambda m: value(m.group(1)), word))
    return words


def option(argv: list[str], flag: str, where: str) -> str:
    if flag not in argv or argv.index(flag) + 1 >= len(argv):
        raise ShippedFileError(f"{where}: expected {flag} VALUE in ExecStart")
    return argv[argv.index(flag) + 1]


# the environment file


#: what the rehearsal sets in the shipped environment file: this machine's services and names
ENV_OVERRIDES = (
    "TELEPHARM_DATABASE_URL",
    "TELEPHARM_BROKER_URL",
    "TELEPHARM_REDIS_URL",
    "TELEPHARM_ISSUER",
    "TELEPHARM_TURN_URLS",
    "TELEPHARM_TURN_SECRET",
)


def render_env(text: str, values: Mapping[str, str], where: str) -> str:
    """The environment file with the values of ``values`` in place of the shipped ones (each
    must be set, not commented out, in the shipped file)."""
    shipped = read_env(text, where)
    for key, new in values.items():
        if key not in shipped:
            raise ShippedFileError(f"{where}: {key} is not set")
        text = _set(text, key, new)
    return text


def turn_urls(shipped: str, ports: Mapping[int, int], where: str) -> str:
    """The shipped TURN URLs on 127.0.0.1, each shipped port mapped to the rehearsal's; a URL
    on a port coturn does not listen on is an error."""
    urls = []
    for url in (u.strip() for u in shipped.split(",") if u.strip()):
        scheme, rest = url.split(":", 1)
        host_port, _, query = rest.partition("?")
        parts = urlsplit(f"//{host_port}")
        if parts.port not in ports:
            raise ShippedFileError(
                f"{where}: {url} is on a port coturn does not listen on ({sorted(ports)})"
            )
        urls.append(f"{scheme}:127.0.0.1:{ports[parts.port]}" + (f"?{query}" if query else ""))
    return ",".join(urls)


# coturn


def read_turn(text: str) -> dict[str, list[str]]:
    """coturn's ``key=value`` (or bare ``key``) lines, every value of a repeated key."""
    found: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


#: what a shipped coturn must do, whatever the machine: REST credentials, no relay into
#: this network (the private and loopback ranges denied), no TCP relays, no telnet CLI
TURN_REQUIRED = ("use-auth-secret", "fingerprint", "no-cli", "no-tcp-relay", "realm")
TURN_DENIED = (
    "10.0.0.0-10.255.255.255",
    "172.16.0.0-172.31.255.255",
    "192.168.0.0-192.168.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "::1",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)


def check_turn(text: str, where: str) -> dict[str, list[str]]:
    settings = read_turn(text)
    missing = [key for key in TURN_REQUIRED if key not in settings]
    if missing:
        raise ShippedFileError(f"{where}: lacks {', '.join(missing)}")
    open_ranges = [r for r in TURN_DENIED if r not in settings.get("denied-peer-ip", [])]
    if open_ranges:
        raise ShippedFileError(f"{where}: relays may reach {', '.join(open_ranges)}")
    if "allow-loopback-peers" in settings or "allowed-peer-ip" in settings:
        raise ShippedFileError(f"{where}: lets relays reach loopback or allowed-peer-ip ranges")
    for key in ("min-port", "max-port", "static-auth-secret"):
        if not settings.get(key, [""])[0]:
            raise ShippedFileError(f"{where}: lacks {key}")
    return settings


def render_turn(text: str, values: Mapping[str, str], where: str) -> str:
    """coturn's file with the values of ``values`` in place of the shipped ones (each set in
    the shipped file)."""
    for key, new in values.items():
        if not re.search(rf"(?m)^{re.escape(key)}=", text):
            raise ShippedFileError(f"{where}: {key} is not set")
        text = _set(text, key, new)
    return text


def _set(text: str, key: str, value: str) -> str:
    """The ``key=...`` lines of ``text`` set to ``value``."""
    return re.sub(rf"(?m)^{re.escape(key)}=.*$", lambda _: f"{key}={value}", text)
