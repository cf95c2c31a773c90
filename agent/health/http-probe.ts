/**
 * One try of an http health check: a GET of the container's address, port and path, passing when
 * the status is within [statusMin, statusMax]. Made by the agent itself, so an image needs no curl.
 * No keep-alive (a try holds nothing open after it), the whole try bounded by timeoutMs, and at
 * most HTTP_BODY_READ_MAX_BYTES of a failing answer's body read (the rest is thrown away).
 */
import http from 'node:http';
import { clipHealthOutput, type ProbeResult } from './probe-result.js';

/** How much of a failing answer's body a try reads for its output. */
export const HTTP_BODY_READ_MAX_BYTES = 256;

export interface HttpProbeTarget {
  host: string;
  port: number;
  path: string;
  statusMin: number;
  statusMax: number;
  timeoutMs: number;
}

export function probeHttp(target: HttpProbeTarget): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    let req: http.ClientRequest | null = null;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Ends the socket whatever state the exchange is in: nothing of a try outlives it.
      req?.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, output: `GET ${target.path}: no answer within ${target.timeoutMs} ms` }),
      target.timeoutMs,
    );
    try {
      req = http.request({
        host: target.host,
        port: target.port,
        path: target.path,
        method: 'GET',
        agent: false,
        headers: { connection: 'close', 'user-agent': 'tether-agent-healthcheck' },
      });
    } catch (err) {
      // A path node:http refuses (say one with a space): the check can never pass as written.
      finish({ ok: false, output: `GET ${target.path}: ${messageOf(err)}` });
      return;
    }
    req.on('error', (err) => finish({ ok: false, output: `GET ${target.path}: ${err.message}` }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', (err) => finish({ ok: false, output: `GET ${target.path}: ${err.message}` }));
      if (status >= target.statusMin && status <= target.statusMax) {
        finish({ ok: true });
        return;
      }
      const head = `GET ${target.path}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
      const chunks: Buffer[] = [];
      let bytes = 0;
      const failed = (): void => {
        const body = Buffer.concat(chunks).subarray(0, HTTP_BODY_READ_MAX_BYTES).toString('utf8').trim();
        finish({ ok: false, output: clipHealthOutput(body ? `${head}: ${body}` : head) });
      };
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        bytes += chunk.length;
        if (bytes >= HTTP_BODY_READ_MAX_BYTES) failed();
      });
      res.on('end', failed);
      res.on('close', failed);
    });
    req.end();
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
