/**
 * An esbuild plugin that keeps out of the agent's bundle the parts of its dependencies the agent
 * never uses, each replaced by a stub that loads (its importers require it at their top) and
 * throws a clear error if it is ever called. dockerode loads gRPC and protobuf for BuildKit
 * sessions, tar-fs for build contexts, and docker-modem loads ssh2 for Docker over SSH: about a
 * third of the bundle, and memory on every device, for what an agent on the engine's local socket
 * never does.
 */

/** Package name -> what the agent would have to do to need it. */
export const UNUSED_DEPENDENCIES = {
  ssh2: 'reach the engine over SSH (it uses the local socket)',
  '@grpc/grpc-js': 'run BuildKit sessions (it builds no images)',
  '@grpc/proto-loader': 'run BuildKit sessions (it builds no images)',
  protobufjs: 'read BuildKit progress (it builds no images)',
  'tar-fs': 'pack build contexts (it builds no images)',
  '@balena/dockerignore': 'read .dockerignore files (it builds no images)',
};

const NAMESPACE = 'unused-dependency';

/** A module that loads, and whose every use throws: calling, constructing, or calling any of its members. */
function stubSource(name, reason) {
  const message = `${name} is left out of the Tether agent's bundle: the agent does not ${reason}`;
  return `
const message = ${JSON.stringify(message)};
function unused() { throw new Error(message); }
module.exports = new Proxy(unused, {
  get(target, key) {
    // Looked at by module loaders and promise checks: answered as a plain module would.
    if (typeof key === 'symbol' || key === '__esModule' || key === 'then') return undefined;
    if (key === 'prototype') return target.prototype;
    return unused;
  },
  apply: unused,
  construct: unused,
});
`;
}

export function unusedDependencies(packages = UNUSED_DEPENDENCIES) {
  const names = Object.keys(packages);
  const escaped = names.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
  // The package itself or any file in it (protobufjs/minimal, ...).
  const filter = new RegExp(`^(${escaped.join('|')})(/.*)?$`);
  return {
    name: 'unused-dependencies',
    setup(build) {
      build.onResolve({ filter }, (args) => ({ path: args.path.match(filter)[1], namespace: NAMESPACE }));
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({ contents: stubSource(args.path, packages[args.path]), loader: 'js' }));
    },
  };
}
