/**
 * The logger every component takes: the subset of pino's API Tether uses, a structured object
 * then a message. pino (the agent's logger, the hub's through fastify) fits it as it is; a
 * component that logs at fewer levels asks for a `Pick` of it, so a test can hand it less.
 */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** pino's: whether a line at `level` would be written (absent: assume it would). */
  isLevelEnabled?(level: string): boolean;
}
