/**
 * The values a metric label may take (bounded sets: outcome names, status codes, methods, breaker
 * states, upstream results, GitHub's rate-limit resources) and the cache of label children the
 * per-request path uses, for prometheus-metrics.adapter.ts. Anything outside a set is "other".
 */
import { ALL_OUTCOMES } from '../../domain/model.js';

export const OUTCOME_VALUES = new Set<string>([...ALL_OUTCOMES, 'NONE']);
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;
export const UPSTREAM_RESULTS = new Set(['ok', 'timeout', 'connection_error', 'offline', 'refused', 'body_too_large']);
export const CROSS_CREDENTIAL_RESULTS = new Set(['304', '200', 'error']);
const SNAPSHOT_OUTCOMES = new Set(['ok', 'failed', 'skipped', 'corrupt', 'in_progress']);
/** x-ratelimit-resource values GitHub documents; anything else is "other". */
export const RATE_LIMIT_RESOURCES = new Set([
  'core',
  'search',
  'code_search',
  'graphql',
  'integration_manifest',
  'source_import',
  'code_scanning_upload',
  'code_scanning_autofix',
  'actions_runner_registration',
  'scim',
  'dependency_snapshots',
  'dependency_sbom',
  'audit_log',
  'audit_log_streaming',
]);
/** Most distinct values a free-form name label (breaker, backend, store, operation) may take. */
export const MAX_NAMES = 16;
/** Cached label children are dropped past this many (the series stay; only the shortcut goes). */
export const MAX_CHILDREN = 2048;

const STATUS_LABELS: string[] = [];
for (let status = 100; status < 600; status++) STATUS_LABELS[status] = String(status);

export function statusLabel(status: number): string {
  return STATUS_LABELS[status] ?? 'other';
}

export function statusClassLabel(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER';
}

export function snapshotOutcome(outcome: string): string {
  return SNAPSHOT_OUTCOMES.has(outcome) ? outcome : 'other';
}

/**
 * A three-level Map (a → b → c → value): finding a label child costs three lookups on the raw event
 * values, without building a key string. Emptied past MAX_CHILDREN values (only the shortcut goes).
 */
export class NestedCache<A, B, C, V> {
  private readonly root = new Map<A, Map<B, Map<C, V>>>();
  private size = 0;

  get(a: A, b: B, c: C): V | undefined {
    return this.root.get(a)?.get(b)?.get(c);
  }

  set(a: A, b: B, c: C, value: V): void {
    if (this.size >= MAX_CHILDREN) this.clear();
    let level1 = this.root.get(a);
    if (level1 === undefined) {
      level1 = new Map();
      this.root.set(a, level1);
    }
    let level2 = level1.get(b);
    if (level2 === undefined) {
      level2 = new Map();
      level1.set(b, level2);
    }
    level2.set(c, value);
    this.size++;
  }

  clear(): void {
    this.root.clear();
    this.size = 0;
  }
}
