/** Time as the code sees it; tests pass a fake one. Monotonic: never use it as a wall-clock date. */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => performance.timeOrigin + performance.now(),
};
