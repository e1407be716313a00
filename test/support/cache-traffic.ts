/**
 * Helpers for cache adapter tests: entries, an event recorder, and concurrent traffic loops that
 * count every rejected operation and every wrong body.
 */
import type { DomainEvent } from '../../src/domain/events/events.js';
import type { CachedEntry } from '../../src/domain/model.js';
import type { CachePort } from '../../src/domain/ports/cache.port.js';
import { EventEmitter2Bus } from '../../src/adapters/events/eventemitter2-bus.adapter.js';
import { subscribeCacheLogs } from '../../src/adapters/logging/cache-log.subscriber.js';

export function makeEntry(body: string | Uint8Array, overrides: Partial<CachedEntry> = {}): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', etag: '"abc"' },
    body: typeof body === 'string' ? Buffer.from(body) : body,
    etag: '"abc"',
    storedAt: 1_700_000_000_000,
    validatedAt: 1_700_000_000_500,
    ...overrides,
  };
}

/** The app's bus (listeners by name), keeping every event for assertions. */
export class RecordingBus extends EventEmitter2Bus {
  readonly events: DomainEvent[] = [];
  override emit(event: DomainEvent): void {
    this.events.push(event);
    super.emit(event);
  }
  named<N extends DomainEvent['name']>(name: N): Array<Extract<DomainEvent, { name: N }>> {
    return this.events.filter((e) => e.name === name) as Array<Extract<DomainEvent, { name: N }>>;
  }
}

export interface LogLine {
  level: 'info' | 'warn';
  obj: object;
  msg: string;
}

export class RecordingLogger {
  readonly lines: LogLine[] = [];
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  text(): string {
    return this.lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`).join('\n');
  }
}

/** A RecordingBus whose events the app's cache log subscriber writes into `logger`. */
export function loggingBus(logger: RecordingLogger): RecordingBus {
  const bus = new RecordingBus();
  subscribeCacheLogs(bus, logger);
  return bus;
}

export interface TrafficReport {
  operations: number;
  failed: number;
  wrongBodies: number;
  hits: number;
  errors: string[];
  /** Slowest operation, in ms. */
  maxLatencyMs: number;
}

/**
 * `loops` concurrent clients, each alternating a store and a lookup of its own keys, until `stop()`
 * is true. The body of every entry names its key, so a lookup can check it got the right one.
 */
export async function runTraffic(
  cache: CachePort,
  options: { loops: number; stop: () => boolean; keyPrefix?: string; keysPerLoop?: number; pauseMs?: number },
): Promise<TrafficReport> {
  const report: TrafficReport = { operations: 0, failed: 0, wrongBodies: 0, hits: 0, errors: [], maxLatencyMs: 0 };
  const keysPerLoop = options.keysPerLoop ?? 10;
  const pauseMs = options.pauseMs ?? 2;
  await Promise.all(
    Array.from({ length: options.loops }, async (_, loop) => {
      for (let i = 0; !options.stop(); i += 1) {
        const key = `${options.keyPrefix ?? 'traffic'}:${loop}:${Math.floor(i / 2) % keysPerLoop}`;
        const started = performance.now();
        try {
          if (i % 2 === 0) {
            await cache.store(key, makeEntry(`${key}|${i}|${'x'.repeat(300)}`), 60);
          } else {
            const entry = await cache.lookup(key);
            if (entry !== undefined) {
              report.hits += 1;
              if (!Buffer.from(entry.body).toString().startsWith(`${key}|`)) report.wrongBodies += 1;
            }
          }
        } catch (err) {
          report.failed += 1;
          if (report.errors.length < 5) report.errors.push(err instanceof Error ? err.message : String(err));
        }
        report.maxLatencyMs = Math.max(report.maxLatencyMs, performance.now() - started);
        report.operations += 1;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }),
  );
  return report;
}

/** Run traffic while `body` runs; the loops stop when it returns or throws. */
export async function during(
  cache: CachePort,
  options: { loops: number; keyPrefix?: string; keysPerLoop?: number; pauseMs?: number },
  body: () => Promise<void>,
): Promise<TrafficReport> {
  let stop = false;
  const traffic = runTraffic(cache, { ...options, stop: () => stop });
  try {
    await body();
  } finally {
    stop = true;
  }
  return traffic;
}
