"""Run a command as a child process and measure it: wall, CPU, peak memory of its tree.

What: :func:`run_measured` starts a command, waits for it with ``os.wait4`` and returns its
exit code, output, wall time, user/system CPU and peak memory.

* CPU (``user_s``, ``sys_s``) comes from the child's ``rusage``, which on Linux includes
  the child's own terminated and waited-for children (the pipeline's worker processes).
* ``max_rss_mb`` is ``ru_maxrss`` of that rusage: the largest *single* process of the tree.
* ``peak_rss_mb`` / ``peak_pss_mb``: the largest *sum* over the whole process tree seen by a
  sampler thread reading ``/proc`` every ``interval`` seconds. RSS double-counts pages shared
  between processes (libraries, copy-on-write); PSS splits them fairly, so PSS is the
  tree's real footprint. A sampler can miss short spikes between two samples.

Why: a pipeline that fans out over worker processes must be charged for all of them, and
its process start (imports, model load) must be inside the timing, as a user sees it.

How: ``run_measured([sys.executable, "-m", "pkg.mod"], env=..., cwd=..., timeout_s=...)``;
Linux only for memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Measured:
    """How one child process run went."""

    cmd: list[str]
    rc: int
    stdout: str
    stderr: str
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_processes: int
    timed_out: bool = False

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def summary(self) -> dict[str, Any]:
        """The numbers, without the (possibly long) output."""
        data = asdict(self)
        data.pop("stdout")
        data["stderr_tail"] = data.pop("stderr")[-2000:]
        data["cpu_s"] = round(self.cpu_s, 3)
        return data


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, pss


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True, name=f"mem-sampler-{pid}")
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self.peak_processes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                pids = _tree(self.pid)
            except OSError:
                pids = [self.pid]
            rss = pss = alive = 0
            for pid in pids:
                r, p = _memory_kb(pid)
                rss += r
                pss += p
                alive += r > 0
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_processes = max(self.peak_processes, alive)
            self.stop.wait(self.interval)


def _wait(proc: subprocess.Popen, timeout_s: float | None) -> tuple[int, Any, bool]:
    """Reap ``proc`` with ``os.wait4``, killing its process group after ``timeout_s``;
    returns (exit code, rusage, whether it timed out)."""
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, kill) if timeout_s else None
    if timer:
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if timer:
            timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return proc.returncode, usage, timed_out.is_set()


def _read(file: Any) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


def run_measured(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
    interval: float = 0.1,
    nice: int = 0,
) -> Measured:
    """Run ``cmd`` to completion and measure it (see module doc)."""
    with (
        tempfile.TemporaryFile(mode="w+b") as out,
        tempfile.TemporaryFile(mode="w+b") as err,
    ):

        def lower_priority() -> None:
            if nice:
                os.nice(nice)

        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group: a timeout kills the whole tree
            preexec_fn=lower_priority if nice else None,
        )
        sampler = _Sampler(proc.pid, interval)
        sampler.start()
        try:
            rc, usage, timed_out = _wait(proc, timeout_s)
        finally:
            sampler.stop.set()
        wall = time.perf_counter() - started
        sampler.join(timeout=5)
        return Measured(
            cmd=[str(c) for c in cmd],
            rc=rc,
            stdout=_read(out),
            stderr=_read(err),
            wall_s=round(wall, 3),
            user_s=round(usage.ru_utime, 3),
            sys_s=round(usage.ru_stime, 3),
            max_rss_mb=round(usage.ru_maxrss / 1024, 1),
            peak_rss_mb=round(sampler.peak_rss / 1024, 1),
            peak_pss_mb=round(sampler.peak_pss / 1024, 1),
            peak_processes=sampler.peak_processes,
            timed_out=timed_out,
        )
