// A node's graceful drain (`mailops relay drain`, POST /api/v1/drain, or SIGTERM with
// `relay start --drain-on-sigterm`): the node stops taking mail (SMTP: new sessions get 421 and
// the listeners close, so the load balancer's health check takes the node out; HTTP: /health
// answers 503 and injection is refused with 503), keeps delivering until its spool is empty or the
// drain's time is up, then stops the way SIGTERM does and the process exits 0. Whatever is still
// queued then stays in the spool: it is handed back to the next start on that spool directory,
// on this host or any other.
// May touch: nothing itself; it closes the intake and stops the node through what it is given.
import type { EventLog } from './log.ts';
import type { Spool } from './spool/spool.ts';

/** How often the drain looks whether the spool is empty. */
const CHECK_EVERY_MS = 100;

export interface DrainStatus {
  draining: boolean;
  /** Messages not finished yet (delivered, failed or expired). */
  queued: number;
  /** When the drain gives up and stops the node with what remains (ISO time). */
  deadline?: string;
}

export interface DrainParts {
  spool: Spool;
  log: EventLog;
  /** Stops taking mail over SMTP; resolves once the listeners are closed. */
  closeIntake: () => Promise<void>;
  /** The node's orderly stop. */
  stop: () => Promise<void>;
}

export class Drain {
  private readonly parts: DrainParts;
  private deadline?: number;
  private running?: Promise<void>;

  constructor(parts: DrainParts) {
    this.parts = parts;
  }

  get active(): boolean {
    return this.running !== undefined;
  }

  status(): DrainStatus {
    return {
      draining: this.active, queued: this.parts.spool.messages,
      deadline: this.deadline === undefined ? undefined : new Date(this.deadline).toISOString(),
    };
  }

  /** Starts the drain (a second call changes nothing and reports the first one's state). */
  start(timeoutMs: number): DrainStatus {
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new Error(`drain timeout: expected a duration of 0 or more, got ${timeoutMs}`);
    if (this.running) return this.status();
    const { spool, log } = this.parts;
    const started = Date.now();
    const deadline = (this.deadline = started + timeoutMs);
    const queuedAtStart = spool.messages;
    log.emit('drain-started', { queued: queuedAtStart, timeoutMs });
    this.running = (async () => {
      await this.parts.closeIntake();
      while (spool.messages > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, CHECK_EVERY_MS));
      log.emit('drain-ended', { queuedAtStart, left: spool.messages, timedOut: spool.messages > 0, drainMs: Date.now() - started });
      await this.parts.stop();
    })().catch((err: Error) => log.emit('drain-error', { error: err.message }));
    return this.status();
  }
}
