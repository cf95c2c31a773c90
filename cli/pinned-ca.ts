import { X509Certificate } from 'node:crypto';
import { caInChain, presentedChain } from '../shared/presented-chain.js';
import { CliError } from './cli-error.js';

/**
 * The hub's CA with this fingerprint, as PEM, from the chain the hub presents (as the agent pins
 * it at join). That the hub holds a key this CA vouches for is proven by the request made next,
 * which trusts this CA alone.
 */
export async function pinCa(url: URL, fingerprint: string): Promise<string> {
  if (url.protocol !== 'https:') throw new CliError(`--ca-fingerprint needs an https:// hub, not ${url.origin}`);
  let chain: X509Certificate[];
  try {
    chain = await presentedChain(url);
  } catch (error) {
    throw new CliError(`cannot reach the hub at ${url.origin}: ${(error as Error).message}`);
  }
  const { ca, presented } = caInChain(chain, fingerprint);
  if (!ca) {
    throw new CliError(
      `the hub at ${url.origin} presents a certificate from CA ${presented ?? '(none)'}, not from ${fingerprint}: another hub on that address, or someone impersonating it; refusing it`,
    );
  }
  return ca.toString();
}
