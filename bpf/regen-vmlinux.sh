#!/usr/bin/env bash
# Regenerates bpf/include/vmlinux.h from the running kernel's BTF. CO-RE relocates field
# offsets at load time, so the committed header only needs the types, not this exact kernel.
set -euo pipefail
cd "$(dirname "$0")"
bpftool btf dump file /sys/kernel/btf/vmlinux format c > include/vmlinux.h
