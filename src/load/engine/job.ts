// One message on its way through an engine: small and short-lived (only in-flight jobs exist).
import type { Lane } from '../scenario/types.ts';
import type { Reply } from '../../util/smtp-reply.ts';

export interface Job {
  seq: number;
  lane: Lane;
  /** Intended send time (ms on the run clock). */
  intended: number;
  size: number;
  from: string;
  to: string;
  provider: string;
  writtenAt: number;
  doneAt: number;
  bytes: number;
  failure?: { phase: string; reply: Reply };
}
