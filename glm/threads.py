"""How many CPU threads glm uses: the one policy (the command line, glm.use_threads, DataLoader workers).

The rule, with `allowed_cpus()` the CPUs this process may use (the fewest of its CPU affinity, its
cgroup CPU quota rounded down, and SLURM_CPUS_PER_TASK):

- an explicit count (`--threads N`, `glm.use_threads(N)`) or, failing that, an OMP_NUM_THREADS the user
  set, is used as given, capped at allowed_cpus();
- otherwise glm takes the allowed CPUs that other processes are not keeping busy, at least 1: the
  machine's CPUs minus the tasks of other processes that are runnable when glm starts (the instantaneous
  count in /proc/loadavg, sampled 5 times over 10 ms, less glm's own running threads; where that file is
  missing nothing is subtracted).

Why subtract the busy CPUs: torch's OpenMP threads meet at a barrier after every operation, and a
thread that shares its core with a busy neighbour is descheduled for whole time slices while its
partner spins at the barrier. On 2 cores with one busy neighbour, 2 threads trained at a fraction of
the speed of 1 thread (docs/BENCHMARKS.md, "Threads on a shared machine"). OMP_WAIT_POLICY=passive
measured about as fast as 1 thread, but libgomp reads it when torch is imported, before glm can set
it, so the thread count is the lever glm has. The instantaneous runnable count and not the load
average: the 1-minute average still counts a glm run that ended seconds ago (a script calling glm
in a loop would halve itself), and it counts glm's own threads.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from glm.errors import InputError, typed_arguments

CGROUP = Path("/sys/fs/cgroup")  # a container sees its own cgroup here (v2: cpu.max; v1: cpu/cpu.cfs_*)
LOADAVG = Path("/proc/loadavg")
OWN_TASKS = Path("/proc/self/task")  # this process's threads, each with a stat file


def cgroup_cpus(root: Path | None = None) -> float | None:
    """The CPU quota of the cgroup at `root` (default CGROUP) in CPUs (quota / period); None when there is none."""
    root = root or CGROUP
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # v2: "max 100000" or "150000 100000"
    except (OSError, ValueError):
        try:  # v1: a quota of -1 means none
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if quota in ("max", "-1") or float(period) <= 0:
        return None
    return float(quota) / float(period)


def allowed_cpus() -> int:
    """The CPUs this process may use: the fewest of its affinity, the cgroup quota (rounded down, at
    least 1) and SLURM_CPUS_PER_TASK when set."""
    counts = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1]
    quota = cgroup_cpus()
    if quota is not None:
        counts.append(max(1, int(quota)))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        counts.append(int(slurm))
    return min(counts)


def own_running_threads() -> int:
    """This process's runnable threads (at least 1: the caller). torch's OpenMP threads keep spinning
    for a while after an operation, and must not count as a busy neighbour."""
    running = 0
    for stat in OWN_TASKS.glob("*/stat"):
        with contextlib.suppress(OSError, IndexError):
            running += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"  # "pid (name) R ..."
    return max(1, running)


def busy_cpus(samples: int = 5, interval: float = 0.002) -> int:
    """CPUs other processes keep busy now: runnable tasks in /proc/loadavg minus this process's own,
    averaged over `samples` reads (0 where the file is missing)."""
    counts = []
    for _ in range(samples):
        try:
            running = LOADAVG.read_text().split()[3].split("/")[0]  # "0.50 0.40 0.30 3/120 4567"
        except (OSError, IndexError):
            return 0
        counts.append(int(running) - own_running_threads())
        time.sleep(interval)
    return max(0, round(sum(counts) / len(counts)))


def policy_threads() -> int:
    """The thread count glm chooses with no explicit one: allowed CPUs that are not busy, at least 1."""
    free = (os.cpu_count() or 1) - busy_cpus()
    return max(1, min(allowed_cpus(), free))


# The count a user chose (--threads, glm.use_threads(N), glm.load(threads=N)): torch's thread count is
# process-wide, so a later call without a count (glm.load inside a command) keeps the user's choice.
_chosen: int | None = None


@typed_arguments
def use_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to `threads`, else to a count chosen earlier in this process, else
    to OMP_NUM_THREADS when the user set it, else to the policy's count; never above allowed_cpus().
    Returns the count."""
    global _chosen
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    if threads is not None:
        _chosen = threads
    threads = _chosen
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if threads is None and omp.isdigit() and int(omp) > 0:
        threads = int(omp)
    count = min(threads, allowed_cpus()) if threads is not None else policy_threads()
    import torch  # here, so that the module stays importable below torch's users

    torch.set_num_threads(count)
    # Inter-op threads run independent ops side by side (torch.jit.fork); they can be set only once,
    # before the first parallel work, so a later call keeps what the first one chose.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(count)
    return count


def loader_workers(requested: int) -> int:
    """DataLoader worker processes for `requested` beside torch's threads: at most allowed_cpus() - 1
    workers (the main process keeps a CPU), and torch's threads lowered to the CPUs the workers leave."""
    import torch

    allowed = allowed_cpus()
    workers = min(requested, allowed - 1)
    # The workers were asked for (--workers, or a preset's data loading for a GPU): they keep their CPUs.
    if workers:
        torch.set_num_threads(max(1, min(torch.get_num_threads(), allowed - workers)))
    return workers
