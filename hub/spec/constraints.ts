/**
 * Placement constraints, Swarm style: `node.labels.zone == eu-1`, `node.arch != arm`.
 * Parsed once when a spec is accepted; matching is a pure function of the node.
 */

export const CONSTRAINT_ATTRIBUTES = ['id', 'name', 'hostname', 'arch', 'os'] as const;
export type ConstraintAttribute = (typeof CONSTRAINT_ATTRIBUTES)[number];

export type Constraint =
  | { kind: 'label'; key: string; op: '==' | '!='; value: string }
  | { kind: 'attribute'; attribute: ConstraintAttribute; op: '==' | '!='; value: string };

/** What a constraint can look at on a node. */
export interface ConstraintSubject {
  id: string;
  name: string;
  labels: Record<string, string>;
  facts: { hostname: string; arch: string; os: string } | null;
}

// The value may not start with "=": `node.labels.zone === eu` is a typo, not the value "= eu".
const CONSTRAINT_RE = /^\s*node\.([A-Za-z0-9_.\-/]+?)\s*(==|!=)\s*([^\s=](?:.*\S)?)\s*$/;

export function parseConstraint(text: string): Constraint | { error: string } {
  const m = CONSTRAINT_RE.exec(text);
  if (!m) return { error: `malformed constraint "${text}": expected "node.<attribute> == <value>" or "!="` };
  const [, field, op, value] = m as unknown as [string, string, '==' | '!=', string];
  if (field.startsWith('labels.')) {
    const key = field.slice('labels.'.length);
    if (key === '') return { error: `malformed constraint "${text}": empty label key` };
    return { kind: 'label', key, op, value };
  }
  if ((CONSTRAINT_ATTRIBUTES as readonly string[]).includes(field)) {
    return { kind: 'attribute', attribute: field as ConstraintAttribute, op, value };
  }
  return {
    error: `malformed constraint "${text}": unknown attribute "node.${field}" (use node.labels.<key> or node.${CONSTRAINT_ATTRIBUTES.join(', node.')})`,
  };
}

function attributeOf(subject: ConstraintSubject, attribute: ConstraintAttribute): string | undefined {
  switch (attribute) {
    case 'id':
      return subject.id;
    case 'name':
      return subject.name;
    default:
      return subject.facts?.[attribute];
  }
}

export function matchesConstraint(subject: ConstraintSubject, c: Constraint): boolean {
  const actual = c.kind === 'label' ? subject.labels[c.key] : attributeOf(subject, c.attribute);
  // A missing label or fact never equals anything, so `!=` holds for it (as in Swarm).
  return c.op === '==' ? actual === c.value : actual !== c.value;
}

export function matchesAll(subject: ConstraintSubject, constraints: readonly Constraint[]): boolean {
  for (const c of constraints) if (!matchesConstraint(subject, c)) return false;
  return true;
}
