#!/usr/bin/env bash
# Brings up the real parts the end-to-end tests use: a Docker engine, a private registry on
# 127.0.0.1:5000, a second one on 127.0.0.1:5001 that needs credentials (tether / s3cret), and
# the test images. Idempotent: whatever is already there is left alone.
# Needs root and Debian's packages (docker.io, busybox-static, docker-registry, apache2-utils,
# shellcheck, systemd).
set -euo pipefail

REGISTRY=127.0.0.1:5000
AUTH_REGISTRY=127.0.0.1:5001
AUTH_USER=tether
AUTH_PASSWORD=s3cret
STATE_DIR=${TETHER_TEST_ENV_DIR:-/tmp/tether-test-env}
mkdir -p "$STATE_DIR"

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need_pkgs+=(busybox-static)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
command -v htpasswd >/dev/null || need_pkgs+=(apache2-utils)
# The install test checks install.sh and its unit with these; Debian's systemd package brings
# systemd-analyze without systemd running.
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)
command -v systemd-analyze >/dev/null || need_pkgs+=(systemd)
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

# The registry with basic auth. Its password file exists before it starts: docker-registry would
# otherwise make one with a random password of its own.
HTPASSWD="$STATE_DIR/registry-auth.htpasswd"
if ! htpasswd -vb "$HTPASSWD" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; then
  htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" >"$HTPASSWD.new" && mv "$HTPASSWD.new" "$HTPASSWD"
fi
anonymous_status() { curl -sS -o /dev/null -w '%{http_code}' "http://$AUTH_REGISTRY/v2/" 2>/dev/null || true; }
status=$(anonymous_status)
if [ "$status" = 000 ]; then
  echo "test-env: starting the registry with credentials on $AUTH_REGISTRY"
  cat >"$STATE_DIR/registry-auth.yml" <<YML
version: 0.1
storage: { filesystem: { rootdirectory: $STATE_DIR/registry-auth-data }, delete: { enabled: true } }
http: { addr: $AUTH_REGISTRY }
auth: { htpasswd: { realm: tether-test, path: $HTPASSWD } }
YML
  nohup docker-registry serve "$STATE_DIR/registry-auth.yml" >"$STATE_DIR/registry-auth.log" 2>&1 &
  wait_for 30 curl -sS -o /dev/null "http://$AUTH_REGISTRY/v2/" || { echo "test-env: registry $AUTH_REGISTRY did not start"; tail -20 "$STATE_DIR/registry-auth.log"; exit 1; }
  status=$(anonymous_status)
fi
if [ "$status" != 401 ]; then
  echo "test-env: $AUTH_REGISTRY answers anonymous requests with HTTP $status, not 401: it must be a registry that needs credentials"
  exit 1
fi

# The push logs in with a throwaway client config, so no credential is ever written to
# ~/.docker/config.json; the engine itself never keeps any, so it can pull from $AUTH_REGISTRY
# only when given credentials.
if ! curl -fsS -o /dev/null -u "$AUTH_USER:$AUTH_PASSWORD" "http://$AUTH_REGISTRY/v2/busybox/manifests/1" 2>/dev/null; then
  push_config=$(mktemp -d)
  trap 'DOCKER_CONFIG="$push_config" docker logout "$AUTH_REGISTRY" >/dev/null 2>&1 || true; rm -rf "$push_config"' EXIT
  # (2>&1: the login's warning about unencrypted credentials concerns only this throwaway file)
  login_out=$(printf '%s' "$AUTH_PASSWORD" | DOCKER_CONFIG="$push_config" docker login -u "$AUTH_USER" --password-stdin "$AUTH_REGISTRY" 2>&1) ||
    { echo "test-env: docker login $AUTH_REGISTRY failed: $login_out"; exit 1; }
  docker tag tether-test/busybox:1 "$AUTH_REGISTRY/busybox:1"
  DOCKER_CONFIG="$push_config" docker push -q "$AUTH_REGISTRY/busybox:1" >/dev/null
  DOCKER_CONFIG="$push_config" docker logout "$AUTH_REGISTRY" >/dev/null
  rm -rf "$push_config"
  trap - EXIT
  docker rmi "$AUTH_REGISTRY/busybox:1" >/dev/null # only the tag: tether-test/busybox:1 keeps the image
fi
# A login made by hand earlier would let the docker CLI pull without being given credentials.
if grep -qF "$AUTH_REGISTRY" "${DOCKER_CONFIG:-$HOME/.docker}/config.json" 2>/dev/null; then
  docker logout "$AUTH_REGISTRY" >/dev/null
fi
status=$(anonymous_status)
[ "$status" = 401 ] || { echo "test-env: anonymous access to $AUTH_REGISTRY got HTTP $status, expected 401"; exit 1; }

echo "test-env: docker engine, registries $REGISTRY and $AUTH_REGISTRY (with credentials) and test images are ready"
