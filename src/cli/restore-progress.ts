/**
 * What `pagecast restore` shows on stderr while it works: on a terminal, one
 * line redrawn in place (bar, bytes, rate, ETA, files) at most ten times a
 * second; otherwise (logs, CI) sparse plain lines, one per tenth of the
 * bytes at most every few seconds. Both say when SQLite's check starts,
 * since it runs for a while without reporting anything.
 */
import type { RestoreProgress } from "../replicator/restore.js";

/** Options of {@link RestoreProgressView}. */
export interface RestoreProgressViewOptions {
  write(text: string): void;
  /** Redraw one line in place (a terminal) or print sparse lines. */
  tty: boolean;
  /** Milliseconds clock (tests). */
  now?: () => number;
  /** The pragma announced when the `integrity_check` phase starts (default `quick_check`). */
  check?: "quick_check" | "integrity_check";
}

/** Least time between terminal redraws. */
const TTY_INTERVAL_MS = 100;
/** Least time between plain lines (except the first and the last). */
const LINE_INTERVAL_MS = 3000;
/** Rate over about this much recent time. */
const RATE_WINDOW_MS = 5000;
const BAR_WIDTH = 24;

/** Megabytes with one decimal (decimal units, like the rate). */
export function formatMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A duration as `42s`, `3m05s` or `1h02m`. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Renders restore progress for a terminal or a log. Feed it every report, then `end()`. */
export class RestoreProgressView {
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #now: () => number;
  readonly #check: string;
  /** Recent (time, bytes) samples for the rate. */
  readonly #samples: { t: number; bytes: number }[] = [];
  #started: number | undefined;
  #lastDraw = Number.NEGATIVE_INFINITY;
  #lastTenth = -1;
  #lastLine = Number.NEGATIVE_INFINITY;
  #lineOpen = false;
  #applyDone = false;
  #phase: RestoreProgress["phase"] | undefined;

  constructor(options: RestoreProgressViewOptions) {
    this.#write = options.write;
    this.#tty = options.tty;
    this.#now = options.now ?? Date.now;
    this.#check = options.check ?? "quick_check";
  }

  /** One report from `restore`'s `onProgress`. */
  update(p: RestoreProgress): void {
    const t = this.#now();
    this.#started ??= t;
    if (p.phase !== "apply") {
      if (p.phase !== this.#phase) this.#enterPhase(p, t);
      this.#phase = p.phase;
      return;
    }
    this.#phase = "apply";
    this.#sample(t, p.bytesDone);
    const complete = p.filesDone === p.filesTotal && p.bytesDone >= p.bytesTotal;
    if (this.#tty) {
      if (complete || t - this.#lastDraw >= TTY_INTERVAL_MS) {
        this.#lastDraw = t;
        this.#write(`\r${this.#line(p, t)}\x1b[K`);
        this.#lineOpen = true;
      }
    } else {
      const tenth = p.bytesTotal > 0 ? Math.floor((10 * p.bytesDone) / p.bytesTotal) : 10;
      const first = this.#lastTenth < 0;
      if (
        first ||
        (complete && !this.#applyDone) ||
        (tenth > this.#lastTenth && t - this.#lastLine >= LINE_INTERVAL_MS)
      ) {
        this.#lastTenth = tenth;
        this.#lastLine = t;
        this.#write(
          first
            ? `restore: ${p.filesTotal} file${p.filesTotal === 1 ? "" : "s"}, ${formatMB(p.bytesTotal)} to download\n`
            : `restore: ${this.#line(p, t)}\n`,
        );
      }
    }
    if (complete) this.#applyDone = true;
  }

  /** Ends the terminal line, if one is open. */
  end(): void {
    if (this.#lineOpen) this.#write("\n");
    this.#lineOpen = false;
  }

  #enterPhase(p: RestoreProgress, t: number): void {
    this.end();
    const took = this.#started === undefined ? 0 : (t - this.#started) / 1000;
    const rate = took > 0 ? p.bytesDone / 1e6 / took : 0;
    const applied = `${formatMB(p.bytesDone)} applied in ${took.toFixed(1)} s (${rate.toFixed(1)} MB/s)`;
    if (p.phase === "checksum") {
      this.#write(`restore: ${applied}; checksumming the database file...\n`);
    } else {
      this.#write(
        `restore: ${this.#phase === "checksum" ? "checksum verified" : applied}; running PRAGMA ${this.#check}...\n`,
      );
    }
  }

  #sample(t: number, bytes: number): void {
    const s = this.#samples;
    s.push({ t, bytes });
    while (s.length > 2 && t - s[1]!.t >= RATE_WINDOW_MS) s.shift();
  }

  /** Bytes per second over the recent window (over everything early on). */
  #rate(t: number): number {
    const s = this.#samples;
    const first = s[0]!;
    const last = s[s.length - 1]!;
    const dt = (t - first.t) / 1000;
    return dt > 0.2 ? (last.bytes - first.bytes) / dt : 0;
  }

  #line(p: RestoreProgress, t: number): string {
    const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 1;
    const pct = `${(frac * 100).toFixed(0).padStart(3)}%`;
    const rate = this.#rate(t);
    const left = p.bytesTotal - p.bytesDone;
    const eta = left <= 0 ? "" : rate > 0 ? `  ETA ${formatEta(left / rate)}` : "  ETA --";
    const speed = rate > 0 ? `  ${(rate / 1e6).toFixed(1)} MB/s` : "";
    const files = `  file${p.filesTotal === 1 ? "" : "s"} ${p.filesDone}/${p.filesTotal}`;
    const sizes = `${(p.bytesDone / 1e6).toFixed(1)}/${formatMB(p.bytesTotal)}`;
    if (!this.#tty) return `${pct.trim()} of ${sizes}${speed}${eta}${files}`;
    const filled = Math.round(frac * BAR_WIDTH);
    return `[${"#".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}] ${pct}  ${sizes}${speed}${eta}${files}`;
  }
}
