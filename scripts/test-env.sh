#!/usr/bin/env bash
# Brings up the real parts the end-to-end tests use: a Docker engine, a private registry on
# 127.0.0.1:5000 and the test images. Idempotent: whatever is already there is left alone.
# Needs root and Debian's packages (docker.io, busybox-static, docker-registry).
set -euo pipefail

REGISTRY=127.0.0.1:5000
STATE_DIR=${TETHER_TEST_ENV_DIR:-/tmp/tether-test-env}
mkdir -p "$STATE_DIR"

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need_pkgs+=(busybox-static)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test-env: installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

wait_for() { # wait_for SECONDS CMD...: polls CMD until it succeeds or the time is up
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}

if ! docker info >/dev/null 2>&1; then
  echo "test-env: starting dockerd"
  nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 &
  wait_for 60 docker info || { echo "test-env: dockerd did not start"; tail -20 "$STATE_DIR/dockerd.log"; exit 1; }
fi

if ! curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
  echo "test-env: starting the registry on $REGISTRY"
  cat >"$STATE_DIR/registry.yml" <<YML
version: 0.1
storage: { filesystem: { rootdirectory: $STATE_DIR/registry-data }, delete: { enabled: true } }
http: { addr: $REGISTRY }
YML
  nohup docker-registry serve "$STATE_DIR/registry.yml" >"$STATE_DIR/registry.log" 2>&1 &
  wait_for 30 curl -fsS "http://$REGISTRY/v2/" || { echo "test-env: registry did not start"; tail -20 "$STATE_DIR/registry.log"; exit 1; }
fi

# Test images from Debian's static busybox: :1 serves "v1", :2 serves "v2" (a realistic new
# release), and both are pushed so that agents exercise a real pull.
build_image() { # build_image TAG VERSION
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/www" "$root/tmp"
  cp /bin/busybox "$root/bin/"
  for a in sh httpd nc wget sleep cat echo env ls true false; do ln -s busybox "$root/bin/$a"; done
  echo "$2" >"$root/www/index.html"
  tar -C "$root" -c . | docker import - "$1" >/dev/null
  rm -rf "$root"
}
for v in 1 2; do
  docker image inspect "tether-test/busybox:$v" >/dev/null 2>&1 || build_image "tether-test/busybox:$v" "v$v"
  if ! curl -fsS -o /dev/null "http://$REGISTRY/v2/busybox/manifests/$v"; then
    docker tag "tether-test/busybox:$v" "$REGISTRY/busybox:$v"
    docker push -q "$REGISTRY/busybox:$v" >/dev/null
  fi
done
echo "test-env: docker engine, registry $REGISTRY and test images are ready"
