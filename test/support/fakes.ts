import { Readable } from 'node:stream';
import type { UpstreamPort, UpstreamRequest, BufferedResponse, StreamedResponse } from '../../src/domain/ports/upstream.port.js';
import type { EventBusPort } from '../../src/domain/ports/event-bus.port.js';
import type { ClockPort } from '../../src/domain/ports/clock.port.js';
import type { KeyHasherPort } from '../../src/domain/ports/key-hasher.port.js';
import type { DomainEvent } from '../../src/domain/events/events.js';
import type { ResourceKeyParts } from '../../src/domain/model.js';

export class FakeClock implements ClockPort {
  constructor(public time = 1_700_000_000_000) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
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

export function json(status: number, body: unknown, headers: Record<string, string> = {}): BufferedResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-ratelimit-remaining': '4999', date: new Date().toUTCString(), ...headers },
    body: status === 304 ? new Uint8Array(0) : enc(body),
  };
}
