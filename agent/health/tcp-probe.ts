/** One try of a tcp health check: a connection to the container's address and port opens within timeoutMs. */
import net from 'node:net';
import type { ProbeResult } from './probe-result.js';

export interface TcpProbeTarget {
  host: string;
  port: number;
  timeoutMs: number;
}

export function probeTcp(target: TcpProbeTarget): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const socket = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(
      () => finish({ ok: false, output: `connect ${target.host}:${target.port}: no connection within ${target.timeoutMs} ms` }),
      target.timeoutMs,
    );
    socket.on('connect', () => finish({ ok: true }));
    socket.on('error', (err) => finish({ ok: false, output: err.message }));
  });
}
