"""Which process owns something, and whether that process still runs.

A job row or a staging folder records its owner's token; a later start may clear it only
when that owner is gone. A pid alone is not enough: after a reboot or a container restart
the same pid is soon another process (the server is often pid 1 again), so the token also
holds the boot and the process's start time, and a pid now running something that started
later is not the owner.
"""

from __future__ import annotations

import functools
import os
import socket
from enum import Enum


class Liveness(Enum):
    alive = "alive"
    dead = "dead"
    unknown = "unknown"  # another host's process: it cannot be checked from here


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()[:8]
    except OSError:
        return "-"


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), None if no such process is running.
    Zombies count as gone: they run nothing and only wait to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc (not Linux): only the pid can be checked
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    # The command name is in parentheses and may itself contain spaces or ")".
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


@functools.cache
def _identity() -> tuple[str, str]:
    return socket.gethostname().replace("|", "_"), _boot_id()


def process_token(pid: int | None = None) -> str:
    """`host|boot|pid|start` of this process (or of `pid`, on this host)."""
    host, boot = _identity()
    pid = os.getpid() if pid is None else pid
    return f"{host}|{boot}|{pid}|{start_ticks(pid) or 0}"


def liveness(token: str | None) -> Liveness:
    """Whether the process a token names still runs. A missing or unreadable token is a row
    written before owners were recorded, by a process long gone."""
    try:
        host, boot, pid_text, started_text = (token or "").rsplit("|", 3)
        pid, started = int(pid_text), int(started_text)
    except ValueError:
        return Liveness.dead
    my_host, my_boot = _identity()
    if host != my_host:
        return Liveness.unknown
    if boot != my_boot:
        return Liveness.dead
    now = start_ticks(pid)
    return Liveness.alive if now is not None and now == started else Liveness.dead
