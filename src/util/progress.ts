/**
 * Progress of long transfers on a terminal (pull, push, applydiff, import-layer, diff): one
 * line per item on stderr — "Copying blob 3f11d2a8c4e1  12.0 MiB / 45.2 MiB  8.1 MiB/s" — all
 * redrawn in place at most ten times a second, and once more when an item ends. Made only
 * when stderr is a terminal and --quiet was not given, so piped runs print nothing.
 */
const REDRAW_MS = 100;

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** Bytes in the largest binary unit that keeps the number at least 1 ("850.0 KiB", "12.3 MiB"). */
function formatBytes(bytes: number): string {
  let unit = 0;
  while (bytes >= 1024 && unit < UNITS.length - 1) {
    bytes /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${bytes.toFixed(1)} ${UNITS[unit]}`;
}

/** One line: a blob, a layer or an input file. */
export class ProgressItem {
  private done = 0;
  private readonly started = performance.now();
  /** When the item ended: its rate stays as it was then. */
  private ended: number | undefined;
  private state: "running" | "done" | "skipped" = "running";

  constructor(
    private readonly display: Progress,
    /** What the line says first ("Copying blob 3f11d2a8c4e1"). */
    readonly label: string,
    /** Bytes expected, or undefined when not known (a pipe). */
    private readonly total: number | undefined,
  ) {}

  /** Counts bytes that went through. */
  add(bytes: number): void {
    this.done += bytes;
    this.display.redraw(false);
  }

  /** Passes a stream through, counting its chunks as they are taken; the item is complete when the stream ends. */
  track(stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const item = this;
    return (async function* () {
      for await (const chunk of stream) {
        item.add(chunk.length);
        yield chunk;
      }
      item.finish();
    })();
  }

  /** The item is complete. */
  finish(): void {
    if (this.state !== "running") return;
    this.state = "done";
    this.ended = performance.now();
    this.display.redraw(true);
  }

  /** The item needed no work (a layer the store had already). */
  skip(): void {
    this.state = "skipped";
    this.display.redraw(true);
  }

  /** The line as drawn now. */
  text(now: number): string {
    if (this.state === "skipped") return `${this.label}  already present`;
    const seconds = Math.max(((this.ended ?? now) - this.started) / 1000, 0.001);
    const amount = this.total === undefined ? formatBytes(this.done) : `${formatBytes(this.done)} / ${formatBytes(this.total)}`;
    return `${this.label}  ${amount}  ${formatBytes(this.done / seconds)}/s${this.state === "done" ? "  done" : ""}`;
  }
}

/** The lines of one command's transfers. */
export class Progress {
  private readonly items: ProgressItem[] = [];
  private drawn = 0;
  private lastDraw = 0;

  private constructor(private readonly write: (text: string) => void) {}

  /** A display on stderr if stderr is a terminal and not quiet, else undefined (nothing to show). */
  static forStderr(quiet: boolean): Progress | undefined {
    if (quiet) return undefined;
    // node:tty is loaded here, not imported: importing it would cost every command time at start.
    const { isatty } = require("node:tty") as typeof import("node:tty");
    return isatty(2) ? new Progress((text) => process.stderr.write(text)) : undefined;
  }

  /** Adds a line. */
  item(label: string, total?: number): ProgressItem {
    const item = new ProgressItem(this, label, total !== undefined && total >= 0 ? total : undefined);
    this.items.push(item);
    this.redraw(true);
    return item;
  }

  /** A line made once its total is known (a layer diff is told its size when it starts): a TarMeter. */
  meter(label: string): { expect(total: number | undefined): void; add(bytes: number): void; finish(): void } {
    let item: ProgressItem | undefined;
    return {
      expect: (total) => void (item ??= this.item(label, total)),
      add: (bytes) => (item ??= this.item(label)).add(bytes),
      finish: () => item?.finish(),
    };
  }

  /** Draws the final state (after the last item, or when the command fails). */
  end(): void {
    if (this.items.length > 0) this.redraw(true);
  }

  /** Redraws every line in place: now if forced, else when the last draw is old enough. */
  redraw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    for (const item of this.items) text += `\r\x1b[2K${item.text(now)}\n`;
    this.drawn = this.items.length;
    this.write(text);
  }
}
