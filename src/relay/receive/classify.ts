// Which lane a message travels in: the tag header if present (an unknown lane there is refused so
// that a misconfigured generator notices at once), else the first matching rule, else the default.
import type { RelayConfig } from '../../config/types.ts';
import { domainOf } from '../spool/spool.ts';
import { smtpError } from './reply.ts';

export interface Origin {
  sender: string;
  user?: string;
  /** "HOST:PORT" of the listener that received the message. */
  listener?: string;
}

export function classify(config: RelayConfig, tag: string | undefined, origin: Origin): string {
  const lanes = config.lanes;
  if (tag !== undefined) {
    const name = tag.trim().toLowerCase();
    if (lanes.some((lane) => lane.name === name)) return name;
    throw smtpError(550, '5.7.0', `Unknown lane ${JSON.stringify(tag.trim())} in ${config.classify.header}; valid lanes: ${lanes.map((l) => l.name).join(', ')}`);
  }
  const sender = origin.sender.toLowerCase();
  const senderDomain = sender.includes('@') ? domainOf(sender) : '';
  for (const rule of config.classify.rules) {
    if (rule.user !== undefined && rule.user !== origin.user) continue;
    if (rule.sender !== undefined && rule.sender !== sender) continue;
    if (rule.senderDomain !== undefined && rule.senderDomain !== senderDomain) continue;
    if (rule.listener !== undefined && rule.listener !== origin.listener) continue;
    return rule.lane;
  }
  return config.classify.default;
}
