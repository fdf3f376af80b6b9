#!/usr/bin/env bash
# The container image, built and smoke-tested on this machine (`make image`; not part of CI).
#
#   devtools/image/image.sh [all|base|build|smoke]      (default: all)
#
# base   a local base image (Debian bookworm by debootstrap, from the mirror apt uses here, plus
#        python3.11), for machines that reach Debian's and Python's package indexes but no image
#        registry; made once, again with REBUILD_BASE=1
# build  the Dockerfile with BASE= that image and this machine's pip index (its settings stay in
#        the build stage)
# smoke  `db upgrade`, `demo --weeks 3` and `run` against the sandbox until the image's own
#        HEALTHCHECK says healthy; devtools/ (not in the image) is mounted read-only for the
#        demo and the sandbox only
#
# Needs root, debootstrap and a Docker daemon; with no bridge network here, containers use the
# host's network. Settings: IMAGE, BASE_IMAGE, DEBIAN_MIRROR, DEBIAN_SECURITY, PIP_INDEX_URL,
# PIP_CERT, HEALTH_WAIT (seconds).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CHECKOUT="$(cd "$HERE/../.." && pwd)"
IMAGE="${IMAGE:-rapport:local}"
BASE_IMAGE="${BASE_IMAGE:-rapport-base:bookworm}"
SUITE=bookworm
HEALTH_WAIT="${HEALTH_WAIT:-180}"
SMOKE_STARTED=""
root=""
PIP_DIR="$HERE/pip"  # the build stage's pip settings, written for one build, then removed

say() {
  if [ -n "$SMOKE_STARTED" ]; then set -- "[$(since "$SMOKE_STARTED") s]" "$@"; fi
  printf 'image: %s\n' "$*" >&2
}
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The first apt source of this machine that serves $1 (a suite), from either source format.
apt_uri() {
  local suite="$1"
  {
    { grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list || true; } \
      | sed 's/\[[^]]*\] *//' \
      | awk -v s="$suite" '{ for (i = 3; i <= NF; i++) if ($i == s) print $2 }'
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -e "$f" ] || continue
      awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
        { uri = ""; ok = 0; bin = 0
          for (i = 1; i <= NF; i++) {
            if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) bin = 1
            if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); uri = u[2] }
            if ($i ~ /^Suites:/) { n = split($i, w, /[ \t]+/); for (j = 2; j <= n; j++) if (w[j] == s) ok = 1 }
          }
          if (ok && bin && uri != "") print uri }' "$f"
    done
  } | awk 'NR == 1'  # not head: an early exit would fail the pipe (pipefail)
}

need_docker() {
  docker info >/dev/null 2>&1 || die "no Docker daemon answers; start one, e.g.
  dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs &"
}

build_base() {
  need_docker
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  local mirror security started
  mirror="${DEBIAN_MIRROR:-$(apt_uri "$SUITE")}"
  security="${DEBIAN_SECURITY:-$(apt_uri "$SUITE-security")}"
  [ -n "$mirror" ] || die "no apt source for $SUITE here; set DEBIAN_MIRROR"
  started="$(now)"
  root="$(mktemp -d /var/tmp/rapport-base.XXXXXX)"  # global: the EXIT trap reads it
  chmod 755 "$root"  # it becomes the image's /: mktemp's 700 would lock out every other user
  trap 'rm -rf "$root" "$root.log"' EXIT  # also when a step fails
  say "base: debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase --include=python3.11,ca-certificates \
    "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; die "debootstrap failed"; }
  rm -f "$root.log"
  {
    echo "deb $mirror $SUITE main"
    echo "deb $mirror $SUITE-updates main"
    [ -z "$security" ] || echo "deb $security $SUITE-security main"
  } >"$root/etc/apt/sources.list"
  # Security updates now; then nothing that a container does not need.
  chroot "$root" sh -c 'apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -qy upgrade' \
    >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; die "apt-get upgrade failed"; }
  rm -f "$root.log"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/tmp/* "$root"/etc/machine-id
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3.11"]' \
    --message "debootstrap $SUITE from $mirror, python3.11" - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  say "base: $BASE_IMAGE built in $(since "$started") s ($(size "$BASE_IMAGE"))"
}

size() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

# This machine's pip index (and the CA bundle it is reached with), for the build stage only.
write_pip_settings() {
  local index cert
  index="${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}"
  cert="${PIP_CERT:-$(pip3 config get global.cert 2>/dev/null || true)}"
  mkdir -p "$PIP_DIR"
  {
    echo "[global]"
    [ -z "$index" ] || echo "index-url = $index"
    if [ -n "$cert" ] && [ -f "$cert" ]; then
      cp "$cert" "$PIP_DIR/ca.pem"
      echo "cert = /etc/pip-build/ca.pem"
    fi
  } >"$PIP_DIR/pip.conf"
}

build_image() {
  need_docker
  if [ -n "${REBUILD_BASE:-}" ] || ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    build_base
  fi
  write_pip_settings
  trap 'rm -f "$PIP_DIR/pip.conf" "$PIP_DIR/ca.pem"' RETURN
  local started
  started="$(now)"
  say "build: $IMAGE from $BASE_IMAGE"
  docker build --network host --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" "$CHECKOUT" >&2
  say "build: $IMAGE built in $(since "$started") s ($(size "$IMAGE"))"
}

# --- smoke test -------------------------------------------------------------------------------

SMOKE_NAME="rapport-smoke-$$"
cleanup_smoke() {
  docker rm -f -v "$SMOKE_NAME-bot" "$SMOKE_NAME-sandbox" >/dev/null 2>&1 || true
  docker volume rm "$SMOKE_NAME" >/dev/null 2>&1 || true
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The sandbox's demo token, from its start-up lines: it is serving once it has printed them.
wait_for_token() {
  local waited=0 token
  while [ "$waited" -lt "$HEALTH_WAIT" ]; do
    token="$(docker logs "$SMOKE_NAME-sandbox" 2>&1 | sed -n 's/.*sandbox demo token \([^ ]*\).*/\1/p')"
    if [ -n "$token" ]; then echo "$token"; return; fi
    [ "$(docker inspect -f '{{.State.Running}}' "$SMOKE_NAME-sandbox")" = true ] || break
    sleep 1
    waited=$((waited + 1))
  done
  docker logs --tail 20 "$SMOKE_NAME-sandbox" >&2
  die "smoke: the sandbox did not start"
}

# `rapport health` inside the running bot, timed there (seconds, wall clock).
health_seconds() {
  docker exec "$SMOKE_NAME-bot" bash -c \
    'TIMEFORMAT="%R (cpu %U+%S)"; { time rapport health >/dev/null; } 2>&1'
}

smoke() {
  need_docker
  docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE; build it first"
  trap cleanup_smoke EXIT
  local key port status devtools token
  SMOKE_STARTED="$(now)"
  devtools=(-v "$CHECKOUT/devtools:/opt/devtools/devtools:ro" -e PYTHONPATH=/opt/devtools)
  say "smoke: without devtools/, \`rapport sandbox\` answers in one line"
  docker run --rm --network none "$IMAGE" sandbox >/dev/null 2>"/tmp/$SMOKE_NAME.err" \
    && die "smoke: the image's \`rapport sandbox\` ran without devtools/"
  if [ "$(wc -l <"/tmp/$SMOKE_NAME.err")" != 1 ] || ! grep -q devtools "/tmp/$SMOKE_NAME.err"; then
    cat "/tmp/$SMOKE_NAME.err" >&2
    die "smoke: \`rapport sandbox\` without devtools/ must answer in one line"
  fi
  rm -f "/tmp/$SMOKE_NAME.err"

  key="$(docker run --rm --network none "$IMAGE" keys generate)"
  docker volume create "$SMOKE_NAME" >/dev/null
  say "smoke: db upgrade"
  docker run --rm --network none -v "$SMOKE_NAME:/data" -e "RAPPORT_ENCRYPTION_KEY=$key" \
    "$IMAGE" db upgrade >&2 || die "smoke: \`rapport db upgrade\` failed"

  say "smoke: demo --weeks 3"
  docker run --rm --network none "${devtools[@]}" "$IMAGE" \
    demo --weeks 3 --quiet --out /tmp/demo-out >&2 || die "smoke: \`rapport demo --weeks 3\` failed"

  say "smoke: run against the sandbox until the HEALTHCHECK says healthy"
  port="$(free_port)"
  docker run -d --name "$SMOKE_NAME-sandbox" --network host "${devtools[@]}" "$IMAGE" \
    sandbox --host 127.0.0.1 --port "$port" >/dev/null
  token="$(wait_for_token)"
  docker run -d --name "$SMOKE_NAME-bot" --network host -v "$SMOKE_NAME:/data" \
    -e "RAPPORT_ENCRYPTION_KEY=$key" -e "RAPPORT_TELEGRAM_TOKEN=$token" \
    -e "RAPPORT_TELEGRAM_API_URL=http://127.0.0.1:$port/bot" "$IMAGE" run >/dev/null
  local waited=0
  while :; do
    status="$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$SMOKE_NAME-bot")"
    case "$status" in
      "running healthy") break ;;
      running*) ;;
      *)
        docker logs --tail 20 "$SMOKE_NAME-bot" >&2
        die "smoke: the bot stopped ($status) before it was healthy" ;;
    esac
    if [ "$waited" -ge "$HEALTH_WAIT" ]; then
      docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' "$SMOKE_NAME-bot" >&2
      docker logs --tail 20 "$SMOKE_NAME-bot" >&2
      die "smoke: not healthy after ${HEALTH_WAIT} s (status: $status)"
    fi
    sleep 2
    waited=$((waited + 2))
  done
  say "smoke: healthy after ${waited} s"
  local _
  for _ in 1 2 3; do
    say "smoke: \`rapport health\` in the bot's container: $(health_seconds) s (HEALTHCHECK timeout 5 s)"
  done
  say "smoke: passed"
}

case "${1:-all}" in
  base) build_base ;;
  build) build_image ;;
  smoke) smoke ;;
  all) build_image && smoke ;;
  *) die "usage: $0 [all|base|build|smoke]" ;;
esac
