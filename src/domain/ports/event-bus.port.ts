import type { DomainEvent } from '../events/events.js';

/** Where the domain announces what happened. The eventemitter2 adapter delivers; metrics and logs listen. */
export interface EventBusPort {
  emit(event: DomainEvent): void;
}
