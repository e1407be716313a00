/**
 * The lowest value recorded in the last `windowMs`, kept in `slots` fixed time slots (a ring): recording
 * is O(1) and allocation-free, reading is O(slots). The window is accurate to one slot
 * (windowMs / slots): a value is forgotten between windowMs − slot and windowMs after it was recorded.
 */
export class SlidingMinimum {
  private readonly slotMs: number;
  private readonly epochs: number[];
  private readonly minima: number[];

  constructor(
    windowMs: number,
    private readonly slots: number,
    private readonly now: () => number,
  ) {
    if (!(windowMs > 0) || !Number.isInteger(slots) || slots < 1) throw new RangeError('SlidingMinimum: windowMs > 0 and slots ≥ 1');
    this.slotMs = windowMs / slots;
    this.epochs = new Array<number>(slots).fill(-Infinity);
    this.minima = new Array<number>(slots).fill(Infinity);
  }

  record(value: number): void {
    const epoch = Math.floor(this.now() / this.slotMs);
    const i = epoch % this.slots;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.minima[i] = value;
    } else if (value < (this.minima[i] as number)) {
      this.minima[i] = value;
    }
  }

  /** The lowest value of the window; undefined when nothing was recorded in it. */
  minimum(): number | undefined {
    const current = Math.floor(this.now() / this.slotMs);
    let min = Infinity;
    for (let i = 0; i < this.slots; i++) {
      if (current - (this.epochs[i] as number) < this.slots && (this.minima[i] as number) < min) min = this.minima[i] as number;
    }
    return min === Infinity ? undefined : min;
  }
}
