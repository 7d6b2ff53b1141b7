#!/usr/bin/env python3
"""RUSTC_WRAPPER of the compile-time benchmark: times rustc on the benchmark's two crates.

Cargo runs `rustc_timed.py <rustc> <args>`. For `--crate-name bench_asynq` or `bench_plain`
the wrapper runs rustc as a child and appends one line to $COMPILE_BENCH_LOG:
`crate wall_s cpu_s max_rss_kib` (cpu = user + system time of rustc and its threads). Any
other crate is compiled by rustc directly (exec), untimed. With $COMPILE_BENCH_CALLGRIND set to
a file name, the timed rustc runs under `valgrind --tool=callgrind`, which writes its
instruction counts there.
"""

import os
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    log = os.environ.get("COMPILE_BENCH_LOG")
    crate = None
    for i, arg in enumerate(args[:-1]):
        if arg == "--crate-name" and args[i + 1].startswith("bench_"):
            crate = args[i + 1]
    if crate is None or not log:
        os.execvp(args[0], args)
    callgrind = os.environ.get("COMPILE_BENCH_CALLGRIND")
    if callgrind:
        # Count rustc's instructions instead (slow: about 50 times the CPU time).
        args = ["valgrind", "--quiet", "--tool=callgrind", f"--callgrind-out-file={callgrind}"] + args
    start = time.monotonic()
    # The jobserver's descriptors stay open: rustc takes its codegen threads' tokens there.
    child = subprocess.Popen(args, close_fds=False)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    with open(log, "a") as f:
        f.write(f"{crate} {wall:.3f} {usage.ru_utime + usage.ru_stime:.3f} {usage.ru_maxrss}\n")
    sys.exit(code if code >= 0 else 1)


if __name__ == "__main__":
    main()
