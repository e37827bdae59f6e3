#!/usr/bin/env bash
# Provision a throwaway RabbitMQ (Debian's rabbitmq-server) on loopback for the bus tests.
#
#   eval "$(.ci/rabbitmq.sh /tmp/rabbitmq.pid)"   # start one, export WORKBENCH_TEST_* variables
#   kill "$(cat /tmp/rabbitmq.pid)"               # stop it (the Erlang VM; epmd stays)
#
# Does nothing when WORKBENCH_TEST_AMQP_URL is already set. Otherwise it installs rabbitmq-server
# when missing (as root), and starts a node of its own: node name wb-test-<random>@localhost,
# AMQP, management and distribution ports picked free on 127.0.0.1, data, logs and the Erlang
# cookie in a fresh temporary directory, the management plugin enabled, one administrator with a
# random password. It prints `export ...` lines on stdout (everything else goes to stderr):
#
#   WORKBENCH_TEST_AMQP_URL                 amqp://wb-admin:PASS@127.0.0.1:PORT/
#   WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL  http://wb-admin:PASS@127.0.0.1:MPORT
#
# The PID goes to the file named by $1, or is printed as RABBITMQ_PID.
set -euo pipefail

pid_file="${1:-}"
log() { echo "rabbitmq.sh: $*" >&2; }

if [[ -n "${WORKBENCH_TEST_AMQP_URL:-}" ]]; then
    log "WORKBENCH_TEST_AMQP_URL is already set; not starting RabbitMQ"
    exit 0
fi

bin=/usr/lib/rabbitmq/bin
if [[ ! -x "$bin/rabbitmq-server" ]]; then
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "rabbitmq-server is not installed and cannot be installed here (needs root and apt-get)"
        exit 1
    fi
    log "installing rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends rabbitmq-server >&2
fi

free_port() {
    python3 - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}

dir="$(mktemp -d "${TMPDIR:-/tmp}/wb-rabbitmq.XXXXXX")"
mkdir -p "$dir/mnesia" "$dir/log"
suffix="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
amqp_port="$(free_port)"
mgmt_port="$(free_port)"
dist_port="$(free_port)"
node="wb-test-${suffix}@localhost"

cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:${amqp_port}
management.tcp.ip = 127.0.0.1
management.tcp.port = ${mgmt_port}
default_user = wb-admin
default_pass = ${password}
default_user_tags.administrator = true
default_vhost = /
loopback_users = none
log.file.level = warning
log.console = false
CONF
echo "[rabbitmq_management]." >"$dir/enabled_plugins"

export HOME="$dir"                       # the Erlang cookie goes here
export RABBITMQ_NODENAME="$node"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$amqp_port"
export RABBITMQ_DIST_PORT="$dist_port"
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$dir/mnesia"
export RABBITMQ_LOG_BASE="$dir/log"
export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"

log "starting ${node}: AMQP 127.0.0.1:${amqp_port}, management ${mgmt_port}, data in ${dir}"
setsid "$bin/rabbitmq-server" >"$dir/log/startup.log" 2>&1 </dev/null &

ok=""
for _ in $(seq 1 120); do
    if "$bin/rabbitmqctl" -n "$node" --timeout 5 await_startup >/dev/null 2>&1; then
        ok=yes
        break
    fi
    sleep 0.5
done
if [[ -z "$ok" ]]; then
    log "RabbitMQ did not start within 60 s:"
    tail -30 "$dir/log/startup.log" >&2 || true
    [[ -s "$dir/rabbitmq.pid" ]] && kill "$(cat "$dir/rabbitmq.pid")" 2>/dev/null || true
    exit 1
fi
for _ in $(seq 1 60); do
    curl -fsS -u "wb-admin:${password}" "http://127.0.0.1:${mgmt_port}/api/overview" >/dev/null 2>&1 && break
    sleep 0.5
done
pid="$(cat "$dir/rabbitmq.pid")"

if [[ -n "$pid_file" ]]; then
    echo "$pid" >"$pid_file"
else
    echo "export RABBITMQ_PID=$pid"
fi
echo "export RABBITMQ_DATA_DIR=$dir"
echo "export WORKBENCH_TEST_AMQP_URL='amqp://wb-admin:${password}@127.0.0.1:${amqp_port}/'"
echo "export WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL='http://wb-admin:${password}@127.0.0.1:${mgmt_port}'"
