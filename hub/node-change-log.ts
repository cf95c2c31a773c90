/**
 * Lines about nodes' changes (state, conditions), each node within its own budget, so that a
 * device that flaps or reconnects fast cannot flood the log.
 */
import type { Logger } from '../shared/logger.js';
import { NodeLogBudget } from './node-log-budget.js';

/**
 * Lines about one node's changes (state, conditions) per minute at most: enough for a few real
 * changes with their reasons, however fast a device flaps or reconnects.
 */
const NODE_LOG_LINES_PER_MINUTE = 20;

export class NodeChangeLog {
  private readonly budget = new NodeLogBudget({ linesPerWindow: NODE_LOG_LINES_PER_MINUTE, windowMs: 60_000 });

  constructor(private readonly logger: Logger) {}

  /**
   * A line about a change of the node, out of its budget; `suppressed` counts its lines dropped
   * before this one.
   */
  line(level: 'info' | 'warn', nodeId: string, obj: object, msg: string): void {
    // A line the log level drops takes nothing of the budget: at warn, the info line every node
    // writes when it connects would otherwise hold an entry per node for a window.
    if (this.logger.isLevelEnabled?.(level) === false) return;
    const suppressed = this.budget.take(nodeId);
    if (suppressed === null) return;
    this.logger[level]({ nodeId, ...obj, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }

  /** Nodes with an entry in the budget. */
  get budgetSize(): number {
    return this.budget.size;
  }

  /** The node is gone: its budget goes too. */
  forget(nodeId: string): void {
    this.budget.forget(nodeId);
  }

  close(): void {
    this.budget.close();
  }
}
