/**
 * Visits every item once per period, a slice per tick, so a check of many items never comes as a burst: with 1,000
 * items, a 10 s period and a 5 s tick, each tick visits 500. A tick allocates nothing; a round copies the items once.
 */
export class SpreadRound<T> {
  private round: T[] = [];
  private next = 0;

  constructor(private readonly periodMs: number, private readonly tickMs: number) {}

  /** Calls `visit` with this tick's items; a new round starts from `items()` when the last one is done. */
  visit(items: () => Iterable<T>, visit: (item: T) => void): void {
    if (this.next >= this.round.length) {
      this.round = [...items()];
      this.next = 0;
    }
    const ticksPerRound = Math.max(1, Math.floor(this.periodMs / this.tickMs));
    const end = Math.min(this.round.length, this.next + Math.ceil(this.round.length / ticksPerRound));
    while (this.next < end) visit(this.round[this.next++]!);
  }
}
