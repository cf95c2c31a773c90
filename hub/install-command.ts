/** What the one-line agent install is made of. */
export interface InstallCommandInput {
  /** The hub as the device reaches it (`http(s)://host:port`). */
  hubUrl: string;
  /** null: the `<token>` placeholder, for a person to fill in. */
  joinToken: string | null;
  /** The CA the agent pins (`sha256:<hex>`); null over plain HTTP. */
  caFingerprint: string | null;
  /** curl's pin of the hub's server key (tls/server-key-pin.ts); null over plain HTTP. */
  serverKeyPin: string | null;
}

/** Words a POSIX shell takes as they are; anything else is single-quoted. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

function shellWord(word: string): string {
  return PLAIN_WORD.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The one line that installs an agent on a device: the hub's install.sh piped into sh, with the
 * join flags. Over TLS, curl cannot check the hub's certificate (its CA is the hub's own, unknown
 * to the device), so it pins the server key instead (`--insecure` only turns off the CA check;
 * the pin is still enforced), and install.sh then fetches the bundle pinned to the CA fingerprint.
 * `quote: false` for text a person reads and completes (placeholders such as `<token>`).
 */
export function installCommand(input: InstallCommandInput, { quote = true }: { quote?: boolean } = {}): string {
  const word = quote ? shellWord : (w: string) => w;
  const curl = input.serverKeyPin ? `curl -fsSL --insecure --pinnedpubkey ${word(input.serverKeyPin)}` : 'curl -fsSL';
  const args = [
    '--hub',
    word(input.hubUrl),
    '--join-token',
    input.joinToken === null ? '<token>' : word(input.joinToken),
    ...(input.caFingerprint ? ['--ca-fingerprint', word(input.caFingerprint)] : []),
  ];
  return `${curl} ${word(`${input.hubUrl}/install.sh`)} | sh -s -- ${args.join(' ')}`;
}
