// Progress of one file on stdout: a redrawn bar on a terminal, a plain line every few
// seconds when stdout is a pipe or a log file (no carriage returns to garble it), or
// nothing with --quiet.
import { BYTES_WIDTH, formatBytes, formatDuration, formatSpeed } from '../shared/units.ts';
import { SpeedMeter } from '../shared/speed-meter.ts';

export interface ProgressDisplay {
  update(bytesDone: number, bytesTotal: number): void;
  /** Ends the display (the bar gets its final newline) before other lines are printed. */
  end(): void;
}

interface Out {
  write(text: string): unknown;
  columns?: number;
}

export function createProgressDisplay(mode: 'tty' | 'lines' | 'quiet', name: string, out: Out): ProgressDisplay {
  if (mode === 'quiet') return { update() {}, end() {} };
  return mode === 'tty' ? new BarDisplay(name, out) : new LineDisplay(name, out);
}

abstract class MeteredDisplay implements ProgressDisplay {
  protected readonly meter = new SpeedMeter();
  private lastDrawn = 0;
  private drewComplete = false;

  constructor(
    protected readonly name: string,
    protected readonly out: Out,
    private readonly intervalMs: number,
  ) {}

  update(bytesDone: number, bytesTotal: number): void {
    this.meter.record(bytesDone);
    const complete = bytesDone >= bytesTotal;
    // tus-js-client reports the last byte twice (once sent, once the server's answer says so): drawn once.
    if (complete && this.drewComplete) return;
    const now = Date.now();
    if (now - this.lastDrawn < this.intervalMs && !complete) return;
    this.lastDrawn = now;
    this.drewComplete = complete;
    this.draw(bytesDone, bytesTotal);
  }

  abstract end(): void;
  protected abstract draw(bytesDone: number, bytesTotal: number): void;

  /** "412 MB of 1.0 GB 85 MB/s ETA 7s"; `columns`: each value padded to its widest, so a redrawn bar keeps its
   * width. */
  protected summary(bytesDone: number, bytesTotal: number, columns = false): string {
    const speed = this.meter.bytesPerSecond();
    const left = this.meter.secondsLeft(bytesDone, bytesTotal);
    const speedText = Number.isNaN(speed) ? '–' : formatSpeed(speed);
    const done = formatBytes(bytesDone);
    const eta = formatDuration(left);
    if (!columns) return `${done} of ${formatBytes(bytesTotal)}  ${speedText}  ETA ${eta}`;
    // A speed is a size and "/s"; "1h 02m" is the widest time left below 10 hours.
    return (
      `${done.padStart(BYTES_WIDTH)} of ${formatBytes(bytesTotal)}  ${speedText.padStart(BYTES_WIDTH + 2)}  ETA ` +
      `${eta.padEnd(6)}`
    );
  }
}

class BarDisplay extends MeteredDisplay {
  private drawn = false;

  constructor(name: string, out: Out) {
    super(name, out, 100);
  }

  protected draw(bytesDone: number, bytesTotal: number): void {
    const width = this.out.columns ?? 80;
    const ratio = bytesTotal > 0 ? Math.min(1, bytesDone / bytesTotal) : 1;
    const text = `${String(Math.floor(ratio * 100)).padStart(3)}%  ${this.summary(bytesDone, bytesTotal, true)}`;
    const name = this.name.length > 24 ? `${this.name.slice(0, 23)}…` : this.name;
    const barWidth = Math.max(10, width - text.length - name.length - 6);
    const filled = Math.round(ratio * barWidth);
    const line = `${name} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${text}`;
    // \r and clear-to-end-of-line redraw the bar in place.
    this.out.write(`\r${line.slice(0, width - 1)}\x1b[K`);
    this.drawn = true;
  }

  end(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

class LineDisplay extends MeteredDisplay {
  constructor(name: string, out: Out) {
    super(name, out, 2000);
  }

  protected draw(bytesDone: number, bytesTotal: number): void {
    const percent = bytesTotal > 0 ? Math.floor((bytesDone / bytesTotal) * 100) : 100;
    this.out.write(`${this.name}: ${percent}%  ${this.summary(bytesDone, bytesTotal)}\n`);
  }

  end(): void {}
}
