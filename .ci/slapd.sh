#!/usr/bin/env bash
# Provision a throwaway OpenLDAP (slapd) on a free loopback port for the LDAP login tests.
#
#   eval "$(.ci/slapd.sh /tmp/slapd.pid)"     # start one, export WORKBENCH_TEST_LDAP_* variables
#   kill "$(cat /tmp/slapd.pid)"              # stop it
#
# Does nothing when WORKBENCH_TEST_LDAP_URL is already set. Otherwise it installs the Debian
# packages slapd and ldap-utils when slapd is missing (as root), writes a minimal slapd.conf
# (core, cosine, inetorgperson, nis schemas; one mdb database with a random root password) in
# a fresh temporary directory, starts slapd on 127.0.0.1:<free port>, creates the base entry,
# and prints `export ...` lines on stdout (everything else goes to stderr):
#
#   WORKBENCH_TEST_LDAP_URL            ldap://127.0.0.1:PORT
#   WORKBENCH_TEST_LDAP_BASE_DN        dc=workbench,dc=test
#   WORKBENCH_TEST_LDAP_BIND_DN        cn=admin,dc=workbench,dc=test (may write anything)
#   WORKBENCH_TEST_LDAP_BIND_PASSWORD  the random root password
#
# Tests create their own users and groups under the base entry. The PID goes to the file named
# by $1, or is printed as SLAPD_PID.
set -euo pipefail

pid_file="${1:-}"
log() { echo "slapd.sh: $*" >&2; }

if [[ -n "${WORKBENCH_TEST_LDAP_URL:-}" ]]; then
    log "WORKBENCH_TEST_LDAP_URL is already set; not starting slapd"
    exit 0
fi

slapd_bin="$(command -v slapd || true)"
[[ -z "$slapd_bin" && -x /usr/sbin/slapd ]] && slapd_bin=/usr/sbin/slapd
if [[ -z "$slapd_bin" || ! -x "$(command -v ldapadd || echo /nonexistent)" ]]; then
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "slapd is not installed and cannot be installed here (needs root and apt-get)"
        exit 1
    fi
    log "installing slapd and ldap-utils"
    export DEBIAN_FRONTEND=noninteractive
    # the package's own service stays down (policy-rc.d in containers, or stopped below)
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends slapd ldap-utils >&2
    slapd_bin=/usr/sbin/slapd
fi

free_port() {
    python3 - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}

base_dn="dc=workbench,dc=test"
root_dn="cn=admin,${base_dn}"
root_pw="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
dir="$(mktemp -d "${TMPDIR:-/tmp}/wb-slapd.XXXXXX")"
mkdir -p "$dir/data"
port="$(free_port)"
schema=/etc/ldap/schema
modules=/usr/lib/ldap

cat >"$dir/slapd.conf" <<CONF
include ${schema}/core.schema
include ${schema}/cosine.schema
include ${schema}/inetorgperson.schema
include ${schema}/nis.schema
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
modulepath ${modules}
moduleload back_mdb
database mdb
maxsize 104857600
suffix "${base_dn}"
rootdn "${root_dn}"
rootpw $(slappasswd -s "$root_pw")
directory ${dir}/data
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
CONF

log "starting slapd on 127.0.0.1:${port}, data in ${dir}"
"$slapd_bin" -f "$dir/slapd.conf" -h "ldap://127.0.0.1:${port}/" >"$dir/slapd.log" 2>&1 || {
    log "slapd failed to start:"
    cat "$dir/slapd.log" >&2
    exit 1
}

for _ in $(seq 1 100); do
    [[ -s "$dir/slapd.pid" ]] && ldapwhoami -x -H "ldap://127.0.0.1:${port}/" >/dev/null 2>&1 && break
    sleep 0.1
done
if ! ldapwhoami -x -H "ldap://127.0.0.1:${port}/" >/dev/null 2>&1; then
    log "slapd did not answer within 10 s"
    [[ -s "$dir/slapd.pid" ]] && kill "$(cat "$dir/slapd.pid")" || true
    exit 1
fi
pid="$(cat "$dir/slapd.pid")"

ldapadd -x -H "ldap://127.0.0.1:${port}/" -D "$root_dn" -w "$root_pw" >&2 <<LDIF
dn: ${base_dn}
objectClass: dcObject
objectClass: organization
o: Mesh Workbench tests
dc: workbench
LDIF

if [[ -n "$pid_file" ]]; then
    echo "$pid" >"$pid_file"
else
    echo "export SLAPD_PID=$pid"
fi
echo "export SLAPD_DATA_DIR=$dir"
echo "export WORKBENCH_TEST_LDAP_URL=ldap://127.0.0.1:${port}"
echo "export WORKBENCH_TEST_LDAP_BASE_DN='${base_dn}'"
echo "export WORKBENCH_TEST_LDAP_BIND_DN='${root_dn}'"
echo "export WORKBENCH_TEST_LDAP_BIND_PASSWORD='${root_pw}'"
