import EventEmitter2Module from 'eventemitter2';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import type { DomainEvent } from '../../domain/events/events.js';

const { EventEmitter2 } = EventEmitter2Module;

export type DomainEventListener = (event: DomainEvent) => void;

/**
 * Delivers domain events by name. Listeners subscribe to a name or a wildcard ("resource.*").
 * A listener that throws is reported through `onListenerError`; it never breaks the request that emitted.
 */
export class EventEmitter2Bus implements EventBusPort {
  private readonly emitter = new EventEmitter2({ wildcard: true, delimiter: '.', maxListeners: 50 });

  constructor(private readonly onListenerError: (error: unknown, event: DomainEvent) => void = () => undefined) {}

  emit(event: DomainEvent): void {
    try {
      this.emitter.emit(event.name, event);
    } catch (error) {
      this.onListenerError(error, event);
    }
  }

  on(name: string, listener: DomainEventListener): () => void {
    this.emitter.on(name, listener);
    return () => {
      this.emitter.off(name, listener);
    };
  }

  /** Every event, whatever its name. */
  onAny(listener: DomainEventListener): () => void {
    const wrapped = (_name: string | string[], event: DomainEvent) => listener(event);
    this.emitter.onAny(wrapped);
    return () => {
      this.emitter.offAny(wrapped);
    };
  }

  removeAllListeners(): void {
    this.emitter.removeAllListeners();
  }
}
