/**
 * How far an image pull got, from the engine's progress lines: bytes downloaded of the layers'
 * sizes, and layers done. Pure: the Docker runtime feeds it each line of the pull's answer, and
 * the reconcile loop reports snapshots of it for the replicas that wait on the image, so that an
 * operator can tell a slow link from a stuck one.
 */
import { MAX_PULL_LAYERS, type PullProgress } from '../../shared/protocol.js';

export { MAX_PULL_LAYERS };

interface Layer {
  /** Bytes to download; null until the engine says (its first `Downloading` line). */
  totalBytes: number | null;
  downloadedBytes: number;
  done: boolean;
}

/** A layer's progress line: { id, status, progressDetail: { current, total } }. */
interface ProgressLine {
  id?: unknown;
  status?: unknown;
  progressDetail?: { current?: unknown; total?: unknown };
}

const LAYER_ANNOUNCED = new Set(['Pulling fs layer', 'Waiting']);
const DOWNLOADED = new Set(['Verifying Checksum', 'Download complete', 'Extracting']);
const LAYER_DONE = new Set(['Pull complete', 'Already exists']);

const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

export class PullProgressTally {
  private readonly layers = new Map<string, Layer>();

  /** One parsed line of the engine's answer to a pull. Lines that are no layer's (the digest, the status) are ignored. */
  add(value: unknown): void {
    if (typeof value !== 'object' || value === null) return;
    const line = value as ProgressLine;
    if (typeof line.id !== 'string' || typeof line.status !== 'string') return;
    const status = line.status;
    const known = LAYER_ANNOUNCED.has(status) || DOWNLOADED.has(status) || LAYER_DONE.has(status) || status === 'Downloading';
    if (!known) return;
    let layer = this.layers.get(line.id);
    if (!layer) {
      if (this.layers.size >= MAX_PULL_LAYERS) return;
      this.layers.set(line.id, (layer = { totalBytes: null, downloadedBytes: 0, done: false }));
    }
    if (status === 'Downloading') {
      const total = count(line.progressDetail?.total);
      const current = count(line.progressDetail?.current);
      if (total !== null) layer.totalBytes = total;
      if (current !== null) layer.downloadedBytes = Math.max(layer.downloadedBytes, current);
    } else if (DOWNLOADED.has(status)) {
      // Extracting reports the bytes extracted, not downloaded: the download itself is over.
      layer.totalBytes ??= layer.downloadedBytes;
      layer.downloadedBytes = layer.totalBytes;
    } else if (status === 'Already exists') {
      // Present in the engine already: nothing of it to download.
      layer.totalBytes = 0;
      layer.downloadedBytes = 0;
      layer.done = true;
    } else if (status === 'Pull complete') {
      layer.totalBytes ??= layer.downloadedBytes;
      layer.downloadedBytes = layer.totalBytes;
      layer.done = true;
    }
  }

  /** Where the pull stands; bytesTotal is null while a layer still to download has no known size. */
  snapshot(): PullProgress {
    let bytesDone = 0;
    let bytesTotal: number | null = 0;
    let layersDone = 0;
    for (const layer of this.layers.values()) {
      // A retried download may count past the size the engine gave: never more than the whole.
      bytesDone += layer.totalBytes === null ? layer.downloadedBytes : Math.min(layer.downloadedBytes, layer.totalBytes);
      if (layer.done) layersDone++;
      if (layer.totalBytes === null) bytesTotal = null;
      else if (bytesTotal !== null) bytesTotal += layer.totalBytes;
    }
    return { bytesDone, bytesTotal, layersDone, layersTotal: this.layers.size };
  }
}
