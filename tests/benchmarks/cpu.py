"""Where a benchmark's CPU went: per process tree, PostgreSQL and Redis, read from /proc."""

from __future__ import annotations

import os
import re
from pathlib import Path


def stat(pid: str) -> tuple[str, int, float] | None:
    """(name, parent, CPU seconds user + system) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: a PostgreSQL backend serving a client: ``postgres: 15/main: USER DATABASE HOST(PORT) ...``
BACKEND = re.compile(r"^postgres: [^:]+: \S+ (\S+) (?:\S+\(\d+\)|\[local\])")


def _postgres_role(pid: str, database: str) -> str | None:
    """``postgres`` for a backend connected to ``database``, ``postgres_shared`` for the
    server's background processes (the WAL writer, the checkpointer: theirs is every
    database's work, another session's tests on the same server too), None for a backend of
    another database."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    backend = BACKEND.match(command)
    if backend is None:
        return "postgres_shared"
    return "postgres" if backend.group(1) == database else None


def cpu_by_role(roots: dict[str, int | list[int]], database: str) -> dict[str, float]:
    """CPU seconds so far of each role's process trees (a root PID or several), of PostgreSQL
    (the backends of ``database``; its background processes apart) and of Redis."""
    stats = {pid: st for pid in os.listdir("/proc") if pid.isdigit() and (st := stat(pid))}
    children: dict[int, list[int]] = {}
    for pid, (_name, parent, _cpu) in stats.items():
        children.setdefault(parent, []).append(int(pid))
    found: dict[str, float] = {"postgres": 0.0, "postgres_shared": 0.0}
    for role, root in roots.items():
        total, todo = 0.0, [root] if isinstance(root, int) else list(root)
        while todo:
            pid = todo.pop()
            total += stats[str(pid)][2] if str(pid) in stats else 0.0
            todo += children.get(pid, [])
        found[role] = total
    for pid, (name, _parent, cpu) in stats.items():
        if name.startswith("postgres") and (role := _postgres_role(pid, database)):
            found[role] += cpu
    found["redis"] = sum(c for n, _p, c in stats.values() if n.startswith("redis"))
    return found


def cpu_per_message(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """Milliseconds of CPU a message, by role, between two :func:`cpu_by_role`."""
    spent = {role: (after[role] - before.get(role, 0.0)) * 1000 / max(n, 1) for role in after}
    spent["all"] = sum(spent.values())
    return {role: round(ms, 3) for role, ms in spent.items()}
