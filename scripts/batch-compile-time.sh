#!/usr/bin/env bash
# Compile time of asynq-examples' library with `#[asynq(batch)]` on every asynq function,
# against the crate as it is, in the same run (issue 18; docs/batch.md).
#
# Usage: scripts/batch-compile-time.sh [REPS]   (3 by default)
#
# Debug profile with CARGO_INCREMENTAL=0, so that each build after `touch src/lib.rs`
# compiles the library in full (a clean build of the crate; its dependencies are built once
# first and stay fresh). The two variants alternate, the crate as it is first on even
# repetitions, so that a slow spell of the shared machine lands on both. The time is the CPU
# time (user + system) of cargo and the rustc it runs, and the wall time; the script prints
# each build and the medians with their ratio. The variant with the option is made by
# rewriting `#[asynq]` and `#[asynq(opts)]` in a copy of src/; the original is put back on
# exit, whatever happens.
set -euo pipefail

reps=${1:-3}
root=$(git rev-parse --show-toplevel)
src="$root/asynq-examples/src"
backup=$(mktemp -d)
cp -a "$src" "$backup/src"
put_back() {
    rm -rf "$src"
    cp -a "$backup/src" "$src"
}
trap 'put_back; rm -rf "$backup"' EXIT

export CARGO_INCREMENTAL=0
cd "$root"
cargo build -q -p asynq-examples --lib

# `#[asynq(boxed)]` -> `#[asynq(batch, boxed)]`, then `#[asynq]` -> `#[asynq(batch)]` (in
# this order: the first would otherwise apply to what the second wrote); the
# `#[asynq($($option)*)]` of feed_naive.rs is left as it is.
with_batch() {
    find "$src" -name '*.rs' -exec sed -i \
        -e 's/#\[asynq(\([a-z]\)/#[asynq(batch, \1/g' \
        -e 's/#\[asynq\]/#[asynq(batch)]/g' {} +
}

declare -a plain batch
times="$backup/times"
for ((i = 0; i < reps; i++)); do
    order=(plain batch)
    if ((i % 2 == 1)); then order=(batch plain); fi
    for variant in "${order[@]}"; do
        put_back
        if [[ $variant == batch ]]; then with_batch; fi
        touch "$src/lib.rs"
        if ! /usr/bin/time -o "$times" -f '%U %S %e' cargo build -q -p asynq-examples --lib; then
            echo "the $variant build failed" >&2
            exit 1
        fi
        read -r cpu wall < <(awk '{printf "%.2f %.2f\n", $1 + $2, $3}' "$times")
        echo "rep $i $variant: cpu ${cpu} s, wall ${wall} s"
        if [[ $variant == plain ]]; then plain+=("$cpu $wall"); else batch+=("$cpu $wall"); fi
    done
done

median() { # column -> median of that column of stdin
    sort -n -k"$1" | awk -v c="$1" '{v[NR] = $c} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
pc=$(printf '%s\n' "${plain[@]}" | median 1)
bc=$(printf '%s\n' "${batch[@]}" | median 1)
pw=$(printf '%s\n' "${plain[@]}" | median 2)
bw=$(printf '%s\n' "${batch[@]}" | median 2)
echo
echo "| asynq-examples lib, debug, full build | CPU s (median) | wall s (median) |"
echo "| --- | ---: | ---: |"
echo "| as it is | $pc | $pw |"
echo "| #[asynq(batch)] on every function | $bc | $bw |"
awk -v b="$bc" -v p="$pc" -v bw="$bw" -v pw="$pw" \
    'BEGIN {printf "| ratio | %.3f | %.3f |\n", b / p, bw / pw}'
