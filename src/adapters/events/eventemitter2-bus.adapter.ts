/** The event bus over eventemitter2: delivers domain events by name to typed listeners. */
import EventEmitter2Module from 'eventemitter2';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import type { DomainEvent, DomainEventMap, DomainEventName } from '../../domain/events/events.js';

const { EventEmitter2 } = EventEmitter2Module;

export type DomainEventListener<N extends DomainEventName = DomainEventName> = (event: DomainEventMap[N]) => void;

/**
 * Delivers domain events by exact name (no wildcards: a name lookup per emit, nothing to search).
 * A listener that throws is reported through `onListenerError`; it never breaks the request that emitted.
 */
export class EventEmitter2Bus implements EventBusPort {
  private readonly emitter = new EventEmitter2({ wildcard: false, maxListeners: 50 });

  constructor(private readonly onListenerError: (error: unknown, event: DomainEvent) => void = () => undefined) {}

  emit(event: DomainEvent): void {
    try {
      this.emitter.emit(event.name, event);
    } catch (error) {
      this.onListenerError(error, event);
    }
  }

  /** Subscribes to one event name; returns the unsubscribe function. */
  on<N extends DomainEventName>(name: N, listener: DomainEventListener<N>): () => void {
    this.emitter.on(name, listener);
    return () => {
      this.emitter.off(name, listener);
    };
  }

  removeAllListeners(): void {
    this.emitter.removeAllListeners();
  }
}

/** What a subscriber (metrics, readiness, logs) needs of the bus: typed subscription by name. */
export type EventSubscriber = Pick<EventEmitter2Bus, 'on'>;
