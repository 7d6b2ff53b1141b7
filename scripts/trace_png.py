#!/usr/bin/env python3
"""Render a Chrome trace-event file written by `feed --trace` / `profile --trace` to a PNG.

    python3 scripts/trace_png.py trace.json docs/feed-trace.png   # needs: pip install matplotlib

One lane for the run, one for its rounds, one per source for the fetch calls, and one per
asynq function for its polls, on a shared time axis in milliseconds. Perfetto
(https://ui.perfetto.dev) and chrome://tracing show the same file interactively.
"""
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def intervals(events):
    """(name, lane, start_us, end_us) for each async begin/end pair, matched per lane."""
    open_spans = defaultdict(list)
    out = []
    for e in events:
        if e.get("ph") not in ("b", "e"):
            continue
        args = e.get("args", {})
        name = e["name"]
        if name == "asynq.task":
            lane = "task " + args.get("task", "?").rsplit("::", 1)[-1]
        elif name == "asynq.fetch":
            lane = "fetch " + args.get("source", "?")
        elif name == "asynq.round":
            lane = "round"
        else:
            lane = "run"
        key = (name, lane)
        if e["ph"] == "b":
            open_spans[key].append((e["ts"], args))
        elif open_spans[key]:
            start, begin_args = open_spans[key].pop()
            out.append((name, lane, start, e["ts"], begin_args))
    return out


def main(src, dst):
    events = json.load(open(src))
    spans = intervals(events)
    if not spans:
        sys.exit(f"{src}: no asynq spans (was it written with --trace by a `trace` build?)")
    t0 = min(s[2] for s in spans)
    order = ["run", "round"]
    order += sorted({s[1] for s in spans if s[1].startswith("fetch ")})
    order += sorted({s[1] for s in spans if s[1].startswith("task ")})
    colors = {"run": "#777777", "round": "#4c72b0"}
    fig, ax = plt.subplots(figsize=(12, 0.55 * len(order) + 1.2), dpi=110)
    for name, lane, start, end, args in spans:
        y = order.index(lane)
        color = colors.get(lane, "#dd8452" if lane.startswith("fetch") else "#55a868")
        width = max((end - start) / 1000, 0.002)
        ax.broken_barh([((start - t0) / 1000, width)], (y - 0.35, 0.7), color=color)
        if lane == "round":
            ax.text((start - t0) / 1000, y + 0.45, f"round {args.get('round', '')}", fontsize=7)
        if lane.startswith("fetch"):
            ax.text((start - t0) / 1000, y + 0.45, f"{args.get('keys', '')} keys", fontsize=7)
    ax.set_yticks(range(len(order)), order)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the run started")
    ax.set_title("asynq run timeline: " + sys.argv[1].rsplit("/", 1)[-1])
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst)
    print(f"wrote {dst}: {len(spans)} spans in {len(order)} lanes")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
