#!/usr/bin/env bash
# Provision a FerretDB v1 (MongoDB wire protocol, SQLite handler) for the integration tests.
#
#   eval "$(.ci/ferretdb.sh /tmp/ferretdb.pid)"     # start one, export WORKBENCH_TEST_MONGODB_URL
#   kill "$(cat /tmp/ferretdb.pid)"                  # stop it
#
# Does nothing when WORKBENCH_TEST_MONGODB_URL is already set (a real MongoDB, or one started
# earlier). Otherwise it finds a `ferretdb` binary ($FERRETDB_BIN, PATH, $HOME/go/bin) or builds
# v1.24.2 with Go, starts it on a free 127.0.0.1 port with a fresh temporary data directory, waits
# until it accepts connections and prints `export ...` lines on stdout (everything else goes to
# stderr). The PID goes to the file named by $1, or is printed as FERRETDB_PID.
#
# Why not plain `go install ...@v1.24.2`: a binary built that way panics at start-up
# ("Invalid build/version/version.txt file content"), because FerretDB embeds a generated
# version.txt that the module zip does not contain. So we build from a copy of the module source
# with that file written.
set -euo pipefail

FERRETDB_VERSION="v1.24.2"
pid_file="${1:-}"

log() { echo "ferretdb.sh: $*" >&2; }

if [[ -n "${WORKBENCH_TEST_MONGODB_URL:-}" ]]; then
    log "WORKBENCH_TEST_MONGODB_URL is already set; not starting FerretDB"
    exit 0
fi

works() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

build_ferretdb() {
    command -v go >/dev/null 2>&1 || {
        log "no ferretdb binary and no Go toolchain; install Go or set WORKBENCH_TEST_MONGODB_URL"
        return 1
    }
    local gobin src dir
    gobin="$(go env GOPATH)/bin"
    dir="$(go mod download -json "github.com/FerretDB/FerretDB@${FERRETDB_VERSION}" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -n "$dir" ]] || { log "go mod download of FerretDB ${FERRETDB_VERSION} failed"; return 1; }
    src="$(mktemp -d)"
    cp -r "$dir/." "$src"
    chmod -R u+w "$src"
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
    log "building ferretdb ${FERRETDB_VERSION} into ${gobin} (takes a few minutes the first time)"
    mkdir -p "$gobin"
    (cd "$src" && go build -buildvcs=false -o "$gobin/ferretdb" ./cmd/ferretdb) >&2
    rm -rf "$src"
    echo "$gobin/ferretdb"
}

find_ferretdb() {
    local candidate
    for candidate in "${FERRETDB_BIN:-}" "$(command -v ferretdb 2>/dev/null || true)" \
        "$HOME/go/bin/ferretdb" "$(go env GOPATH 2>/dev/null || echo /nonexistent)/bin/ferretdb"; do
        if [[ -n "$candidate" ]] && works "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    build_ferretdb
}

free_port() {
    python3 - <<'EOF'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

accepts_connections() {
    python3 - "$1" <<'EOF'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
except OSError:
    sys.exit(1)
EOF
}

ferretdb="$(find_ferretdb)"
works "$ferretdb" || { log "$ferretdb does not run"; exit 1; }
data_dir="$(mktemp -d "${TMPDIR:-/tmp}/wb-ferretdb.XXXXXX")"
port="$(free_port)"
debug_port="$(free_port)"  # its metrics/debug HTTP listener; the default 8088 clashes between runs
log "starting $ferretdb on 127.0.0.1:$port, data in $data_dir"
nohup "$ferretdb" --handler=sqlite --sqlite-url="file:${data_dir}/" \
    --listen-addr="127.0.0.1:${port}" --debug-addr="127.0.0.1:${debug_port}" \
    --state-dir="$data_dir" --telemetry=disable \
    --log-level=warn >"$data_dir/ferretdb.log" 2>&1 </dev/null &
pid=$!

for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
        log "ferretdb exited early; its log:"
        cat "$data_dir/ferretdb.log" >&2
        exit 1
    fi
    accepts_connections "$port" && break
    sleep 0.1
done
accepts_connections "$port" || { log "ferretdb did not listen within 10 s"; kill "$pid"; exit 1; }

if [[ -n "$pid_file" ]]; then
    echo "$pid" >"$pid_file"
else
    echo "export FERRETDB_PID=$pid"
fi
echo "export FERRETDB_DATA_DIR=$data_dir"
echo "export WORKBENCH_TEST_MONGODB_URL=mongodb://127.0.0.1:${port}/"
