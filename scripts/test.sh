#!/usr/bin/env bash
# The project's test command: what a newcomer runs on a fresh machine, and what CI runs.
#
# Installs what the tests need (memcached, Redis, PostgreSQL and MariaDB, from Debian's packages, and
# an unprivileged user to run the database servers as when run as root), then runs the
# formatter check, clippy, the docs build, every test of the workspace (unit, integration,
# doc and trybuild ui tests), and the README's main command (FEED-1 over SQLite) at a small
# size and the profile program as smoke tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# install_if_missing NAME REQUIRE_VAR CHECK PACKAGE...: when the function CHECK fails, install
# the Debian PACKAGEs (as root, with apt-get); when NAME is still missing and the variable
# REQUIRE_VAR is set (CI sets them), stop here, since its tests would fail.
apt_updated=
install_if_missing() {
  local name=$1 require=$2 check=$3
  shift 3
  "$check" && return 0
  step "installing $name (Debian packages: $*) for its tests"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # Packages may start their service when installed: the tests start servers of their own,
    # so keep services from starting (as Docker images do) unless a policy is already set.
    local policy=/usr/sbin/policy-rc.d added_policy=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
    fi
    { [ -n "$apt_updated" ] || { apt-get update -qq && apt_updated=1; }; } \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
      || echo "notice: could not install $name; its tests will be skipped unless $require is set"
    if [ -n "$added_policy" ]; then rm -f "$policy"; fi
  else
    echo "notice: $name is missing and cannot be installed here (needs apt-get as root)"
  fi
  if ! "$check" && [ -n "${!require:-}" ]; then
    echo "$require is set but $name is not installed: its tests would fail" >&2
    exit 1
  fi
}

have_memcached() { command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ]; }
# Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<version>/bin.
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1; }
# mariadb-install-db needs my_print_defaults, from the client package.
have_mariadb() {
  command -v mariadb-install-db >/dev/null 2>&1 && command -v my_print_defaults >/dev/null 2>&1 \
    && { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; }
}
have_redis() { command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; }
install_if_missing memcached ASYNQ_REQUIRE_MEMCACHED have_memcached memcached
# redis-server alone serves the single-server and the 3-node Redis Cluster tests: the tests
# set the cluster up over the protocol (CLUSTER ADDSLOTSRANGE, MEET), not with redis-cli.
install_if_missing Redis ASYNQ_REQUIRE_REDIS have_redis redis-server
install_if_missing PostgreSQL ASYNQ_REQUIRE_POSTGRES have_postgres postgresql
install_if_missing MariaDB ASYNQ_REQUIRE_MYSQL have_mariadb mariadb-server-core mariadb-client-core

# The database servers refuse to run as root (PostgreSQL) or should not: as root, the tests
# run them as this unprivileged user (tests/src/servers).
if [ "$(id -u)" = 0 ] && ! id -u "${ASYNQ_TEST_USER:-asynq-test}" >/dev/null 2>&1; then
  step "creating the user ${ASYNQ_TEST_USER:-asynq-test}, that the tests run database servers as"
  useradd --system --no-create-home --shell /usr/sbin/nologin "${ASYNQ_TEST_USER:-asynq-test}"
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
# A free port of 127.0.0.1 (nothing answers on it now), for a server of a smoke test.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

if have_memcached; then
  step "smoke test: feed --cache memcached twice: the same page, the second without a query"
  port=$(free_port)
  memcached -l 127.0.0.1 -p "$port" -U 0 -t 1 -m 64 -u root &
  mc_pid=$!
  trap 'kill "$mc_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 100); do (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
  for run in cold warm; do
    out=$(cargo run --release -q -p asynq-examples --bin feed -- --questions 10 --answers 5 \
      --cache memcached --cache-servers "127.0.0.1:$port")
    echo "$out" | tail -n 2
    echo "$out" | tail -n 1 | grep -q "out_len=2152 fnv=ac26a36b50baee7b ms=" \
      || { echo "smoke test failed ($run): not the reference page" >&2; exit 1; }
  done
  if ! echo "$out" | tail -n 2 | head -n 1 | grep -q "^cache_hits=195 cache_misses=0 origin_calls=0 "; then
    echo "smoke test failed: the warm run should make no origin call" >&2
    exit 1
  fi
  kill "$mc_pid" 2>/dev/null || true
  trap - EXIT
fi
echo "all checks passed"
