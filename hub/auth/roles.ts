/**
 * The roles of API tokens, least first: each may do all that the one before it may. A ladder,
 * not sets of permissions: three roles are what an edge fleet's operators ask for (Nomad's and
 * Kubernetes' policies are for far larger teams), and a ladder cannot leave a role with a
 * permission the one above it lacks.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;

export type Role = (typeof ROLES)[number];

export function isRole(text: unknown): text is Role {
  return typeof text === 'string' && (ROLES as readonly string[]).includes(text);
}

/** Whether a token of role `held` may use a route that needs at least `needed`. */
export function roleReaches(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}
