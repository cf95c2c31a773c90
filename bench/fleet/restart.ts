/**
 * Restart and reconnect storm: SIGKILL the hub, start it on the same data dir and port, until every
 * agent has a welcome again and /healthz counts them all; the agents reconnect on their own
 * schedule (agent/reconnect-schedule.ts).
 */
import { kill } from '../processes.js';
import type { FleetRun } from './run.js';
import { Curve, diffCounts, seconds, waitUntil } from './util.js';

export async function restart(run: FleetRun): Promise<void> {
  const n = run.liveAgents;
  const statusBefore = await run.agentStatus();
  const connectsBefore = statusBefore.connects;
  await run.keepStoreCountersBeforeKill('in the restart');
  const killedAt = performance.now();
  const boundMs = Math.max(180_000, n * 20);
  const curve = new Curve(n, killedAt);
  await kill(run.hub);
  const startAt = performance.now();
  // Under a reconnect storm /healthz itself may take long to answer: that time is part of the figure.
  await run.startHub(boundMs);
  const hubStartS = seconds(startAt);
  const listeningAt = performance.now();
  let reconnected = 0;
  let waitError = '';
  const done = await run.profiled('reconnect', async () => {
    await waitUntil(`all ${n} agents back after the hub restart`, Math.max(10_000, boundMs - (performance.now() - killedAt)), 100, async () => {
      const s = await run.agentStatus();
      reconnected = s.ready;
      curve.see(s.ready);
      if (s.ready < n) return null;
      return (await run.api.healthz()).connectedNodes >= n ? true : null;
    });
  }).then(
    () => true,
    (error: Error) => {
      waitError = error.message;
      return false;
    },
  );
  const secondsFromKill = seconds(killedAt);
  const secondsFromListening = seconds(listeningAt);
  const statusAfter = await run.agentStatus();
  const connectsAfter = statusAfter.connects;
  run.figures.hub.restart = {
    curveFromKill: curve.result(),
    agentMessages: diffCounts(statusAfter.messages, statusBefore.messages),
    reconnected,
    expected: n,
    secondsFromKill: done ? secondsFromKill : NaN,
    secondsFromListening: done ? secondsFromListening : NaN,
    hubStartS,
    extraConnects: connectsAfter - connectsBefore - reconnected,
    runningAgainS: null,
  };
  if (!done) throw new Error(`${waitError}; ${reconnected} of ${n} agents back when the wait ended`);
  if (run.placed) {
    const running = await run.waitRunning('bench', run.opts.replicas, killedAt, 120_000, (v) => v.status.running === run.opts.replicas);
    run.figures.hub.restart.runningAgainS = running.hubS;
  }
}
