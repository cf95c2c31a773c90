#!/bin/sh
# Installs the Tether agent on this device from a Tether hub, which serves this script:
#
#   curl -fsSL http://HUB:7070/install.sh | sh -s -- --hub http://HUB:7070 --join-token TOKEN
#
# Re-running it upgrades in place; --uninstall removes it. The options are in usage() below.
# Everything runs from main, called on the last line: a download cut short runs nothing.
set -eu

DEFAULT_PREFIX=/opt/tether-agent
DEFAULT_DATA_DIR=/var/lib/tether-agent
UNIT_NAME=tether-agent.service
NODE_MAJOR_NEEDED=20

say() { printf 'install.sh: %s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}
# What the hub refuses at join (shared/protocol.ts: NodeNameSchema, NodeLabelsSchema), refused
# here first: the agent would stop at join, after the install looked fine.
check_name_and_labels() {
  [ "${#name}" -le 128 ] || usage_error "--name may be 128 characters at most, got ${#name}"
  n_labels=0
  saved_ifs=$IFS
  IFS='
'
  set -f
  for one_label in $labels; do
    n_labels=$((n_labels + 1))
    label_key=${one_label%%=*}
    label_value=${one_label#*=}
    [ "${#label_key}" -le 256 ] || usage_error "--label: a key may be 256 characters at most, got ${#label_key}"
    [ "${#label_value}" -le 1024 ] || usage_error "--label: a value may be 1024 characters at most, got ${#label_value} (key $label_key)"
  done
  set +f
  IFS=$saved_ifs
  [ "$n_labels" -le 64 ] || usage_error "a node has at most 64 labels, got $n_labels"
}

usage_error() {
  printf 'install.sh: %s\n(install.sh --help lists the options)\n' "$*" >&2
  exit 2
}
usage() {
  cat <<'HELP'
Installs the Tether agent on this device from a Tether hub, which serves this script:

  curl -fsSL http://HUB:7070/install.sh | sh -s -- --hub http://HUB:7070 --join-token TOKEN

(the hub prints the line, and POST /v1/join-tokens answers it as installCommand). Run it again
to upgrade in place: the node keeps its identity, and the settings not given again are kept.
Needs root, Node.js 20 or newer, a Docker engine, and curl or wget.

Options:
  --hub URL                  the hub (needed the first time)
  --join-token TOKEN         a join token from the hub (needed until the node has joined)
  --ca-fingerprint sha256:HEX
                             the hub's CA, as the hub prints it (needed with an https:// hub):
                             the download and the agent accept no certificate it did not sign
  --name NAME, --label key=value (repeatable), --data-dir DIR (default /var/lib/tether-agent),
  --docker-socket PATH, --advertise-address IP, --publish-address IP,
  --registry-auth-file PATH  handed to the agent (tether-agent --help says what they do)
  --prefix DIR               where the agent goes (default /opt/tether-agent)
  --no-systemd               no systemd unit: print how to run the agent under another supervisor
                             (kept when it is run again to upgrade)
  --uninstall                remove the agent, its unit and its settings; keep its data dir (the
                             node's identity) and its containers
  --purge                    with --uninstall: remove the data dir and the node's containers too
  --root DIR                 install under DIR, and name the paths under DIR in the files written
                             (tests); no root needed, systemd left alone
  -h, --help                 show this help
HELP
}

# A value as one single-quoted shell word, whatever it holds.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# Whether $1 holds a newline (no setting may: the settings file keeps one per line).
has_newline() {
  case $1 in
    *'
'*) return 0 ;;
  esac
  return 1
}

# The settings of an earlier install, as defaults: a re-run upgrades without repeating them.
load_previous_settings() {
  [ -f "$env_file" ] || return 0
  # shellcheck disable=SC1090 # written by this script, readable by root only
  . "$env_file"
  hub=${TETHER_HUB:-}
  join_token=${TETHER_JOIN_TOKEN:-}
  ca_fingerprint=${TETHER_CA_FINGERPRINT:-}
  name=${TETHER_NAME:-}
  labels=${TETHER_LABELS:-}
  data_dir=${TETHER_DATA_DIR:-$data_dir}
  docker_socket=${TETHER_DOCKER_SOCKET:-}
  advertise_address=${TETHER_ADVERTISE_ADDRESS:-}
  publish_address=${TETHER_PUBLISH_ADDRESS:-}
  registry_auth_file=${TETHER_REGISTRY_AUTH_FILE:-}
  [ -n "$prefix_given" ] || prefix=${TETHER_PREFIX:-$prefix}
}

# --root and --prefix, read before the rest: they say where an earlier install's settings are.
find_root_and_prefix() {
  root='' prefix_given=''
  while [ $# -gt 0 ]; do
    case $1 in
      --root | --prefix)
        if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
        if [ "$1" = --root ]; then root=$2; else prefix_given=$2; fi
        shift 2
        ;;
      *) shift ;;
    esac
  done
}

parse_args() {
  find_root_and_prefix "$@"
  if [ -n "$root" ]; then
    case $root in /*) ;; *) root=$(pwd)/$root ;; esac
    root=${root%/}
  fi
  if [ -n "$prefix_given" ]; then
    case $prefix_given in /*) ;; *) usage_error "--prefix must be an absolute path, got $prefix_given" ;; esac
    prefix=$root${prefix_given%/}
  else
    prefix=$root$DEFAULT_PREFIX
  fi
  # The unit names the launcher by this path, and systemd gives spaces, %, $ and \ meanings of its own.
  case $prefix in
    *[!A-Za-z0-9/._+@:-]*) usage_error "the install path $prefix may hold only letters, digits and / . _ + @ : -" ;;
  esac
  env_file=$root/etc/tether/agent.env
  unit_file=$root/etc/systemd/system/$UNIT_NAME
  data_dir=$root$DEFAULT_DATA_DIR
  hub='' join_token='' ca_fingerprint='' name='' labels='' docker_socket='' advertise_address=''
  publish_address='' registry_auth_file='' no_systemd='' uninstall='' purge=''
  load_previous_settings

  labels_given='' fingerprint_given=''
  while [ $# -gt 0 ]; do
    opt=$1
    case $opt in
      -h | --help)
        usage
        exit 0
        ;;
      --no-systemd) no_systemd=yes; shift; continue ;;
      --uninstall) uninstall=yes; shift; continue ;;
      --purge) purge=yes; shift; continue ;;
      --hub | --join-token | --ca-fingerprint | --name | --label | --data-dir | --docker-socket | \
        --advertise-address | --publish-address | --registry-auth-file | --root | --prefix) ;;
      *) usage_error "unknown option $opt" ;;
    esac
    if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$opt needs a value"; fi
    value=$2
    shift 2
    ! has_newline "$value" || usage_error "$opt: the value holds a line break"
    case $opt in
      --hub) hub=${value%/} ;;
      --join-token) join_token=$value ;;
      --ca-fingerprint) ca_fingerprint=$value fingerprint_given=yes ;;
      --name) name=$value ;;
      --label)
        case $value in
          ?*=*) ;;
          *) usage_error "--label must be key=value, got $value" ;;
        esac
        if [ -z "$labels_given" ]; then labels=$value; else labels="$labels
$value"; fi
        labels_given=yes
        ;;
      --data-dir)
        case $value in /*) ;; *) usage_error "--data-dir must be an absolute path, got $value" ;; esac
        data_dir=$root${value%/}
        ;;
      --docker-socket) docker_socket=$value ;;
      --advertise-address) advertise_address=$value ;;
      --publish-address) publish_address=$value ;;
      --registry-auth-file) registry_auth_file=$value ;;
      --root | --prefix) ;; # read in the first pass
    esac
  done

  [ -z "$purge" ] || [ -n "$uninstall" ] || usage_error "--purge goes with --uninstall"
  [ -n "$uninstall" ] && return 0
  [ -n "$hub" ] || usage_error "--hub is needed (the hub's URL, e.g. http://hub.example:7070)"
  case $hub in
    http://?* | https://?*) ;;
    *) usage_error "--hub must start with http:// or https://, got $hub" ;;
  esac
  if [ -z "$join_token" ] && [ ! -f "$data_dir/node.json" ]; then
    usage_error "--join-token is needed: this device has not joined a hub yet (make a token with POST /v1/join-tokens on the hub)"
  fi
  check_name_and_labels
  if [ -n "$ca_fingerprint" ] && ! is_fingerprint "$ca_fingerprint"; then
    usage_error "--ca-fingerprint must be sha256: and 64 hex digits, as the hub prints it; got $ca_fingerprint"
  fi
  case $hub in
    https://*) [ -n "$ca_fingerprint" ] || usage_error "an https:// hub needs --ca-fingerprint sha256:HEX (the hub prints it in its join command)" ;;
    *)
      # The agent refuses to start with a fingerprint and an http:// hub. One kept from an https://
      # hub's install goes with it; one given now is a mistake to say.
      [ -z "$fingerprint_given" ] || usage_error "--ca-fingerprint pins the CA of an https:// hub; --hub is $hub"
      ca_fingerprint=''
      ;;
  esac
  return 0
}

# Whether $1 is sha256: and 64 hex digits, colons between bytes allowed (what the agent accepts:
# one it refuses would only fail at its start, in a restart loop).
is_fingerprint() {
  case $1 in sha256:*) ;; *) return 1 ;; esac
  fingerprint_hex=$(printf '%s' "${1#sha256:}" | tr -d :)
  case $fingerprint_hex in *[!0-9a-fA-F]*) return 1 ;; esac
  [ ${#fingerprint_hex} -eq 64 ]
}

lack() {
  missing="$missing
  - $*"
}

# The Node.js to run the agent with (node_bin, node_version), or why there is none (node_problem).
find_node() {
  node_bin=$(command -v node || true) node_version='' node_problem=''
  if [ -z "$node_bin" ]; then
    node_problem="no node in PATH ($PATH)"
    return 0
  fi
  node_version=$("$node_bin" -e 'process.stdout.write(process.versions.node)' </dev/null 2>/dev/null || echo unknown)
  case ${node_version%%.*} in
    '' | *[!0-9]*) node_major=0 ;;
    *) node_major=${node_version%%.*} ;;
  esac
  if [ "$node_major" -lt "$NODE_MAJOR_NEEDED" ]; then
    node_problem="$node_bin is $node_version"
    node_bin=''
  fi
}

# Everything missing, said at once; exits 1 when anything is.
check_requirements() {
  missing=''
  if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
    lack "root: run it as root (curl ... | sudo sh -s -- ...), or with --root DIR to stage it in DIR"
  fi
  find_node
  # Uninstalling needs only root (Node.js helps a purge find the node's containers).
  if [ -z "$uninstall" ]; then
    [ -z "$node_problem" ] || lack "Node.js $NODE_MAJOR_NEEDED or newer: $node_problem; install it (https://nodejs.org, or your distribution's nodejs package)"
    socket=${docker_socket:-/var/run/docker.sock}
    if [ -n "$node_bin" ] && ! docker_answers "$socket"; then
      lack "a Docker engine: none answers on $socket; install and start one (e.g. apt-get install docker.io), or give its socket with --docker-socket PATH"
    fi
    case $hub in
      http://*)
        command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || lack "curl or wget, to download the agent from the hub"
        ;;
    esac
  fi
  [ -z "$missing" ] || die "this device lacks what the agent needs:$missing"
}

# Whether the Docker engine answers GET /_ping on the socket $1.
docker_answers() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  "$node_bin" -e '
    const http = require("node:http");
    const request = http.get({ socketPath: process.argv[1], path: "/_ping", timeout: 5000 }, (response) => {
      response.resume();
      process.exit(response.statusCode === 200 ? 0 : 1);
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", () => process.exit(1));
  ' "$1" </dev/null 2>/dev/null
}

# download URL FILE: over https, pinned to the CA fingerprint (as the agent connects: the chain
# must end at that CA; the name is not checked, since devices often reach the hub by an address
# its certificate does not list); over http, with curl or wget.
download() {
  case $1 in
    https://*)
      # shellcheck disable=SC2016 # JavaScript, not shell
      "$node_bin" -e '
        const [url, fingerprint, out] = process.argv.slice(1);
        const { X509Certificate } = require("node:crypto");
        const fs = require("node:fs"), https = require("node:https"), net = require("node:net"), tls = require("node:tls");
        const fail = (message) => { process.stderr.write(`install.sh: ${message}\n`); process.exit(1); };
        const hex = (f) => f.replace(/^sha256:/i, "").replaceAll(":", "").toLowerCase();
        const target = new URL(url);
        const host = target.hostname.replace(/^\[|\]$/g, "");
        // First, the chain the hub presents, read without trusting it, for the CA with that fingerprint.
        const probe = tls.connect({ host, port: Number(target.port || 443), rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) });
        probe.setTimeout(30000, () => probe.destroy(new Error("no TLS handshake within 30 s")));
        probe.on("error", (error) => fail(`cannot reach ${target.origin}: ${error.message}`));
        probe.on("secureConnect", () => {
          let cert = probe.getPeerCertificate(true), ca = null;
          const seen = new Set();
          while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
            seen.add(cert.fingerprint256);
            if (hex(cert.fingerprint256) === hex(fingerprint)) ca = new X509Certificate(cert.raw).toString();
            cert = cert.issuerCertificate;
          }
          probe.end();
          if (!ca) fail(`the hub at ${target.origin} presents no certificate of the CA ${fingerprint}: another server on that address, or someone in between; nothing was installed`);
          // Then the download, over a connection whose chain must end at that CA.
          const request = https.get(url, { ca, checkServerIdentity: () => undefined, timeout: 60000 }, (response) => {
            if (response.statusCode !== 200) {
              let body = "";
              response.on("data", (chunk) => { if (body.length < 2000) body += chunk; });
              response.on("end", () => fail(`GET ${url} answered HTTP ${response.statusCode}: ${body.trim()}`));
              return;
            }
            const file = fs.createWriteStream(out);
            file.on("error", (error) => fail(`cannot write ${out}: ${error.message}`));
            response.on("error", (error) => fail(`GET ${url}: ${error.message}`));
            response.pipe(file).on("finish", () => process.exit(0));
          });
          request.on("timeout", () => request.destroy(new Error("no answer within 60 s")));
          request.on("error", (error) => fail(`GET ${url}: ${error.message}`));
        });
      ' "$1" "$ca_fingerprint" "$2" </dev/null
      ;;
    *)
      if command -v curl >/dev/null 2>&1; then
        # --retry: a hub answers 503 for the few seconds a build of the bundle takes.
        status=$(curl -sS -L --max-time 600 --retry 3 --retry-delay 2 -o "$2" -w '%{http_code}' "$1") || die "GET $1 failed (curl above)"
        [ "$status" = 200 ] || die "GET $1 answered HTTP $status: $(head -c 2000 "$2")"
      else
        # -T and -t: wget's own defaults (15 minutes, 20 tries) would keep an install waiting on a dead hub.
        wget -q -T 60 -t 3 -O "$2" "$1" || die "GET $1 failed (wget exit $?; 8 means the hub refused: see its answer with curl)"
      fi
      ;;
  esac
}

sha256_of() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  "$node_bin" -e '
    const hash = require("node:crypto").createHash("sha256");
    hash.update(require("node:fs").readFileSync(process.argv[1]));
    process.stdout.write(hash.digest("hex"));
  ' "$1" </dev/null
}

# The bundle from the hub into $work, checked against its checksum, and started once.
fetch_agent() {
  say "downloading the agent from $hub"
  download "$hub/agent/tether-agent.js.sha256" "$work/tether-agent.js.sha256"
  download "$hub/agent/tether-agent.js" "$work/tether-agent.mjs"
  expected=$(sed -n '1s/^\([0-9a-f]\{64\}\)  tether-agent\.js$/\1/p' "$work/tether-agent.js.sha256")
  [ -n "$expected" ] || die "$hub/agent/tether-agent.js.sha256 is not a checksum line ($(head -c 200 "$work/tether-agent.js.sha256")); nothing was installed"
  actual=$(sha256_of "$work/tether-agent.mjs")
  [ "$actual" = "$expected" ] || die "the agent downloaded from $hub does not match its checksum (expected $expected, got $actual): damaged or altered on the way; nothing was installed"
  # .mjs: an ES module wherever it lies, with no package.json beside it.
  version=$(cd / && "$node_bin" "$work/tether-agent.mjs" --version </dev/null 2>&1) ||
    die "the downloaded agent does not start with $node_bin ($node_version): $version"
}

write_launcher() {
  mkdir -p "$prefix/bin"
  {
    echo '#!/bin/sh'
    echo "# Runs the Tether agent with the settings in $env_file (written by install.sh)."
    echo 'set -eu'
    echo ". $(quote "$env_file")"
    cat <<'ARGS'
set -- --data-dir "$TETHER_DATA_DIR"
[ -z "${TETHER_HUB:-}" ] || set -- "$@" --hub "$TETHER_HUB"
# The join token in the agent's environment, never its arguments (any local user can read a
# process's arguments, its environment only root), and only until the node has joined.
if [ -n "${TETHER_JOIN_TOKEN:-}" ] && [ ! -f "$TETHER_DATA_DIR/node.json" ]; then export TETHER_JOIN_TOKEN; else unset TETHER_JOIN_TOKEN; fi
[ -z "${TETHER_CA_FINGERPRINT:-}" ] || set -- "$@" --ca-fingerprint "$TETHER_CA_FINGERPRINT"
[ -z "${TETHER_NAME:-}" ] || set -- "$@" --name "$TETHER_NAME"
[ -z "${TETHER_DOCKER_SOCKET:-}" ] || set -- "$@" --docker-socket "$TETHER_DOCKER_SOCKET"
[ -z "${TETHER_ADVERTISE_ADDRESS:-}" ] || set -- "$@" --advertise-address "$TETHER_ADVERTISE_ADDRESS"
[ -z "${TETHER_PUBLISH_ADDRESS:-}" ] || set -- "$@" --publish-address "$TETHER_PUBLISH_ADDRESS"
[ -z "${TETHER_REGISTRY_AUTH_FILE:-}" ] || set -- "$@" --registry-auth-file "$TETHER_REGISTRY_AUTH_FILE"
# One label a line.
old_ifs=$IFS
IFS='
'
set -f
for label in ${TETHER_LABELS:-}; do set -- "$@" --label "$label"; done
set +f
IFS=$old_ifs
ARGS
    # A 1 MiB young generation: on a small device the footprint matters more than the few extra
    # scavenges it costs (the agent's idle allocation rate is low).
    echo "exec $(quote "$node_bin") --max-semi-space-size=1 $(quote "$prefix/tether-agent.mjs") \"\$@\""
  } >"$prefix/bin/tether-agent.new"
  chmod 755 "$prefix/bin/tether-agent.new"
  mv -f "$prefix/bin/tether-agent.new" "$prefix/bin/tether-agent"
}

write_settings() {
  mkdir -p "$(dirname "$env_file")"
  (
    umask 077
    {
      echo "# The Tether agent's settings, written by install.sh: re-run it to change them (or edit"
      echo "# them and restart the agent). Shell syntax, read by $prefix/bin/tether-agent."
      echo "TETHER_HUB=$(quote "$hub")"
      echo "# Used once, at the first start, to join; the node's own credential is in the data dir."
      echo "TETHER_JOIN_TOKEN=$(quote "$join_token")"
      echo "TETHER_CA_FINGERPRINT=$(quote "$ca_fingerprint")"
      echo "TETHER_NAME=$(quote "$name")"
      echo "# One key=value a line."
      echo "TETHER_LABELS=$(quote "$labels")"
      echo "TETHER_DATA_DIR=$(quote "$data_dir")"
      echo "TETHER_DOCKER_SOCKET=$(quote "$docker_socket")"
      echo "TETHER_ADVERTISE_ADDRESS=$(quote "$advertise_address")"
      echo "TETHER_PUBLISH_ADDRESS=$(quote "$publish_address")"
      echo "TETHER_REGISTRY_AUTH_FILE=$(quote "$registry_auth_file")"
      echo "# Where install.sh put the agent (for its next run)."
      echo "TETHER_PREFIX=$(quote "$prefix")"
    } >"$env_file.new"
  )
  chmod 600 "$env_file.new"
  mv -f "$env_file.new" "$env_file"
}

write_unit() {
  mkdir -p "$(dirname "$unit_file")"
  cat >"$unit_file.new" <<UNIT
[Unit]
Description=Tether agent: runs this device's share of the fleet
After=network-online.target docker.service
Wants=network-online.target

[Service]
ExecStart=$prefix/bin/tether-agent
Restart=on-failure
RestartSec=5
# Exit 2: settings or a join the agent refuses (a bad flag, a revoked token, a hub whose CA is not
# the pinned one). Restarting cannot mend them; the journal holds the line that says why.
RestartPreventExitStatus=2
# Stopping the agent leaves its containers running: the engine keeps them, not this unit.

[Install]
WantedBy=multi-user.target
UNIT
  mv -f "$unit_file.new" "$unit_file"
}

systemd_runs() { [ -z "$root" ] && [ "$(cat /proc/1/comm 2>/dev/null || true)" = systemd ]; }

install_agent() {
  upgrade=''
  [ ! -f "$prefix/tether-agent.mjs" ] || upgrade=yes
  # An agent installed with --no-systemd runs under another supervisor: a unit started beside it
  # would be a second agent with the same identity, both acting on the same containers.
  if [ -n "$upgrade" ] && [ -z "$no_systemd" ] && [ -f "$env_file" ] && [ ! -f "$unit_file" ]; then
    no_systemd=yes
    say "installed with --no-systemd before: still no systemd unit (--uninstall, then install again, to change that)"
  fi
  fetch_agent
  mkdir -p "$prefix" "$data_dir"
  chmod 700 "$data_dir"
  # Each file written beside its place and renamed into it: a rename within one file system is
  # atomic, one across them (from $TMPDIR) is a copy that a power cut can leave half done.
  cp "$work/tether-agent.mjs" "$prefix/tether-agent.mjs.new"
  chmod 755 "$prefix/tether-agent.mjs.new"
  mv -f "$prefix/tether-agent.mjs.new" "$prefix/tether-agent.mjs"
  cp "$work/tether-agent.js.sha256" "$prefix/tether-agent.js.sha256.new"
  mv -f "$prefix/tether-agent.js.sha256.new" "$prefix/tether-agent.js.sha256"
  write_settings
  write_launcher
  [ -n "$no_systemd" ] || write_unit
  say "agent $version installed in $prefix; settings in $env_file; data in $data_dir"

  if [ -z "$no_systemd" ] && systemd_runs; then
    systemctl daemon-reload || die "systemctl daemon-reload failed (above); the agent is installed, its unit in $unit_file"
    out=$(systemctl enable "$UNIT_NAME" 2>&1) || die "systemctl enable $UNIT_NAME failed: $out"
    systemctl restart "$UNIT_NAME" || die "systemctl restart $UNIT_NAME failed: see journalctl -u $UNIT_NAME"
    say "tether-agent is ${upgrade:+upgraded and }running under systemd (journalctl -u tether-agent -f)"
    return 0
  fi
  if [ -z "$no_systemd" ]; then
    say "systemd unit written to $unit_file${root:+ (staged under $root: systemd left alone)}"
  fi
  say "run it under your supervisor (runit, s6, OpenRC, supervisord, ...) in the foreground, restarted when it exits with an error:"
  echo "  $prefix/bin/tether-agent"
  echo "  (it reads $env_file; it logs JSON to stdout)"
  [ -z "$upgrade" ] || say "restart the running agent to run the new version (the node keeps its identity)"
}

# Containers of the node whose identity is in the data dir, removed through the engine's API.
remove_containers() {
  [ -f "$data_dir/node.json" ] || return 0
  if [ -z "$node_bin" ]; then
    say "no Node.js to read $data_dir/node.json: remove the node's containers yourself (label io.tether.node-id)"
    return 0
  fi
  # shellcheck disable=SC2016 # JavaScript, not shell
  "$node_bin" -e '
    const [nodeFile, socketPath] = process.argv.slice(1);
    const http = require("node:http");
    const { nodeId } = JSON.parse(require("node:fs").readFileSync(nodeFile, "utf8"));
    const call = (method, path) => new Promise((resolve, reject) => {
      const request = http.request({ socketPath, method, path, timeout: 30000 }, (response) => {
        let body = "";
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () => (response.statusCode < 300 || response.statusCode === 404 ? resolve(body) : reject(new Error(`${method} ${path}: HTTP ${response.statusCode} ${body}`))));
      });
      request.on("timeout", () => request.destroy(new Error("the engine did not answer within 30 s")));
      request.on("error", reject);
      request.end();
    });
    (async () => {
      const filters = encodeURIComponent(JSON.stringify({ label: [`io.tether.node-id=${nodeId}`] }));
      const containers = JSON.parse(await call("GET", `/containers/json?all=1&filters=${filters}`));
      for (const c of containers) await call("DELETE", `/containers/${c.Id}?force=1&v=1`);
      process.stdout.write(`install.sh: removed ${containers.length} container(s) of node ${nodeId}\n`);
    })().catch((error) => {
      process.stderr.write(`install.sh: could not remove the node containers: ${error.message}\n`);
      process.exit(1);
    });
  ' "$data_dir/node.json" "${docker_socket:-/var/run/docker.sock}" </dev/null
}

# Refuses, before anything is removed, a purge of a directory that is not an agent's data dir: a
# mistyped --data-dir (/srv for /srv/tether) must not take everything beside it.
check_purge_target() {
  case $data_dir in
    '' | / | "$root") die "refusing to purge the data dir $data_dir; nothing was removed" ;;
  esac
  [ -d "$data_dir" ] && [ "$data_dir" != "$root$DEFAULT_DATA_DIR" ] || return 0
  [ -f "$data_dir/node.json" ] || [ -z "$(ls -A "$data_dir")" ] ||
    die "$data_dir holds no node.json: not an agent's data dir, so --purge leaves it (remove it yourself if it is); nothing was removed"
}

uninstall_agent() {
  [ -z "$purge" ] || check_purge_target
  if [ -f "$unit_file" ] && systemd_runs; then
    systemctl disable --now "$UNIT_NAME" >/dev/null 2>&1 || true
  fi
  removed=''
  for f in "$unit_file" "$prefix/bin/tether-agent" "$prefix/tether-agent.mjs" "$prefix/tether-agent.js.sha256" "$env_file"; do
    if [ -e "$f" ]; then rm -f "$f" && removed=yes; fi
  done
  # And what a run cut short left beside them.
  rm -f "$unit_file.new" "$prefix/bin/tether-agent.new" "$prefix/tether-agent.mjs.new" "$prefix/tether-agent.js.sha256.new" "$env_file.new"
  # Only what this script made: --prefix may name a directory that holds other things.
  rmdir "$prefix/bin" "$prefix" "$(dirname "$env_file")" 2>/dev/null || true
  if [ -f "$unit_file" ] || systemd_runs; then systemctl daemon-reload 2>/dev/null || true; fi
  if [ -n "$removed" ]; then say "removed the agent, its unit and its settings"; else say "no agent installed in $prefix: nothing to remove"; fi
  if [ -z "$purge" ]; then
    [ ! -d "$data_dir" ] || say "kept $data_dir (the node's identity) and its containers; --uninstall --purge removes them"
    return 0
  fi
  systemd_runs || say "stop the agent first if another supervisor runs it: it would start the containers again"
  remove_containers
  # The agent mounts a tmpfs for secrets there.
  if grep -q " $data_dir/secrets " /proc/mounts 2>/dev/null; then umount "$data_dir/secrets" || die "cannot unmount $data_dir/secrets"; fi
  rm -rf "$data_dir"
  say "removed $data_dir"
}

main() {
  # Whatever umask root's shell has: a group- or world-writable directory on the path of the
  # launcher, the settings or the unit would let another user change what root runs.
  umask 022
  parse_args "$@"
  check_requirements
  if [ -n "$uninstall" ]; then
    uninstall_agent
    return 0
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/tether-install.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM
  install_agent
}

main "$@"
