import type { ContainerMount } from '../container-runtime.js';

/** A mount as the Engine API's HostConfig.Mounts takes it. */
export interface DockerMount {
  Type: 'bind' | 'volume' | 'tmpfs';
  Target: string;
  Source?: string;
  ReadOnly?: boolean;
  VolumeOptions?: { Labels: Record<string, string> };
  TmpfsOptions?: { SizeBytes: number; Mode: number };
  BindOptions?: { CreateMountpoint?: boolean };
}

/**
 * The engine's form of a mount. `Mounts`, not `Binds`: a missing bind source is an error there,
 * never a directory the engine makes on the host (a secret's file gone missing must fail the
 * start, not mount an empty directory where the container expects its secret).
 */
export function engineMountOf(mount: ContainerMount): DockerMount {
  switch (mount.type) {
    case 'bind':
      return { Type: 'bind', Source: mount.source, Target: mount.target, ReadOnly: mount.readOnly };
    case 'volume':
      return { Type: 'volume', Source: mount.source, Target: mount.target, ReadOnly: mount.readOnly, VolumeOptions: { Labels: mount.labels } };
    case 'tmpfs':
      return { Type: 'tmpfs', Target: mount.target, TmpfsOptions: { SizeBytes: mount.sizeBytes, Mode: mount.mode } };
  }
}
