// The lanes' scheduler (the scheduled queues: time-ordered, in the spool). Each lane claims its
// due recipients from the spool in bounded batches (at most `window` in flight per lane, so a
// million queued messages never become a million objects), groups them into jobs per message and
// domain, screens them against the suppression list and hands them to the dispatcher, whose ready
// queues are priority-ordered per egress path. Lanes never share a scheduled queue: a
// transactional message is claimed by its own lane whatever bulk has waiting.
// May touch: the spool (claim, release at stop), the dispatcher's submit, the outcomes' screen.
import type { LaneConfig, RelayConfig } from '../../config/types.ts';
import type { Dispatcher } from '../deliver/dispatcher.ts';
import type { Job } from '../deliver/job.ts';
import type { EventLog } from '../log.ts';
import type { ClaimedRecipient, Spool } from '../spool/spool.ts';
import type { LaneSignals } from './lane-signals.ts';
import type { Outcomes } from './outcomes.ts';

interface LaneState {
  lane: LaneConfig;
  window: number;
  inFlight: number;
  refilling: boolean;
  timer?: NodeJS.Timeout;
}

/** Spool writes waiting for the disk above which lanes stop claiming more work for a moment. */
const WRITE_BACKLOG = 4_000;

/** The longest a lane sleeps without looking for due work (deferred mail coming due). */
const MAX_SLEEP_MS = 1000;

export interface SchedulerParts { config: RelayConfig; spool: Spool; log: EventLog; signals: LaneSignals; dispatcher: Dispatcher; outcomes: Outcomes }

export class Scheduler {
  private readonly lanes = new Map<string, LaneState>();
  private readonly spool: Spool;
  private readonly log: EventLog;
  private readonly dispatcher: Dispatcher;
  private readonly outcomes: Outcomes;
  private stopping = false;

  constructor(parts: SchedulerParts) {
    this.spool = parts.spool;
    this.log = parts.log;
    this.dispatcher = parts.dispatcher;
    this.outcomes = parts.outcomes;
    for (const lane of parts.config.lanes) {
      this.lanes.set(lane.name, { lane, window: Math.max(200, lane.concurrency * 20), inFlight: 0, refilling: false });
    }
    parts.signals.on('committed', (lane) => this.wake(lane));
    parts.signals.on('settled', (lane, n) => this.settled(lane, n));
  }

  start(): void {
    for (const state of this.lanes.values()) void this.refill(state);
  }

  /** New mail for a lane: look for due work now rather than at the next timer. */
  wake(lane: string): void {
    const state = this.lanes.get(lane);
    if (state) void this.refill(state);
  }

  wakeAll(): void {
    for (const state of this.lanes.values()) void this.refill(state);
  }

  private settled(lane: string, n: number): void {
    const state = this.lanes.get(lane);
    if (!state) return;
    state.inFlight -= n;
    if (state.inFlight < state.window / 2) void this.refill(state);
  }

  private async refill(state: LaneState): Promise<void> {
    if (this.stopping || state.refilling || state.inFlight >= state.window / 2) return;
    state.refilling = true;
    clearTimeout(state.timer);
    // pace claiming by what the disk and the log can absorb (bounded memory in bursts)
    await this.spool.commits.whenBelow(WRITE_BACKLOG);
    await this.log.whenWritable();
    if (this.stopping) { // stopped while waiting: claim nothing (the spool may be closing)
      state.refilling = false;
      return;
    }
    const want = state.window - state.inFlight;
    let claimed: ClaimedRecipient[] = [];
    try {
      claimed = await this.spool.claim(state.lane.name, Date.now(), want);
    } catch (err) {
      this.log.emit('spool-error', { lane: state.lane.name, error: (err as Error).message });
    }
    state.refilling = false;
    if (this.stopping) {
      if (claimed.length) void this.spool.release(state.lane.name, claimed).catch(() => {}); // claimed rows are recovered at the next start anyway
      return;
    }
    state.inFlight += claimed.length;
    for (const job of this.jobs(state.lane, claimed)) {
      const rest = this.outcomes.screen(job);
      if (rest.recipients.length) this.dispatcher.submit(rest);
    }
    if (claimed.length === want) return; // more is due: outcomes call refill again as they free the window
    const due = this.spool.nextDue(state.lane.name);
    const sleep = due === undefined ? MAX_SLEEP_MS : Math.min(MAX_SLEEP_MS, Math.max(10, due - Date.now()));
    state.timer = setTimeout(() => void this.refill(state), sleep);
  }

  /** Recipients of one message at one domain travel together in one SMTP transaction. */
  private jobs(lane: LaneConfig, claimed: ClaimedRecipient[]): Job[] {
    const jobs = new Map<string, Job>();
    for (const r of claimed) {
      const key = `${r.messageId} ${r.domain}`;
      const job = jobs.get(key);
      if (job) job.recipients.push(r);
      else jobs.set(key, { lane, messageId: r.messageId, domain: r.domain, recipients: [r] });
    }
    return [...jobs.values()];
  }

  stop(): void {
    this.stopping = true;
    for (const state of this.lanes.values()) clearTimeout(state.timer);
  }
}
