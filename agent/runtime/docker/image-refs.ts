/** Image references as the engine reads them: which registry, and how they go into a URL path. */

/** Registry host of an image reference, as the engine resolves it (Docker Hub when none is named). */
export function registryHostOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/** The `serveraddress` of a pull's credentials for this image. */
export function serverAddressFor(image: string): string {
  const host = registryHostOf(image);
  // The engine keys Docker Hub credentials by this legacy URL, not by the host name.
  return host === 'docker.io' ? 'https://index.docker.io/v1/' : host;
}

/**
 * Each path segment of an image reference percent-encoded; the slashes stay, as the engine's route
 * expects. dockerode puts the name into the path as it is: a reference with a space or '?' must
 * reach the engine, which then explains what is wrong with it, rather than break the request here.
 */
export function encodeImagePath(image: string): string {
  return image.split('/').map(encodeURIComponent).join('/');
}
