/**
 * Plain JSON trees as the loader handles them (config files, convict's properties): the type,
 * a few checks, and reading/writing a dotted key such as `cache.redis.url`.
 */

export type Json = Record<string, unknown>;

export function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function getPath(root: unknown, key: string): unknown {
  let node: unknown = root;
  for (const part of key.split('.')) {
    if (!isPlainObject(node) || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

export function setPath(root: Json, key: string, value: unknown): void {
  const parts = key.split('.');
  const last = parts.pop();
  let node: Json = root;
  for (const part of parts) {
    const child = node[part];
    if (!isPlainObject(child)) return;
    node = child;
  }
  if (last !== undefined && Object.hasOwn(node, last)) node[last] = value;
}

export function hasPath(root: Json, key: string): boolean {
  const parts = key.split('.');
  const last = parts.pop() ?? '';
  const parent = parts.length === 0 ? root : getPath(root, parts.join('.'));
  return isPlainObject(parent) && Object.hasOwn(parent, last);
}
