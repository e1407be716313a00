/**
 * ClockPort over the runtime's clock and timers. A sleep is awaited work and keeps the process alive
 * like any other; a repeating task (lease renewal) does not.
 */
import type { ClockPort } from '../../domain/ports/clock.port.js';

export const systemClock: ClockPort = {
  now: () => Date.now(),
  sleep: (ms) =>
    new Promise<void>((resolve) => {
      setTimeout(resolve, ms);
    }),
  every: (ms, task) => {
    const timer = setInterval(task, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};
