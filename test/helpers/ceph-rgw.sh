#!/usr/bin/env bash
# A real S3 server for the tests and the bench: one Ceph monitor, one OSD and radosgw, all inside
# one directory, on loopback, with no systemd and no ceph-mgr.
#
#   ceph-rgw.sh start DIR    start (or restart on its data) and print S3_* lines on stdout
#   ceph-rgw.sh stop DIR     stop the daemons this script started in DIR, then remove DIR
#   ceph-rgw.sh stop DIR --keep   stop only: a later `start DIR` comes back with the same objects
#
# Idempotent: `start` on a running cluster prints its lines again; `stop` on nothing does nothing.
# Needs Debian's radosgw ceph-mon ceph-osd ceph-common (.ci/run installs them). Exit 3: not installed.
# Environment: S3_BUCKET (default tuspass-test), CEPH_BLOCK_GB (the OSD's sparse file, default 20).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [--keep]" >&2; exit 2; }

say() { echo "[ceph-rgw] $*" >&2; }
fail() { say "error: $*"; exit 1; }

running() { [ -f "$dir/pids/$1" ] && kill -0 "$(cat "$dir/pids/$1")" 2>/dev/null; }

stop_daemon() {
  local name=$1 file="$dir/pids/$1" pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "$name ($pid) still there after 20 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$file"
}

if [ "$cmd" = stop ]; then
  if [ -d "$dir" ]; then
    # radosgw first (it talks to the others), the monitor last (the others ask it on the way out).
    stop_daemon rgw
    stop_daemon osd
    stop_daemon mon
  fi
  [ "${3:-}" = --keep ] || rm -rf "$dir"
  exit 0
fi
[ "$cmd" = start ] || fail "unknown command $cmd"

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
  command -v "$tool" >/dev/null || { say "$tool is missing (packages: radosgw ceph-mon ceph-osd ceph-common)"; exit 3; }
done

conf="$dir/ceph.conf"
ceph_() { timeout 20 ceph --conf "$conf" "$@"; }

# The endpoint answers (an anonymous GET / is 200 or 403 on radosgw once it serves).
answering() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$(cat "$dir/rgw-port")/" | grep -qE '^(200|403)$'; }

# Waits for a condition, up to a time limit: generous, as a loaded machine starts Ceph slowly.
await() {
  local what=$1 limit=$2 deadline; shift 2
  deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within ${limit} s (logs in $dir/log)"
    sleep 0.3
  done
}

# A daemon in the foreground (-f), detached from our terminal, its pid kept for `stop`.
launch() {
  local name=$1; shift
  running "$name" && return 0
  setsid "$@" --conf "$conf" -f --setuser root --setgroup root >>"$dir/log/$name.out" 2>&1 </dev/null &
  echo $! >"$dir/pids/$name"
}

osd_up() { ceph_ osd dump | grep -qE '^osd\.0 up +in'; }

start_daemons() {
  launch mon ceph-mon -i a
  await "the monitor" 90 ceph_ quorum_status
  launch osd ceph-osd -i 0
  await "the OSD" 180 osd_up
  launch rgw radosgw -n client.rgw.a
  await "radosgw" 180 answering
}

if [ -f "$dir/ready" ]; then
  running mon && running osd && running rgw && answering || start_daemons
  cat "$dir/s3.env"
  exit 0
fi
# A directory left half made by an interrupted first start cannot be trusted: made again.
if [ -d "$dir" ]; then "$0" stop "$dir" >/dev/null 2>&1 || true; fi

mkdir -p "$dir"/{mon,osd,rgw,run,log,pids,crash}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fsid=$(cat /proc/sys/kernel/random/uuid)
mon_port=$(port)
rgw_port=$(port)
echo "$rgw_port" >"$dir/rgw-port"
bucket=${S3_BUCKET:-tuspass-test}

# Why each setting:
# - auth none everywhere: a throwaway cluster on loopback. With it, only the crc connection mode can
#   work; radosgw asks the monitor for the secure mode otherwise and retries forever
#   ("get_initial_auth_request returned -13"), hence every ms_*_mode = crc.
# - msgr2 only, on 127.0.0.1, at a port chosen once: the monitor's address is written into the
#   cluster map at creation, so a restart on the same data must use the same port.
# - one OSD: pools of size 1 (which the monitor refuses unless mon_allow_pool_size_one), few PGs,
#   no CRUSH failure domain above the OSD.
# - bluestore on a sparse file: memstore would lose every object when the OSD stops.
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_initial_members = a
mon_host = v2:127.0.0.1:$mon_port
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_service_mode = crc
ms_mon_cluster_mode = crc
ms_service_mode = crc
ms_cluster_mode = crc
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
mon_cluster_log_file = $dir/log/cluster.log
crash_dir = $dir/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000

[mon]
mon_data = $dir/mon/\$cluster-\$id
mon_allow_pool_delete = true

[osd]
osd_data = $dir/osd
osd_objectstore = bluestore
osd_memory_target = 1073741824
bluestore_block_create = true
bluestore_block_size = $(( ${CEPH_BLOCK_GB:-20} << 30 ))
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false

[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_data = $dir/rgw
rgw_enable_usage_log = false
EOF

monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon --conf "$conf" --mkfs -i a --monmap "$dir/monmap" --setuser root --setgroup root >>"$dir/log/mkfs.out" 2>&1 || fail "ceph-mon --mkfs (see $dir/log/mkfs.out)"
launch mon ceph-mon -i a
await "the monitor" 90 ceph_ quorum_status
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
[ "$(ceph_ osd new "$osd_uuid")" = 0 ] || fail "the OSD did not get id 0"
ceph-osd --conf "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" --setuser root --setgroup root >>"$dir/log/mkfs.out" 2>&1 || fail "ceph-osd --mkfs (see $dir/log/mkfs.out)"
start_daemons

user=$(radosgw-admin --conf "$conf" -n client.admin user create --uid=tuspass --display-name=tuspass 2>>"$dir/log/admin.out")
key() { printf '%s' "$user" | python3 -c "import json,sys; print(json.load(sys.stdin)['keys'][0]['$1'])"; }
access=$(key access_key)
secret=$(key secret_key)
# radosgw wants the payload hash header with curl's SigV4 signing.
status=$(curl -s -o "$dir/log/bucket.out" -w '%{http_code}' --max-time 60 -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
  --aws-sigv4 'aws:amz:us-east-1:s3' --user "$access:$secret" "http://127.0.0.1:$rgw_port/$bucket")
[ "$status" = 200 ] || fail "creating bucket $bucket answered $status"

cat >"$dir/s3.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$rgw_port
S3_REGION=us-east-1
S3_ACCESS_KEY_ID=$access
S3_SECRET_ACCESS_KEY=$secret
S3_BUCKET=$bucket
S3_FORCE_PATH_STYLE=true
EOF
touch "$dir/ready"
cat "$dir/s3.env"
