/**
 * Visits every item once per period, a slice per tick, so a check of many items never comes as a burst: with 1,000
 * items, a 10 s period and a 500 ms tick, each tick visits 50.
 */
export class SpreadRound<T> {
  private round: T[] = [];
  private next = 0;

  constructor(private readonly periodMs: number, private readonly tickMs: number) {}

  /** The items to visit this tick; a new round starts from `items()` when the last one is done. */
  slice(items: () => Iterable<T>): T[] {
    if (this.next >= this.round.length) {
      this.round = [...items()];
      this.next = 0;
    }
    const ticksPerRound = Math.max(1, Math.floor(this.periodMs / this.tickMs));
    const count = Math.ceil(this.round.length / ticksPerRound);
    const slice = this.round.slice(this.next, this.next + count);
    this.next += count;
    return slice;
  }
}
