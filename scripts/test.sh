#!/usr/bin/env bash
# The project's test command: what a newcomer runs on a fresh machine, and what CI runs.
#
# Installs what the tests need (the memcached server, from Debian's packages), then runs the
# formatter check, clippy, the docs build, every test of the workspace (unit, integration,
# doc and trybuild ui tests), and the README's main command (FEED-1 over SQLite) at a small
# size and the profile program as smoke tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

have_memcached() { command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ]; }
if ! have_memcached; then
  step "installing memcached (Debian package) for the memcached tests"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null) \
      || echo "notice: could not install memcached; its tests will be skipped unless ASYNQ_REQUIRE_MEMCACHED is set"
  else
    echo "notice: memcached is missing and cannot be installed here (needs apt-get as root)"
  fi
  if ! have_memcached && [ -n "${ASYNQ_REQUIRE_MEMCACHED:-}" ]; then
    echo "ASYNQ_REQUIRE_MEMCACHED is set but memcached is not installed: its tests would fail" >&2
    exit 1
  fi
fi

step "cargo fmt --all --check"
cargo fmt --all --check

step "every repository path cited in the docs and in code comments exists"
cargo test -q -p asynq-tests --test test_cited_paths

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc --workspace --no-deps --all-features (warnings denied)"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --all-features

step "cargo test --workspace"
cargo test --workspace

step "smoke test: the README's main command at Q=10 A=5"
out=$(cargo run --release -q -p asynq-examples --bin feed -- --questions 10 --answers 5)
echo "$out" | tail -n 1
expected="calls=3 keys=195 rounds=3 out_len=2152 fnv=ac26a36b50baee7b"
if ! echo "$out" | tail -n 1 | grep -q "^$expected ms="; then
  echo "smoke test failed: expected a last line starting with '$expected ms='" >&2
  exit 1
fi

step "smoke test: the profile program renders two profiles in 3 rounds and 5 queries"
out=$(cargo run --release -q -p asynq-examples --bin profile -- 4 7)
echo "$out" | tail -n 1
if ! echo "$out" | tail -n 1 | grep -qx "rounds=3 queries=5"; then
  echo "smoke test failed: expected a last line 'rounds=3 queries=5'" >&2
  exit 1
fi
echo "all checks passed"
