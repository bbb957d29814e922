/**
 * Progress of pull and push on a terminal: one line per blob on stderr ("Copying blob 3f11…
 * 12.0 MiB / 45.2 MiB  8.1 MiB/s"), all redrawn in place at most ten times a second. Only
 * made when stderr is a terminal and --quiet was not given.
 */
import { isatty } from "node:tty";
import type { Descriptor } from "./types.ts";

const REDRAW_MS = 100;

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

interface Line {
  label: string;
  total: number;
  done: number;
  started: number;
  state: "copying" | "done" | "skipped";
}

export class Progress {
  private readonly lines: Line[] = [];
  private drawn = 0;
  private lastDraw = 0;

  /** A progress display if stderr is a terminal and not quiet, else undefined. */
  static forStderr(quiet: boolean): Progress | undefined {
    return !quiet && isatty(2) ? new Progress() : undefined;
  }

  private line(descriptor: Descriptor): Line {
    const label = descriptor.digest.slice(descriptor.digest.indexOf(":") + 1, descriptor.digest.indexOf(":") + 13);
    let line = this.lines.find((l) => l.label === label);
    if (!line) this.lines.push((line = { label, total: descriptor.size, done: 0, started: performance.now(), state: "copying" }));
    return line;
  }

  /** Passes a blob's stream through, counting its bytes. */
  track(descriptor: Descriptor, stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const line = this.line(descriptor);
    const self = this;
    return (async function* () {
      for await (const chunk of stream) {
        line.done += chunk.length;
        self.draw(false);
        yield chunk;
      }
    })();
  }

  /** A blob that did not need copying (the layer was there already). */
  skip(descriptor: Descriptor): void {
    this.line(descriptor).state = "skipped";
    this.draw(true);
  }

  done(descriptor: Descriptor): void {
    const line = this.line(descriptor);
    line.state = "done";
    line.done = Math.max(line.done, line.total);
    this.draw(true);
  }

  /** Draws the final state. */
  finish(): void {
    if (this.lines.length > 0) this.draw(true);
  }

  private draw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    for (const line of this.lines) {
      const seconds = Math.max((now - line.started) / 1000, 0.001);
      const status = line.state === "skipped" ? "already present" : `${mib(line.done)} / ${mib(line.total)}  ${mib(line.done / seconds)}/s${line.state === "done" ? "  done" : ""}`;
      text += `\r\x1b[2KCopying blob ${line.label}  ${status}\n`;
    }
    this.drawn = this.lines.length;
    process.stderr.write(text);
  }
}
