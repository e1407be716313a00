/** CachePort decorator that times every operation per backend (`cache.operation` events). */
import { performance } from 'node:perf_hooks';
import type { CachePort } from '../../domain/ports/cache.port.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import type { CachedEntry, StoredRepresentation } from '../../domain/model.js';
import { EventName, type CacheOperationEvent } from '../../domain/events/events.js';

/**
 * Wraps a CachePort and announces the latency of every operation per backend (the extra time Redis
 * adds), so the use case never knows it is being timed.
 */
export class InstrumentedCache implements CachePort {
  constructor(
    private readonly inner: CachePort,
    private readonly events: EventBusPort,
  ) {}

  get backend(): string {
    return this.inner.backend;
  }

  async lookup(key: string, sealKey?: Uint8Array, resourceKey?: string): Promise<CachedEntry | undefined> {
    const started = performance.now();
    const backend = this.inner.backend;
    try {
      const entry = await this.inner.lookup(key, sealKey, resourceKey);
      this.emit(backend, 'lookup', started, true, entry !== undefined);
      return entry;
    } catch (error) {
      this.emit(backend, 'lookup', started, false);
      throw error;
    }
  }

  async store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array, resourceKey?: string): Promise<void> {
    const started = performance.now();
    const backend = this.inner.backend;
    try {
      await this.inner.store(key, entry, ttlSeconds, sealKey, resourceKey);
      this.emit(backend, 'store', started, true);
    } catch (error) {
      this.emit(backend, 'store', started, false);
      throw error;
    }
  }

  async forget(key: string, resourceKey?: string): Promise<void> {
    const started = performance.now();
    const backend = this.inner.backend;
    try {
      await this.inner.forget(key, resourceKey);
      this.emit(backend, 'forget', started, true);
    } catch (error) {
      this.emit(backend, 'forget', started, false);
      throw error;
    }
  }

  async representations(resourceKey: string, limit: number): Promise<readonly StoredRepresentation[]> {
    const started = performance.now();
    const backend = this.inner.backend;
    try {
      const found = await this.inner.representations(resourceKey, limit);
      this.emit(backend, 'representations', started, true, found.length > 0);
      return found;
    } catch (error) {
      this.emit(backend, 'representations', started, false);
      throw error;
    }
  }

  private emit(backend: string, operation: 'lookup' | 'store' | 'forget' | 'representations', started: number, ok: boolean, found?: boolean): void {
    const event: CacheOperationEvent = { name: EventName.cacheOperation, backend, operation, durationMs: performance.now() - started, ok };
    // set, not spread in: no throwaway object per operation
    if (found !== undefined) event.found = found;
    this.events.emit(event);
  }
}
