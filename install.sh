#!/usr/bin/env bash
# Installs the Tether agent on this device from this checkout (minimal: a fuller installer that
# fetches releases comes with its own issue).
#
#   sudo ./install.sh --hub http://HUB:7070 --join-token TOKEN [--name NAME] [--label k=v ...]
#
# Builds the agent, links `tether-agent` into $PREFIX/bin and writes a systemd unit. Where
# systemd runs (PID 1), the unit is enabled and started; elsewhere the command to run is printed.
# Set ROOT=/some/dir to install into a staging tree instead of / (used by the tests).
set -euo pipefail

ROOT=${ROOT:-}
PREFIX=${PREFIX:-/usr/local}
DATA_DIR=/var/lib/tether-agent
agent_args=()
hub='' token=''

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --hub) hub=${2:?--hub needs a URL}; shift 2 ;;
    --join-token) token=${2:?--join-token needs a token}; shift 2 ;;
    --data-dir) DATA_DIR=${2:?--data-dir needs a path}; shift 2 ;;
    --name|--label|--advertise-address|--publish-address|--docker-socket|--registry-auth-file)
      agent_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
done
[ -n "$hub" ] && [ -n "$token" ] || { echo "install.sh: --hub and --join-token are required" >&2; usage; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || { echo "install.sh: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2; exit 1; }
[ -S /var/run/docker.sock ] || echo "install.sh: warning: no Docker engine socket at /var/run/docker.sock; the agent needs one to run containers" >&2

src=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$src/dist/agent/main.js" ]; then
  (cd "$src" && npm ci --no-audit --no-fund && npm run build)
fi
chmod +x "$src/dist/agent/main.js"
mkdir -p "$ROOT$PREFIX/bin" "$ROOT$DATA_DIR" "$ROOT/etc/systemd/system"
chmod 700 "$ROOT$DATA_DIR"
ln -sf "$src/dist/agent/main.js" "$ROOT$PREFIX/bin/tether-agent"

# systemd's own quoting: double quotes, with \ " % and $ escaped its way.
sd_quote() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//%/%%}; s=${s//\$/\$\$}
  printf ' "%s"' "$s"
}
args=(--hub "$hub" --join-token "$token" --data-dir "$DATA_DIR" "${agent_args[@]}")
unit_args=''
for a in "${args[@]}"; do unit_args+=$(sd_quote "$a"); done
# The join token is used once: the first start trades it for the node's own credential.
quoted=$(printf ' %q' "${args[@]}")
cat >"$ROOT/etc/systemd/system/tether-agent.service" <<UNIT
[Unit]
Description=Tether agent: runs this device's share of the fleet
After=network-online.target docker.service
Wants=network-online.target docker.service

[Service]
# A 1 MiB young generation: on a small device the agent's footprint matters more than the few
# extra scavenges it costs (its idle allocation rate is low).
ExecStart=$(command -v node) --max-semi-space-size=1 $src/dist/agent/main.js$unit_args
Restart=always
RestartSec=5
# Stopping the agent leaves the containers running; the engine keeps them up.
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT

if [ -z "$ROOT" ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  systemctl daemon-reload
  systemctl enable --now tether-agent.service
  echo "tether-agent is installed and running (journalctl -u tether-agent)."
else
  echo "tether-agent is installed; systemd is not running here, so start it yourself:"
  echo "  tether-agent$quoted"
fi
