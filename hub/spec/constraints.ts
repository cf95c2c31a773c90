/**
 * Placement constraints, Swarm style: `node.labels.zone == eu-1`, `node.arch != arm`, and lists:
 * `node.labels.zone in (eu-1, eu-2)`, `node.arch not in (arm, arm64)`.
 * Parsed once when a spec is accepted; matching is a pure function of the node.
 */

export const CONSTRAINT_ATTRIBUTES = ['id', 'name', 'hostname', 'arch', 'os'] as const;
export type ConstraintAttribute = (typeof CONSTRAINT_ATTRIBUTES)[number];

/** Limits on an `in` / `not in` list, so that matching a node stays cheap. */
export const CONSTRAINT_LIST_LIMITS = { maxValues: 64, maxValueLength: 256 } as const;

/** What a constraint looks at: a node label, or one of the node's attributes. */
type ConstraintField = { kind: 'label'; key: string } | { kind: 'attribute'; attribute: ConstraintAttribute };

/** One value compared (`==`, `!=`), or a list the node's value must be in or not in. */
type ConstraintTest = { op: '==' | '!='; value: string } | { op: 'in' | 'not in'; values: string[] };

export type Constraint = ConstraintField & ConstraintTest;

/** What a constraint can look at on a node. */
export interface ConstraintSubject {
  id: string;
  name: string;
  labels: Record<string, string>;
  facts: { hostname: string; arch: string; os: string } | null;
}

// The value may not start with "=": `node.labels.zone === eu` is a typo, not the value "= eu".
const CONSTRAINT_RE = /^\s*node\.([A-Za-z0-9_.\-/]+?)\s*(==|!=)\s*([^\s=](?:.*\S)?)\s*$/;
// The keyword stands apart from the field; what follows it is checked piece by piece below, so
// that a malformed list gets an error that says what is wrong with it.
const LIST_CONSTRAINT_RE = /^\s*node\.([A-Za-z0-9_.\-/]+?)\s+(not\s+in|in)(?=\s|\(|$)\s*(.*?)\s*$/;

export function parseConstraint(text: string): Constraint | { error: string } {
  const malformed = (why: string) => ({ error: `malformed constraint "${text}": ${why}` });
  const m = CONSTRAINT_RE.exec(text);
  if (m) {
    const [, name, op, value] = m as unknown as [string, string, '==' | '!=', string];
    const field = parseField(name);
    return 'error' in field ? malformed(field.error) : { ...field, op, value };
  }
  const list = LIST_CONSTRAINT_RE.exec(text);
  if (!list) {
    return malformed('expected "node.<attribute> == <value>", "!=", "in (<value>, ...)" or "not in (<value>, ...)"');
  }
  const [, name, keyword, rest] = list as unknown as [string, string, string, string];
  const op = keyword === 'in' ? 'in' : 'not in';
  const field = parseField(name);
  if ('error' in field) return malformed(field.error);
  const values = parseList(rest, op);
  return 'error' in values ? malformed(values.error) : { ...field, op, values };
}

function parseField(name: string): ConstraintField | { error: string } {
  if (name.startsWith('labels.')) {
    const key = name.slice('labels.'.length);
    return key === '' ? { error: 'empty label key' } : { kind: 'label', key };
  }
  if ((CONSTRAINT_ATTRIBUTES as readonly string[]).includes(name)) return { kind: 'attribute', attribute: name as ConstraintAttribute };
  return { error: `unknown attribute "node.${name}" (use node.labels.<key> or node.${CONSTRAINT_ATTRIBUTES.join(', node.')})` };
}

/** `(a, b)` as its items, trimmed; `rest` is what follows the keyword, trimmed. */
function parseList(rest: string, op: 'in' | 'not in'): string[] | { error: string } {
  if (!rest.startsWith('(')) return { error: `expected a list in parentheses after "${op}", like "${op} (a, b)"` };
  const close = rest.lastIndexOf(')');
  if (close === -1) return { error: 'unclosed parenthesis' };
  if (close !== rest.length - 1) return { error: 'text after the closing parenthesis' };
  const inner = rest.slice(1, close);
  if (inner.includes('(') || inner.includes(')')) return { error: 'parenthesis inside the list' };
  if (inner.trim() === '') return { error: 'empty list' };
  const values = inner.split(',').map((v) => v.trim());
  const { maxValues, maxValueLength } = CONSTRAINT_LIST_LIMITS;
  if (values.length > maxValues) return { error: `${values.length} values: at most ${maxValues}` };
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as string;
    if (value === '') return { error: `empty item ${i + 1} in the list` };
    if (value.length > maxValueLength) return { error: `item ${i + 1} in the list is ${value.length} characters: at most ${maxValueLength}` };
  }
  return values;
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
  // A missing label or fact never equals anything and is in no list, so `!=` and `not in` hold
  // for it (as `!=` does in Swarm).
  switch (c.op) {
    case '==':
      return actual === c.value;
    case '!=':
      return actual !== c.value;
    case 'in':
      return actual !== undefined && c.values.includes(actual);
    case 'not in':
      return actual === undefined || !c.values.includes(actual);
  }
}

export function matchesAll(subject: ConstraintSubject, constraints: readonly Constraint[]): boolean {
  for (const c of constraints) if (!matchesConstraint(subject, c)) return false;
  return true;
}
