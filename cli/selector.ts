import { UsageError } from './cli-error.js';

/** Label keys and values as the hub takes them in constraints: no commas, parentheses or spaces. */
const PART = /^[^\s,()=!]+$/;

/**
 * `-l zone=eu-1 -l ring!=canary` as the hub's selector: `node.labels.zone==eu-1,node.labels.ring!=canary`
 * (the constraint syntax). `k=v` and `k==v` mean equal, `k!=v` not equal.
 */
export function labelSelector(prefix: 'node.labels' | 'service.labels', terms: readonly string[]): string | undefined {
  if (terms.length === 0) return undefined;
  return terms
    .map((term) => {
      const match = /^([^=!]*)(!=|==|=)(.*)$/.exec(term);
      if (!match || !PART.test(match[1]!) || !PART.test(match[3]!)) {
        throw new UsageError(`-l ${term}: expected key=value or key!=value (no spaces, commas or parentheses)`);
      }
      return `${prefix}.${match[1]}${match[2] === '!=' ? '!=' : '=='}${match[3]}`;
    })
    .join(',');
}

/** `--label k=v` flags as an object (join tokens). */
export function labelPairs(terms: readonly string[], flag: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const term of terms) {
    const eq = term.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${term}: expected key=value`);
    labels[term.slice(0, eq)] = term.slice(eq + 1);
  }
  return labels;
}
