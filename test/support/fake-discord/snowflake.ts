const DISCORD_EPOCH_MS = 1_420_070_400_000n;
const WORKER_BITS = 1n << 17n;

/** Issues realistic, strictly increasing snowflake ids (timestamp << 22 | worker | increment). */
export class SnowflakeFactory {
  private lastMs = 0n;
  private increment = 0n;

  next(): string {
    let nowMs = BigInt(Date.now());
    if (nowMs <= this.lastMs) {
      nowMs = this.lastMs;
      this.increment += 1n;
      // 12 bits of increment per millisecond; borrow the next millisecond when they run out.
      if (this.increment > 0xfffn) {
        nowMs += 1n;
        this.increment = 0n;
      }
    } else {
      this.increment = 0n;
    }
    this.lastMs = nowMs;
    return (((nowMs - DISCORD_EPOCH_MS) << 22n) | WORKER_BITS | this.increment).toString();
  }
}

/** The creation time encoded in a snowflake, in ms since the Unix epoch. */
export function timestampOf(snowflake: string): number {
  return Number((BigInt(snowflake) >> 22n) + DISCORD_EPOCH_MS);
}
