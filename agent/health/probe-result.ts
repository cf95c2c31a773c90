/**
 * What one try of a health check found: a pass, or a failure with its text (the HTTP status and
 * a bit of the body, the connection error, the command's output).
 */
import { HEALTH_OUTPUT_MAX_LENGTH } from '../../shared/container-spec.js';

export type ProbeResult = { ok: true } | { ok: false; output: string };

/**
 * A failure's text cut to what a report carries: its tail, where a command's output says what
 * went wrong last.
 */
export function clipHealthOutput(text: string): string {
  return text.length <= HEALTH_OUTPUT_MAX_LENGTH ? text : text.slice(text.length - HEALTH_OUTPUT_MAX_LENGTH);
}
