"""The shipped deployment files agree with the hub and with each other: the env example names
every setting, compose.yaml runs what the systemd units run, and what makes the rehearsal
(deploy/rehearse) fail when a shipped file is wrong does fail."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from server.settings import Settings
from tests.rehearsal import shipped
from tests.rehearsal.shipped import DEPLOY, ShippedFileError
from tests.rehearsal.topology import Topology

SETTINGS_SOURCE = Path(__file__).resolve().parents[2] / "server" / "settings.py"


def _settings_read() -> set[str]:
    source = SETTINGS_SOURCE.read_text()
    names = set(re.findall(r'\bget\("([A-Z_]+)"', source))
    names |= set(re.findall(r'"(TELEPHARM_[A-Z_]+)"', source))
    return {f"TELEPHARM_{n.removeprefix('TELEPHARM_')}" for n in names}


def test_the_env_example_names_every_setting_and_runs_the_hub() -> None:
    text = (DEPLOY / "hub.env.example").read_text()
    named = set(re.findall(r"^#? ?(TELEPHARM_[A-Z_]+)=", text, flags=re.M))
    assert len(_settings_read()) > 40
    assert _settings_read() - named == set()
    assert named - _settings_read() == set()  # nothing the hub does not read
    env = shipped.read_env(text, "hub.env.example")
    assert env["TELEPHARM_REDIS_URL"]
    assert env["TELEPHARM_BROKER_URL"]
    assert env["TELEPHARM_REDIS_URL"] != env["TELEPHARM_BROKER_URL"]
    Settings.from_env(env)  # every value it sets is one the hub accepts


def _systemd() -> dict[str, tuple[list[str], list[str]]]:
    """Each unit instance: its command and the names of its environment files."""
    commands = {}
    instances = [("telepharm@.service", "1"), ("telepharm-beat.service", "")]
    instances += [
        ("telepharm-worker@.service", p.stem.removeprefix("worker-"))
        for p in (DEPLOY / "systemd").glob("worker-*.env")
    ]
    for unit_file, instance in instances:
        unit = shipped.read_unit(DEPLOY / "systemd" / unit_file)
        files = [shipped.specifiers(f, instance) for f in unit.environment_files]
        env: dict[str, str] = {}
        for path in files:
            local = DEPLOY / "systemd" / Path(path).name
            if local.exists():
                env |= shipped.read_env(local.read_text(), local.name)
        argv = shipped.command(shipped.specifiers(unit.exec_start, instance), env, unit_file)
        commands[f"{unit_file}:{instance}"] = (argv, [Path(f).name for f in files])
    return commands


def test_compose_processes_count_metrics_in_one_pid_namespace() -> None:
    """The metrics files are named by process ID in the shared data volume: every service that
    runs the hub's code for long shares one PID namespace (nginx's)."""
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    long_lived = [
        name for name, svc in services.items()
        if svc.get("command", [""])[0] in ("serve", "worker", "beat")
    ]  # fmt: skip
    assert len(long_lived) >= 5
    for name in long_lived:
        assert services[name].get("pid") == "service:nginx", name
        assert "nginx" in services[name]["depends_on"], name


def test_compose_runs_what_the_units_run() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/telepharm/bin/telepharm"]' in dockerfile
    telepharm = {
        name: service
        for name, service in services.items()
        if service.get("image") == "telepharm-hub:latest" and name != "migrate"
    }
    units = _systemd()
    for unit, (argv, env_files) in units.items():
        assert argv[0] == "/opt/telepharm/bin/telepharm", unit
        matching = [n for n, s in telepharm.items() if s["command"] == argv[1:]]
        assert matching, f"no compose service runs {argv[1:]} ({unit})"
        for name in matching:
            assert telepharm[name]["env_file"] == [
                f if f == "hub.env" else f"systemd/{f}" for f in env_files
            ], name
    hubs = [n for n, s in telepharm.items() if s["command"][0] == "serve"]
    assert len(hubs) >= 2  # several processes on one port, as telepharm@1, telepharm@2
    for name in hubs:  # in nginx's namespace: the port they share is the one nginx proxies to
        assert telepharm[name]["network_mode"] == "service:nginx"
    commands = sorted(" ".join(s["command"]) for s in telepharm.values())
    assert len(set(commands) - {" ".join(a[1:]) for a, _ in units.values()}) == 0
    assert services["migrate"]["command"] == ["migrate"]
    for name in telepharm:
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    nginx_conf = services["nginx"]["volumes"][0].split(":")[0]
    assert (DEPLOY / nginx_conf).resolve() == DEPLOY / "nginx" / "telepharm.conf"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source


def test_the_hub_units_share_a_port_without_a_worker_and_the_workers_take_every_queue() -> None:
    units = _systemd()
    (hub,) = [argv for key, (argv, _) in units.items() if key.startswith("telepharm@")]
    assert {"--no-worker", "--reuse-port"} <= set(hub)
    queues = {
        q
        for key, (argv, _) in units.items()
        if key.startswith("telepharm-worker@")
        for q in shipped.option(argv, "--queues", key).split(",")
    }
    assert queues == {"telepharm.checks", "telepharm.outbound", "telepharm.notifications"}


# what makes the rehearsal fail


def test_a_setting_the_rehearsal_sets_must_be_in_the_env_file() -> None:
    with pytest.raises(ShippedFileError, match="TELEPHARM_REDIS_URL is not set"):
        shipped.render_env("TELEPHARM_ISSUER=https://x\n# TELEPHARM_REDIS_URL=\n", {
            "TELEPHARM_REDIS_URL": "redis://127.0.0.1/1"
        }, "hub.env.example")  # fmt: skip
    rendered = shipped.render_env(
        "A=1\nTELEPHARM_REDIS_URL=redis://x/1\n", {"TELEPHARM_REDIS_URL": "redis://y/2"}, "f"
    )
    assert rendered == "A=1\nTELEPHARM_REDIS_URL=redis://y/2\n"


def test_turn_urls_must_name_the_ports_coturn_listens_on() -> None:
    urls = "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349?transport=tcp"
    assert shipped.turn_urls(urls, {3478: 40000, 5349: 40001}, "f") == (
        "turn:127.0.0.1:40000?transport=udp,turns:127.0.0.1:40001?transport=tcp"
    )
    with pytest.raises(ShippedFileError, match="a port coturn does not listen on"):
        shipped.turn_urls("turn:turn.example.org:3479", {3478: 40000}, "f")


def test_a_coturn_that_relays_into_this_network_is_refused() -> None:
    text = (DEPLOY / "coturn/turnserver.conf").read_text()
    assert shipped.check_turn(text, "f")["static-auth-secret"]
    with pytest.raises(ShippedFileError, match=r"relays may reach 127\.0\.0\.0-127\.255\.255\.255"):
        shipped.check_turn(text.replace("denied-peer-ip=127.0.0.0-127.255.255.255\n", ""), "f")
    with pytest.raises(ShippedFileError, match="lacks no-tcp-relay"):
        shipped.check_turn(text.replace("\nno-tcp-relay\n", "\n"), "f")
    with pytest.raises(ShippedFileError, match="loopback"):
        shipped.check_turn(text + "allow-loopback-peers\n", "f")


def test_nginx_must_proxy_to_where_the_hubs_listen() -> None:
    text = (DEPLOY / "nginx/telepharm.conf").read_text()
    (argv, _) = _systemd()["telepharm@.service:1"]
    address = f"{shipped.option(argv, '--host', 'u')}:{shipped.option(argv, '--port', 'u')}"
    rendered = shipped.substitute(text, address, "127.0.0.1:1", "f")
    assert rendered.count("server 127.0.0.1:1;") == 2  # the two upstreams
    with pytest.raises(ShippedFileError, match=r"expected '127\.0\.0\.1:8080'"):
        shipped.substitute(text.replace(":8080", ":8081"), address, "127.0.0.1:1", "f")


def test_a_unit_command_with_an_unset_variable_is_refused() -> None:
    assert shipped.command("/bin/x --q ${Q} $R", {"Q": "a b", "R": "c d"}, "u") == [
        "/bin/x", "--q", "a b", "c", "d"
    ]  # fmt: skip
    with pytest.raises(ShippedFileError, match=r"uses \$Q, which no EnvironmentFile sets"):
        shipped.command("/bin/x ${Q}", {}, "u")


def test_paths_move_under_the_root_and_the_venv() -> None:
    text = "ExecStart=/opt/telepharm/bin/telepharm\nA=/var/lib/telepharm\nB=/var/lib/telepharmx\n"
    moved = shipped.relocate(text, Path("/tmp/r"), "/venv")
    assert (
        moved
        == "ExecStart=/venv/bin/telepharm\nA=/tmp/r/var/lib/telepharm\nB=/var/lib/telepharmx\n"
    )


needs_tools = pytest.mark.skipif(
    not (shutil.which("nginx") and shutil.which("openssl")), reason="needs nginx and openssl"
)


def _rendered(deploy: Path, work: Path) -> Topology:
    work.mkdir()
    top = Topology(work, "postgresql://postgres@127.0.0.1/postgres", "redis://r/1", "redis://r/2")
    top.deploy = deploy
    top.install()
    return top


@needs_tools
def test_the_shipped_files_render_for_the_rehearsal(tmp_path: Path) -> None:
    top = _rendered(DEPLOY, tmp_path / "work")
    assert set(top.commands) == {"hub@1", "hub@2", "worker@checks", "worker@outbound", "beat"}
    assert top.commands["hub@1"][1:] == [
        "serve", "--host", "127.0.0.1", "--port", str(top.ports["hub"]), "--no-worker",
        "--reuse-port",
    ]  # fmt: skip
    assert top.commands["worker@checks"][-4:] == [
        "--queues", "telepharm.checks", "--concurrency", "2"
    ]  # fmt: skip
    assert top.hub_env["TELEPHARM_DATA_DIR"] == f"{tmp_path}/work/root/var/lib/telepharm"
    assert top.hub_env["TELEPHARM_TURN_URLS"].startswith(f"turn:127.0.0.1:{top.ports['turn']}?")


@needs_tools
@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "hub.env.example",
            "TELEPHARM_REDIS_URL=",
            "# TELEPHARM_REDIS_URL=",
            "REDIS_URL is not set",
        ),
        ("nginx/telepharm.conf", "server 127.0.0.1:8080;", "server 127.0.0.1:8081;", "8080"),
        ("nginx/telepharm.conf", "proxy_read_timeout 120s;", "proxy_read_timeout;", "nginx -t"),
        ("hub.env.example", "example.org:3478?", "example.org:3479?", "coturn does not listen"),
        ("systemd/telepharm-worker@.service", "${WORKER_QUEUES}", "${WORKER_QUEUE}", "no Env"),
        ("systemd/worker-checks.env", "WORKER_QUEUES=", "WORKER QUEUES=", "not KEY=value"),
        ("coturn/turnserver.conf", "denied-peer-ip=10.0.0.0-10.255.255.255\n", "", "10.0.0.0"),
    ],
)
def test_a_wrong_shipped_file_fails_the_rehearsal(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    text = (copy / file).read_text()
    assert old in text
    (copy / file).write_text(text.replace(old, new))
    with pytest.raises(ShippedFileError, match=re.escape(message)):
        _rendered(copy, tmp_path / "work")
