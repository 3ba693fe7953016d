#!/usr/bin/env bash
# Provisions what rtm-compute's tests and demo need on a fresh Debian machine, skipping what is
# already there: the Docker engine (docker.io) with a running dockerd; busybox-static (the tests'
# base image is made from it with `docker import`; nothing is pulled); and for the registry tests,
# Debian's docker-registry and htpasswd (apache2-utils), started by the tests themselves; podman
# (the other engine `--docker-cmd` must drive); and `script` (a terminal for the colour test).
# Source it or run it; it needs root only when something is missing.
set -euo pipefail

log() { printf 'provision: %s\n' "$*" >&2; }

need_packages=()
command -v dockerd >/dev/null 2>&1 || need_packages+=(docker.io)
command -v docker >/dev/null 2>&1 || need_packages+=(docker.io)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need_packages+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || need_packages+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_packages+=(apache2-utils)
command -v podman >/dev/null 2>&1 || need_packages+=(podman)
command -v script >/dev/null 2>&1 || need_packages+=(bsdutils)
command -v zstd >/dev/null 2>&1 || need_packages+=(zstd)

if [ ${#need_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        log "missing ${need_packages[*]}; run this script as root to install them"
        exit 2
    fi
    log "installing ${need_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${need_packages[@]}" >/dev/null
fi

if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        log "no Docker daemon answers; start one (e.g. sudo dockerd &) and try again"
        exit 2
    fi
    log "starting dockerd (log: ${RTM_DOCKERD_LOG:-/tmp/rtm-dockerd.log})"
    nohup dockerd >"${RTM_DOCKERD_LOG:-/tmp/rtm-dockerd.log}" 2>&1 &
    for _ in $(seq 1 60); do
        docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
        log "dockerd did not come up within 60 s; its log follows"
        tail -n 30 "${RTM_DOCKERD_LOG:-/tmp/rtm-dockerd.log}" >&2 || true
        exit 2
    fi
fi
log "docker daemon $(docker version --format '{{.Server.Version}}') is up"
