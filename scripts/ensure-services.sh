#!/usr/bin/env bash
# Makes sure what Warren needs on this machine is installed and running:
# RabbitMQ with its management plugin, Redis, and (with --test) Chromium, Node.js and
# Prometheus.
# As root it installs missing Debian packages with apt; otherwise it says what
# to install and stops. Running it again changes nothing that is already fine.
set -euo pipefail

want_browser=no
[[ "${1:-}" == "--test" ]] && want_browser=yes

say() { printf '\033[1m[warren]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[warren]\033[0m %s\n' "$*" >&2; exit 1; }
is_root() { [[ "$(id -u)" == 0 ]]; }
port_open() { timeout 1 bash -c "</dev/tcp/$1/$2" 2>/dev/null; }
is_local() { [[ -z "$1" || "$1" == *127.0.0.1* || "$1" == *localhost* || "$1" == *"[::1]"* ]]; }

apt_updated=no
apt_install() {
  if ! is_root; then
    die "Missing: $*. Install it with: sudo apt-get install -y $*   (then run this again)"
  fi
  if [[ "$apt_updated" == no ]]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=yes
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for_port() {  # host port seconds what
  local deadline=$((SECONDS + $3))
  until port_open "$1" "$2"; do
    (( SECONDS < deadline )) || die "$4 did not come up on $1:$2 within $3 s."
    sleep 1
  done
}

# --- Python venv support (Debian splits it out) ----------------------------
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install python3-venv
fi

# --- RabbitMQ ----------------------------------------------------------------
if is_local "${WARREN_AMQP_URL:-}"; then
  if ! port_open 127.0.0.1 5672; then
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    is_root || [[ -w /var/lib/rabbitmq ]] || die "RabbitMQ is installed but stopped. Start it with: sudo rabbitmq-server -detached"
    say "starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_for_port 127.0.0.1 5672 90 "RabbitMQ"
  fi
  if is_local "${WARREN_MANAGEMENT_URL:-}" && ! port_open 127.0.0.1 15672; then
    command -v rabbitmq-plugins >/dev/null || die "rabbitmq-plugins is missing: the management plugin cannot be enabled."
    say "enabling the RabbitMQ management plugin"
    rabbitmqctl await_startup --timeout 60 >/dev/null 2>&1 || true
    rabbitmq-plugins enable rabbitmq_management rabbitmq_tracing >/dev/null
    wait_for_port 127.0.0.1 15672 60 "The RabbitMQ management API"
  fi
fi

# --- Redis -----------------------------------------------------------------
if is_local "${REDIS_URL:-}" && ! port_open 127.0.0.1 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile "" >/dev/null
  wait_for_port 127.0.0.1 6379 30 "Redis"
fi

# --- Chromium for the browser tests -------------------------------------------
if [[ "$want_browser" == yes ]] && [[ ! -x /usr/bin/chromium ]]; then
  apt_install chromium fonts-dejavu-core
fi

# --- Prometheus for the /metrics test (started by the test itself, on loopback) ---
if [[ "$want_browser" == yes ]] && ! command -v prometheus >/dev/null; then
  apt_install prometheus
fi

# --- Node.js for the tests' third-party clients (amqplib, axe-core) -------------
if [[ "$want_browser" == yes ]] && ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi

say "services ready: RabbitMQ (management on :15672), Redis$([[ $want_browser == yes ]] && echo ', Chromium')"
