"""Peak resident memory of the calling process, for benchmarks that measure it in a child process."""

from __future__ import annotations

import resource
import sys


def peak_mb() -> float:
    """This process's peak resident set in MB: VmHWM from /proc where there is one, else ru_maxrss.

    ru_maxrss survives fork and exec on Linux, so a child started by a large parent reports at
    least the parent's size; VmHWM belongs to the new program's memory alone.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KB elsewhere
