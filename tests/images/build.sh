#!/usr/bin/env bash
# Builds the container images the integration tests use, offline (there is no registry):
#   driftwatch-test/busybox:1   a rootfs with busybox-static and its applet links
#   driftwatch-test/debian:12   debootstrap minbase bookworm + python3-minimal, procps
#   driftwatch-test/pause:1     the pod sandbox image of the kubelet-like harness (the CRI
#                               plugin's sandbox_image): busybox's sleep, `sleep infinity`
#   driftwatch-test/rpm:1       busybox with rpm databases written by rpm (the fixtures of
#                               crates/driftwatch-image/tests/fixtures/rpm): a sqlite rpmdb in
#                               /var/lib/rpm, and for tests to copy in (/usr/share/dw-rpm/):
#                               the database after `rpm -i extra` and `rpm -e legacy`, and a
#                               WAL holding extra's row committed but not checkpointed
# The Debian rootfs tarball is cached in $DW_IMAGE_CACHE (default /var/cache/driftwatch-test)
# because debootstrap takes minutes. The mirror is the one apt on this machine already uses.
set -euo pipefail
DOCKER=${DOCKER:-/usr/bin/docker}
CACHE=${DW_IMAGE_CACHE:-/var/cache/driftwatch-test}
mkdir -p "$CACHE"

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

if ! have_image driftwatch-test/busybox:1; then
  echo "building driftwatch-test/busybox:1"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,root,proc,sys,dev}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar -C "$root" -c . | "$DOCKER" import -c 'CMD ["/bin/sh"]' - driftwatch-test/busybox:1 >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! have_image driftwatch-test/pause:1; then
  echo "building driftwatch-test/pause:1"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sleep"
  tar -C "$root" -c . | "$DOCKER" import -c 'ENTRYPOINT ["/bin/sleep", "infinity"]' - driftwatch-test/pause:1 >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! have_image driftwatch-test/rpm:1; then
  echo "building driftwatch-test/rpm:1"
  fixtures="$(cd "$(dirname "$0")/../.." && pwd)/crates/driftwatch-image/tests/fixtures/rpm"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,etc,tmp,var/lib/rpm,usr/share/dw-rpm}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh cp cat sleep echo ls rm mv touch; do ln -s busybox "$root/bin/$applet"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  cp "$fixtures/image.sqlite" "$root/var/lib/rpm/rpmdb.sqlite"
  cp "$fixtures/changed.sqlite" "$root/usr/share/dw-rpm/changed.sqlite"
  cp "$fixtures/pending.sqlite-wal" "$root/usr/share/dw-rpm/pending.sqlite-wal"
  tar -C "$root" -c . | "$DOCKER" import -c 'CMD ["/bin/sh"]' - driftwatch-test/rpm:1 >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! have_image driftwatch-test/debian:12; then
  tarball="$CACHE/debian-bookworm-minbase-python3.tar"
  if [ ! -s "$tarball" ]; then
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1)
    [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
    echo "debootstrap bookworm from $mirror (cached in $tarball afterwards)"
    root=$(mktemp -d)
    debootstrap --variant=minbase --include=python3-minimal,procps bookworm "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
      || { echo "debootstrap failed, see $CACHE/debootstrap.log" >&2; tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  echo "importing driftwatch-test/debian:12"
  "$DOCKER" import -c 'CMD ["/bin/bash"]' "$tarball" driftwatch-test/debian:12 >/dev/null
fi
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.ID}}' | grep '^driftwatch-test/'
