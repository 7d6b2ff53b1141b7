#!/usr/bin/env python3
"""The compile-time benchmark of `#[asynq]` (issue 23; docs/compile-time.md).

For each N and profile, generates the two crates (gen.py: N `#[asynq]` functions, and the same
N as plain `async fn`s with `futures::join!`), builds their dependencies once, then measures
in turns, `--reps` times each:

  clean   `cargo clean -p <crate>` then `cargo build -p <crate>`: the crate's own compile
  rebuild `touch src/lib.rs` then `cargo build -p <crate>` (incremental in debug; release
          builds have incremental compilation off by default, so there it is a full recompile
          of the crate, the same work as `clean`: measured in release only when asked, with
          --release-kinds clean rebuild)

The two crates alternate (asynq first on even repetitions, plain first on odd ones), so that
a slow spell of the machine lands on both. rustc is timed by rustc_timed.py (RUSTC_WRAPPER):
the wall time and the CPU time (user + system, all of rustc's threads) of the one rustc
process that compiles the crate. The table gives the median, the spread (min-max) and the
ratio of the medians.

With --nightly, it also compiles each crate once with `cargo +nightly rustc -- -Ztime-passes`
(debug) and prints the time of the passes that differ: macro expansion (which runs the
proc-macros: #[asynq], and futures::join! on the plain side), type checking, borrow checking,
code generation.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CRATES = {"asynq": "bench_asynq", "plain": "bench_plain", "base": "bench_base"}
# What each crate depends on: built before the measurements.
DEPENDENCY = {"asynq": "asynq-core", "plain": "futures", "base": "asynq-core"}
HEADINGS = {"asynq": "`#[asynq]`", "base": "`#[asynq]` before", "plain": "`async fn` + `join!`"}
PASSES = [
    "macro_expand_crate",
    "type_check_crate",
    "MIR_borrow_checking",
    "monomorphization_collector_graph_walk",
    "codegen_crate",
    "total",
]


def cargo(args, crate, target, env=None, toolchain=None, capture=False):
    options = ["--manifest-path", os.path.join(crate, "Cargo.toml"), "-q"]
    split = args.index("--") if "--" in args else len(args)
    cmd = (["cargo"] + ([f"+{toolchain}"] if toolchain else []) + args[:split] + options
           + args[split:])
    full_env = dict(os.environ, CARGO_TARGET_DIR=target, **(env or {}))
    # Each profile builds as a user's does: incremental in debug, not in release (a
    # CARGO_INCREMENTAL=0 set to save disk would turn the debug rebuild into a full one).
    full_env.pop("CARGO_INCREMENTAL", None)
    result = subprocess.run(
        cmd,
        env=full_env,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        text=True,
    )
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stderr)
        sys.exit(f"failed: {' '.join(cmd)}")
    return result


def timed_build(crate, target, variant, release, log):
    """Build one crate; return (wall, cpu) of its rustc, from the wrapper's log."""
    if os.path.exists(log):
        os.remove(log)
    env = {
        "RUSTC_WRAPPER": os.path.join(HERE, "rustc_timed.py"),
        "COMPILE_BENCH_LOG": log,
    }
    cargo(["build"] + (["--release"] if release else []), crate, target, env)
    with open(log) as f:
        lines = [line.split() for line in f if line.startswith(CRATES[variant])]
    if len(lines) != 1:
        sys.exit(f"expected one rustc run of {CRATES[variant]}, the log has {len(lines)}")
    _, wall, cpu, _rss = lines[0]
    return float(wall), float(cpu)


def generate(n, out, repo, base, optimized_macros):
    workspace = os.path.join(out, f"n{n}")
    command = [sys.executable, os.path.join(HERE, "gen.py"), "--n", str(n), "--out", workspace,
               "--repo", repo] + (["--optimized-macros"] if optimized_macros else [])
    subprocess.run(command + (["--base", base] if base else []), check=True)
    return workspace


def target_dir(out, variant):
    """Each crate builds in a target directory of its own: two checkouts of asynq-core would
    otherwise share artifacts (cargo names a path dependency's artifacts by its path relative
    to its workspace, and a checkout's files keep the mtimes of their commit)."""
    return os.path.join(out, f"target-{variant}")


def measure(n, release, reps, out, variants, kinds):
    workspace = os.path.join(out, f"n{n}")
    wrapper_env = {"RUSTC_WRAPPER": os.path.join(HERE, "rustc_timed.py")}
    profile = ["--release"] if release else []
    # The dependencies, not measured. A first build of the crates too when only rebuilds are
    # measured; otherwise the first clean build is that (at N = 1000 in release, a build of a
    # crate takes minutes).
    for variant in variants:
        only = [] if "clean" not in kinds else ["-p", DEPENDENCY[variant]]
        cargo(["build"] + profile + only, os.path.join(workspace, variant),
              target_dir(out, variant), wrapper_env)
    log = os.path.join(out, "rustc-times.log")
    results = {(v, kind): [] for v in variants for kind in kinds}
    for rep in range(reps):
        # Each crate goes first in turn.
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for variant in order if "clean" in kinds else []:
            crate, target = os.path.join(workspace, variant), target_dir(out, variant)
            cargo(["clean", "-p", CRATES[variant]] + profile, crate, target)
            results[(variant, "clean")].append(timed_build(crate, target, variant, release, log))
        for variant in order if "rebuild" in kinds else []:
            os.utime(os.path.join(workspace, variant, "src", "lib.rs"))
            crate, target = os.path.join(workspace, variant), target_dir(out, variant)
            results[(variant, "rebuild")].append(timed_build(crate, target, variant, release, log))
        print(f"  N={n} {'release' if release else 'debug'} rep {rep + 1}/{reps}: "
              + ", ".join(f"{v} {k} {results[(v, k)][-1][1]:.2f}s cpu"
                          for k in kinds for v in order),
              file=sys.stderr)
    return results


def cell(samples):
    med = statistics.median(samples)
    return med, f"{med:.2f} s ({min(samples):.2f}-{max(samples):.2f})"


def table(n, release, results, reps, variants, kinds):
    profile = "release" if release else "debug"
    shown = [v for v in ("base", "asynq", "plain") if v in variants]
    ratios = [v for v in ("base", "asynq") if v in variants]
    rows = [f"\n### N = {n}, {profile} ({reps} repetitions, median (min-max))\n",
            "| measurement | " + " | ".join(HEADINGS[v] for v in shown) + " | "
            + " | ".join("ratio" + (" before" if v == "base" else "") for v in ratios) + " |",
            "|" + " --- |" * (1 + len(shown) + len(ratios))]
    names = {
        ("clean", 1): "clean build, CPU time of the crate's rustc",
        ("clean", 0): "clean build, wall time of the crate's rustc",
        ("rebuild", 1): "rebuild after `touch`, CPU time",
        ("rebuild", 0): "rebuild after `touch`, wall time",
    }
    for kind in kinds:
        for index in (1, 0):
            cells = {v: cell([s[index] for s in results[(v, kind)]]) for v in shown}
            plain = cells["plain"][0]
            rows.append(f"| {names[(kind, index)]} | "
                        + " | ".join(cells[v][1] for v in shown) + " | "
                        + " | ".join(f"{cells[v][0] / plain:.2f}" for v in ratios) + " |")
    return "\n".join(rows)


def passes(n, out, variants):
    """-Ztime-passes of each crate, debug, with the nightly toolchain."""
    workspace = os.path.join(out, f"n{n}")
    found = {}
    for variant in variants:
        crate = os.path.join(workspace, variant)
        target = target_dir(out, variant) + "-nightly"
        cargo(["build"], crate, target, toolchain="nightly")
        cargo(["clean", "-p", CRATES[variant]], crate, target, toolchain="nightly")
        result = cargo(["rustc", "--lib", "--", "-Ztime-passes"], crate, target,
                       toolchain="nightly", capture=True)
        times = {}
        for line in result.stderr.splitlines():
            m = re.match(r"time:\s+([0-9.]+);.*\t(\S+)$", line)
            if m and m.group(2) in PASSES:
                times[m.group(2)] = float(m.group(1))
        found[variant] = times
    shown = [v for v in ("base", "asynq", "plain") if v in variants]
    rows = [f"\n### N = {n}, debug, `cargo +nightly rustc -- -Ztime-passes` (one run each)\n",
            "| pass | " + " | ".join(HEADINGS[v] for v in shown) + " |",
            "|" + " --- |" * (1 + len(shown))]
    for name in PASSES:
        rows.append(f"| {name} | "
                    + " | ".join(f"{found[v].get(name, float('nan')):.2f} s" for v in shown)
                    + " |")
    return "\n".join(rows)


def callgrind(n, out, variants):
    """Instructions of a debug rebuild after `touch`, counted by callgrind, and the part of
    them spent in macro expansion and in proc-macros (#[asynq]; futures::join! on the plain
    side)."""
    workspace = os.path.join(out, f"n{n}")
    log = os.path.join(out, "rustc-times.log")
    wrapper = os.path.join(HERE, "rustc_timed.py")
    found = {}
    for variant in variants:
        crate, target = os.path.join(workspace, variant), target_dir(out, variant)
        cargo(["build"], crate, target, {"RUSTC_WRAPPER": wrapper})
        os.utime(os.path.join(crate, "src", "lib.rs"))
        profile = os.path.join(out, f"callgrind.{variant}.out")
        cargo(["build"], crate, target, {"RUSTC_WRAPPER": wrapper, "COMPILE_BENCH_LOG": log,
                                         "COMPILE_BENCH_CALLGRIND": profile})
        report = subprocess.run(["callgrind_annotate", "--inclusive=yes", profile],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        counts = {}
        for line in report.stdout.splitlines():
            m = re.match(r"\s*([0-9,]+) \(\s*[0-9.]+%\)\s+(.*)$", line)
            if not m:
                continue
            count, name = int(m.group(1).replace(",", "")), m.group(2)
            if name.startswith("PROGRAM TOTALS"):
                counts["total"] = count
            elif "MacroExpander>::expand_crate" in name:
                counts.setdefault("expand", count)
            elif "run_bridge_and_client" in name:
                counts.setdefault("proc", count)
        found[variant] = counts
    shown = [v for v in ("base", "asynq", "plain") if v in variants]
    rows = [f"\n### N = {n}, debug rebuild after `touch`, instructions (callgrind, one run each)\n",
            "| counted | " + " | ".join(HEADINGS[v] for v in shown) + " | "
            + " | ".join("ratio" + (" before" if v == "base" else "") for v in shown
                         if v != "plain") + " |",
            "|" + " --- |" * (len(shown) * 2)]
    labels = {"total": "rustc, all", "expand": "macro expansion (all macros)",
              "proc": "proc-macros (`#[asynq]`; `join!`)"}
    for key in ("total", "expand", "proc"):
        values = {v: found[v].get(key, 0) for v in shown}
        rows.append(f"| {labels[key]} | "
                    + " | ".join(f"{values[v] / 1e6:,.0f} M" for v in shown) + " | "
                    + " | ".join(f"{values[v] / values['plain']:.2f}" if values["plain"] else "-"
                                 for v in shown if v != "plain") + " |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--profiles", nargs="+", default=["debug", "release"],
                        choices=["debug", "release"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(REPO, "target", "compile-bench"))
    parser.add_argument("--repo", default=REPO,
                        help="the checkout whose asynq-core the asynq crate uses (this one)")
    parser.add_argument("--kinds", nargs="+", default=["clean", "rebuild"],
                        choices=["clean", "rebuild"], help="which builds to measure")
    parser.add_argument("--release-kinds", nargs="+", default=["clean"],
                        choices=["clean", "rebuild"],
                        help="which builds to measure in release (default: clean only; a "
                        "release rebuild recompiles the whole crate)")
    parser.add_argument("--base", help="another checkout: also measure the asynq crate "
                        "against its asynq-core, as the 'before' of a change")
    parser.add_argument("--optimized-macros", action="store_true",
                        help="build proc-macros with opt-level 3 (a build-override in the "
                        "crates' manifests), as a user can choose to")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count the instructions of a debug rebuild with callgrind")
    parser.add_argument("--nightly", action="store_true",
                        help="also print -Ztime-passes figures (needs `cargo +nightly`)")
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    tables = []
    variants = ["asynq", "plain"] + (["base"] if args.base else [])
    for n in args.n:
        generate(n, out, os.path.abspath(args.repo), args.base and os.path.abspath(args.base),
                 args.optimized_macros)
        for profile in args.profiles:
            release = profile == "release"
            kinds = [k for k in args.kinds if not release or k in args.release_kinds]
            load = os.getloadavg()[0]
            results = measure(n, release, args.reps, out, variants, kinds)
            tables.append(table(n, release, results, args.reps, variants, kinds)
                          + f"\n\n(load average {load:.1f} at the start, "
                          f"{os.getloadavg()[0]:.1f} at the end; {os.cpu_count()} CPUs)")
            print(tables[-1], flush=True)
        if args.callgrind:
            tables.append(callgrind(n, out, variants))
            print(tables[-1], flush=True)
        if args.nightly:
            tables.append(passes(n, out, variants))
            print(tables[-1], flush=True)
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
