#!/usr/bin/env bash
# zrep demo: two file-backed zfs-fuse pools, the embedded sshd with a forced
# command, a full pull, an incremental pull, and a denied dataset that stays
# invisible. Run as root (make demo); everything it creates is removed at the end.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
BIN="$PWD/bin/zrep-stdinserver"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "the demo creates zfs pools: run it as root" >&2; exit 1; }
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
if ! command -v zfs >/dev/null; then
  say "installing zfs-fuse"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zfs-fuse
fi
command -v ssh-keygen >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client
if ! pgrep -x zfs-fuse >/dev/null; then
  say "starting the zfs-fuse daemon"
  setsid zfs-fuse --no-daemon </dev/null >/tmp/zfs-fuse.log 2>&1 &
  for _ in $(seq 50); do zpool list >/dev/null 2>&1 && break; sleep 0.2; done
fi

DIR=$(mktemp -d /tmp/zrep-demo.XXXXXX)
SRC="zdemosrc$$"
DST="zdemodst$$"
SSHD_PID=""
cleanup() {
  set +e
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
  for pool in "$SRC" "$DST"; do
    for _ in $(seq 30); do
      zpool list "$pool" >/dev/null 2>&1 || break
      zpool destroy -f "$pool" 2>/dev/null && break
      sleep 1   # zfs-fuse: "pool is busy" for a while after activity
    done
  done
  rm -rf "$DIR"
  echo "cleaned up: pools $SRC and $DST destroyed, $DIR removed"
}
trap cleanup EXIT

say "two pools on sparse files: $SRC (the source host) and $DST (the backup host)"
truncate -s 512M "$DIR/src.img" "$DIR/dst.img"
run zpool create -m "$DIR/src" "$SRC" "$DIR/src.img"
run zpool create -m "$DIR/dst" "$DST" "$DIR/dst.img"
for ds in data data/photos data/private vm; do run zfs create "$SRC/$ds"; done
head -c 20M /dev/urandom > "$DIR/src/data/report.bin"
head -c 5M /dev/urandom > "$DIR/src/data/photos/cat.jpg"
echo "secret" > "$DIR/src/data/private/diary.txt"

say "the policy: identity 'demo' may see $SRC/data and below, except data/private"
cat > "$DIR/policy.yaml" <<EOF
identities:
  demo:
    datasets:
      "$SRC/data<": true
      "$SRC/data/private<": false
EOF
cat "$DIR/policy.yaml"
run "$BIN" policy check --policy "$DIR/policy.yaml" --identity demo "$SRC/data/photos" "$SRC/data/private" "$SRC/vm" || true

say "a key for the backup host, forced into 'serve' in authorized_keys"
ssh-keygen -q -t ed25519 -N "" -f "$DIR/backup_key" -C demo@backup
printf 'restrict,command="%s serve --policy %s --identity demo --log-file %s" %s\n' \
  "$BIN" "$DIR/policy.yaml" "$DIR/serve.log" "$(cat "$DIR/backup_key.pub")" > "$DIR/authorized_keys"
cat "$DIR/authorized_keys"

say "the embedded sshd (same authorized_keys format as OpenSSH)"
for _ in $(seq 20); do
  PORT=$(( (RANDOM % 20000) + 30000 ))
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
done
"$BIN" sshd --listen "127.0.0.1:$PORT" --host-key "$DIR/host_key" --generate-host-key \
  --authorized-keys "$DIR/authorized_keys" --log-file "$DIR/sshd.log" &
SSHD_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
echo "[127.0.0.1]:$PORT $(cat "$DIR/host_key.pub")" > "$DIR/known_hosts"
SSH=(--ssh "backup@127.0.0.1" --ssh-port "$PORT" --ssh-identity "$DIR/backup_key"
     --ssh-option "UserKnownHostsFile=$DIR/known_hosts" --ssh-option StrictHostKeyChecking=yes
     --ssh-option IdentitiesOnly=yes)
echo "listening on 127.0.0.1:$PORT"

say "snapshots on the source"
run zfs snapshot "$SRC/data@monday"
run zfs snapshot "$SRC/data/photos@monday"
run zfs snapshot "$SRC/data/private@monday"
run zfs snapshot "$SRC/vm@monday"

say "what the key may see (data/private and vm are invisible)"
run "$BIN" ls "${SSH[@]}"

say "full pull into $DST/backup"
run "$BIN" pull "${SSH[@]}" --root "$DST/backup"
run zfs list -t all -r -o name,used,mountpoint "$DST"

say "new data and a snapshot on the source, then an incremental pull"
head -c 10M /dev/urandom > "$DIR/src/data/report2.bin"
run zfs snapshot "$SRC/data@tuesday"
run zfs snapshot "$SRC/data@wednesday"
run "$BIN" pull "${SSH[@]}" --root "$DST/backup"

say "nothing new: nothing to do"
run "$BIN" pull "${SSH[@]}" --root "$DST/backup"

say "guids match on both sides"
run zfs get -H -p -o name,value guid "$SRC/data@wednesday" "$DST/backup/$SRC/data@wednesday"

say "the denied dataset stays invisible: asking for it looks exactly like a missing one"
run "$BIN" pull "${SSH[@]}" --root "$DST/backup" --dataset "$SRC/data/private" --dataset "$SRC/no/such" || true

say "the embedded sshd's log: each session with the key's fingerprint and identity"
grep -E "session (start|end)" "$DIR/sshd.log" | tail -n 4
