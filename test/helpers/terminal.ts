/** An interactive shell on a pseudo-terminal (Bun.spawn's `terminal`), for testing completion as a user meets it. */

export class ShellSession {
  private output = "";
  private readonly proc: Bun.Subprocess;

  constructor(argv: string[], env: Record<string, string | undefined>) {
    const decoder = new TextDecoder();
    this.proc = Bun.spawn(argv, {
      env: { ...process.env, ...env, TERM: "dumb", PS1: "$ ", PROMPT: "$ " },
      terminal: { cols: 1000, rows: 50, data: (_terminal, data) => void (this.output += decoder.decode(data, { stream: true })) },
    });
  }

  /** Everything the terminal showed so far. */
  get shown(): string {
    return this.output;
  }

  type(text: string): void {
    this.proc.terminal!.write(text);
  }

  /**
   * Waits until text shown after `from` matches; fails with what was shown when the shell never
   * prints it (the limit only bounds a hung shell: a match ends the wait at once).
   */
  async waitFor(pattern: RegExp, from: number, limitMs = 60_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const match = pattern.exec(this.output.slice(from));
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`the shell never showed ${pattern}; it showed: ${JSON.stringify(this.output.slice(from))}`);
      await Bun.sleep(20);
    }
  }

  /** Runs shell commands and waits until they are done. */
  async run(commands: string): Promise<void> {
    const from = this.output.length;
    // The shell echoes "$((6*7))" as typed; "done-42" only appears once the commands have run.
    this.type(`${commands}\necho done-$((6*7))\n`);
    await this.waitFor(/done-42/, from);
  }

  /**
   * Types a line and TAB, then the key `showLine` is bound to (it prints the line as <<LINE>>),
   * and returns the line as completion left it. The line is cleared afterwards.
   */
  async complete(line: string): Promise<string> {
    const from = this.output.length;
    this.type(`${line}\t\x18\x0c`);
    const shown = await this.waitFor(/<<(.*)>>/, from);
    this.type("\x15");
    return shown[1]!;
  }

  async close(): Promise<void> {
    this.type("\x15exit\n");
    const timer = setTimeout(() => this.proc.kill(), 10_000);
    await this.proc.exited;
    clearTimeout(timer);
  }
}
