/**
 * Services follow the configs and secrets they name: when one gets a new version, every service
 * whose spec pins an older one is accepted again with the new version (Services.followValues), a
 * new revision that goes out under the service's update settings. Level-triggered: it looks at
 * every service after each change and at start, so a hub stopped between a value's write and its
 * services' puts catches up when it starts again.
 */
import type { Logger } from '../shared/logger.js';
import { pinnedToCurrent, type ValueCatalog } from './spec/mounts.js';
import type { Services } from './services.js';
import type { Store } from './store/store.js';

export class ValueRollouts {
  constructor(
    private readonly deps: {
      store: Pick<Store, 'listServices'>;
      services: Pick<Services, 'followValues'>;
      values: ValueCatalog;
      logger: Pick<Logger, 'info' | 'error'>;
    },
  ) {}

  /** Rolls every service that names an older version of a config or secret than the hub holds. */
  followAll(): void {
    const { store, services, values, logger } = this.deps;
    for (const { name, spec } of store.listServices()) {
      if (pinnedToCurrent(spec, values) === spec) continue;
      services.followValues(name).then(
        (result) => {
          if (result && result.outcome !== 'unchanged') logger.info({ service: name, revision: result.record.revision }, 'a config or secret the service uses changed: rolling it out');
        },
        // The service keeps its revision; the next change or start tries again.
        (err: unknown) => logger.error({ err, service: name }, 'could not roll out a changed config or secret'),
      );
    }
  }
}
