import { TETHER_VERSION } from '../shared/version.js';
import { installCommand } from './install-command.js';

export interface StartBannerInput {
  url: string;
  dataDir: string;
  adminToken: string;
  adminTokenFile: string;
  /** The admin token was made by this start. */
  adminTokenCreated: boolean;
  /** The banner goes to a terminal (a person), not to a log file or a journal. */
  toTerminal: boolean;
  /** The fingerprint agents pin (`sha256:<hex>`); null over plain HTTP (--insecure-http). */
  caFingerprint: string | null;
  /** The hub's own CA certificate, for curl's --cacert; null with the operator's certificate or plain HTTP. */
  caFile: string | null;
  /** curl's pin of the hub's server key (tls/server-key-pin.ts) for the install line; null over plain HTTP. */
  serverKeyPin: string | null;
}

/**
 * What the hub prints once it listens. A token in a log stays readable for as long as the log
 * does: the admin token is shown once, when it is made and a person is watching; otherwise only
 * where it is kept. No join token is made at start (they piled up, one per start): the banner
 * says how to ask for one.
 */
export function startBanner(b: StartBannerInput): string {
  const showToken = b.adminTokenCreated && b.toTerminal;
  const bearer = showToken ? b.adminToken : `$(cat ${b.adminTokenFile})`;
  const curl = b.caFile ? `curl --cacert ${b.caFile}` : 'curl';
  const install = installCommand({ hubUrl: b.url, joinToken: null, caFingerprint: b.caFingerprint, serverKeyPin: b.serverKeyPin }, { quote: false });
  return [
    '',
    `Tether hub ${TETHER_VERSION} is listening on ${b.url}`,
    `  data dir:     ${b.dataDir}`,
    showToken
      ? `  admin token:  ${b.adminToken}\n                (shown this once; kept in ${b.adminTokenFile}, readable by this user only)`
      : `  admin token:  in ${b.adminTokenFile}${b.adminTokenCreated ? ' (made now)' : ''}`,
    ...(b.caFingerprint ? [`  CA:           ${b.caFingerprint}${b.caFile ? ` (${b.caFile})` : ''}`] : []),
    `  try:          ${curl} -H "Authorization: Bearer ${bearer}" ${b.url}/v1/nodes`,
    '  join another machine: make a join token (valid 24 h unless you say otherwise),',
    `    ${curl} -X POST -H "Authorization: Bearer ${bearer}" ${b.url}/v1/join-tokens`,
    '  then run on that machine, as root (the answer\'s installCommand is this line with the token):',
    `    ${install}`,
    '',
    '',
  ].join('\n');
}
