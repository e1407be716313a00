import { Readable } from 'node:stream';
import type { UpstreamPort, UpstreamRequest, BufferedResponse, StreamedResponse } from '../../src/domain/ports/upstream.port.js';
import type { EventBusPort } from '../../src/domain/ports/event-bus.port.js';
import type { ClockPort } from '../../src/domain/ports/clock.port.js';
import type { KeyHasherPort } from '../../src/domain/ports/key-hasher.port.js';
import type { DomainEvent } from '../../src/domain/events/events.js';
import type { ResourceKeyParts } from '../../src/domain/model.js';
import type { Resolution, ServedResolution } from '../../src/domain/resolution.js';

/**
 * A clock that moves only when told. sleep() and every() wait on it: advance(ms) moves time and runs
 * what fell due (in time order); run(ms) does the same in steps, letting awaiting code go on between.
 */
export class FakeClock implements ClockPort {
  private timers: Array<{ at: number; fire: () => void; everyMs?: number; cancelled?: boolean }> = [];
  constructor(public time = 1_700_000_000_000) {}
  now(): number {
    return this.time;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timers.push({ at: this.time + Math.max(0, ms), fire: resolve });
    });
  }
  every(ms: number, task: () => void): () => void {
    const timer = { at: this.time + Math.max(1, ms), fire: task, everyMs: Math.max(1, ms), cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
  /** Timers waiting (sleeps not yet resolved, repeating tasks not cancelled). */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.time = Math.max(this.time, due.at);
      if (due.everyMs !== undefined) due.at += due.everyMs;
      else this.timers.splice(this.timers.indexOf(due), 1);
      due.fire();
    }
    this.time = until;
  }
  /** Advances `ms` in steps of `stepMs`, letting promises settle after each step. */
  async run(ms: number, stepMs = 1): Promise<void> {
    for (let done = 0; done < ms; done += stepMs) {
      this.advance(Math.min(stepMs, ms - done));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

export class RecordingBus implements EventBusPort {
  readonly events: DomainEvent[] = [];
  emit(event: DomainEvent): void {
    this.events.push(event);
  }
  named(name: string): DomainEvent[] {
    return this.events.filter((e) => e.name === name);
  }
}

/** Keys in clear: fine for unit tests, where the hasher is not under test. */
export class PlainKeyHasher implements KeyHasherPort {
  keyFor(p: ResourceKeyParts): string {
    return [this.partitionOf(p.credential), p.method, p.path, p.query, p.accept, p.apiVersion].join('|');
  }
  resourceKeyFor(p: Omit<ResourceKeyParts, 'credential'>): string {
    return ['resource', p.method, p.path, p.query, p.accept, p.apiVersion].join('|');
  }
  partitionOf(credential: string | undefined): string {
    return credential ?? 'anon';
  }
  sealKeyFor(credential: string | undefined): Uint8Array {
    return new TextEncoder().encode((credential ?? 'anon').padEnd(32, '.').slice(0, 32));
  }
}

export type Responder = (request: UpstreamRequest) => BufferedResponse | Error | Promise<BufferedResponse | Error>;

/** An UpstreamPort whose answers a test scripts; records every request. */
export class ScriptedUpstream implements UpstreamPort {
  readonly requests: UpstreamRequest[] = [];
  constructor(public respond: Responder) {}

  async fetch(request: UpstreamRequest): Promise<BufferedResponse> {
    this.requests.push(request);
    const answer = await this.respond(request);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  async forward(request: UpstreamRequest): Promise<StreamedResponse> {
    const answer = await this.fetch(request);
    const body = answer.body;
    return {
      status: answer.status,
      headers: answer.headers,
      body: Readable.from([body]),
    };
  }
}

export const enc = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
export const dec = (value: Uint8Array): string => new TextDecoder().decode(value);

/** The answer a resolution relays; throws (failing the test) when it is the mirror's own failure instead. */
export function answerOf(resolution: Resolution): ServedResolution {
  if (resolution.error !== undefined) throw new Error(`expected an answer to relay, got the failure ${resolution.error.code} (${resolution.outcome})`);
  return resolution;
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): BufferedResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-ratelimit-remaining': '4999', date: new Date().toUTCString(), ...headers },
    body: status === 304 ? new Uint8Array(0) : enc(body),
  };
}
