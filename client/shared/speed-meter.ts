// Upload speed over a sliding window, so the speed and time left follow the current rate
// rather than the average since the start (which lies after a pause or a slow start).

const WINDOW_MS = 5000;

export class SpeedMeter {
  private samples: { at: number; bytes: number }[] = [];

  constructor(private readonly now: () => number = () => Date.now()) {}

  /** Records how many bytes are done in total at this moment. */
  record(bytesDone: number): void {
    const at = this.now();
    this.samples.push({ at, bytes: bytesDone });
    while (this.samples.length > 2 && at - this.samples[0]!.at > WINDOW_MS) this.samples.shift();
  }

  /** Forgets the history, e.g. after a pause, so the idle time does not count as slow. */
  reset(): void {
    this.samples = [];
  }

  /** Bytes per second, or NaN while fewer than two samples span some time. */
  bytesPerSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at === first.at) return Number.NaN;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }

  /** Seconds left at the current speed, or NaN when unknown. */
  secondsLeft(bytesDone: number, bytesTotal: number): number {
    const speed = this.bytesPerSecond();
    if (!(speed > 0)) return Number.NaN;
    return (bytesTotal - bytesDone) / speed;
  }
}
