// The intake shared by SMTP DATA and the HTTP inject endpoint: header checks, lane
// classification, the tenant (src/logs/tenants.ts), removal of the lane and tenant tags, durable
// commit. Resolves with the queue id only once the message is on disk; every refusal is an SMTP
// reply error. A cluster node that serves only some lanes (cluster.lanes: its pool behind the load
// balancer) refuses the others with 451 4.3.2.
import type { RelayConfig } from '../../config/types.ts';
import type { EventLog } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { queueId, type Spool } from '../spool/spool.ts';
import { classify, type Origin } from './classify.ts';
import { headerLength, parseMessage, withoutFields, type HeaderField } from './message.ts';
import { smtpError } from './reply.ts';
import { prepareMessage, type Preparer } from '../sign/prepare.ts';
import type { Tenants } from '../../logs/tenants.ts';

export interface Intake {
  config: RelayConfig;
  spool: Spool;
  log: EventLog;
  metrics: Metrics;
  /** Called after each durable commit with the message's lane (wakes the lane's scheduler). */
  committed: (lane: string) => void;
  /** RFC 5322 fix-ups, Received and DKIM signing before the commit (sign/prepare.ts). */
  preparer?: Preparer;
  /** Whose a message is, for the delivery logs; absent or empty: nobody's. */
  tenants?: Tenants;
}

export interface Submission extends Origin {
  recipients: string[];
  /** A lane chosen outside the message (the HTTP API's `lane` field); checked like the tag header. */
  lane?: string;
  client: string;
  body: Buffer;
  /** For the Received field: EHLO name, TLS cipher, SMTP or HTTP. */
  helo?: string;
  tls?: { version?: string; name?: string };
  protocol?: 'SMTP' | 'HTTP';
  /** A message this node wrote itself (a DSN): it stays here whatever lanes the node serves. */
  generatedHere?: boolean;
  /** The tenant, decided outside the message (a DSN is its original's tenant's). */
  tenant?: string;
}

/** The lanes a node takes new mail for: cluster.lanes, else all (a node delivers every lane its spool holds). */
export function servedLanes(config: RelayConfig): string[] {
  return config.cluster?.lanes ?? config.lanes.map((l) => l.name);
}

export async function accept(intake: Intake, submission: Submission): Promise<{ id: string; lane: string }> {
  const { config, spool, log, metrics } = intake;
  const length = headerLength(submission.body);
  if (length > config.smtp.maxHeaderSize) {
    throw smtpError(552, '5.3.4', `Message header is larger than ${config.smtp.maxHeaderSize} bytes`);
  }
  const tagName = config.classify.header.toLowerCase();
  const isTag = (field: HeaderField) => field.name.toLowerCase() === tagName;
  const parsed = parseMessage(submission.body, length);
  const lane = classify(config, submission.lane ?? parsed.fields.find(isTag)?.value, submission);
  const served = servedLanes(config);
  if (!submission.generatedHere && !served.includes(lane)) {
    // 4xx: the message is fine, it came to the wrong pool; the client may retry through the right one
    throw smtpError(451, '4.3.2', `This node does not take ${lane} mail (it serves ${served.join(', ')}); send it through the ${lane} pool`);
  }
  const tenantName = config.log.tenantHeader.toLowerCase();
  const isTenantTag = (field: HeaderField) => field.name.toLowerCase() === tenantName;
  const tenants = intake.tenants?.size ? intake.tenants : undefined;
  const tenant = submission.tenant ?? tenants?.of({ sender: submission.sender, user: submission.user, header: parsed.fields.find(isTenantTag)?.value });
  const stripped = withoutFields(parsed, tenants ? (field) => isTag(field) || isTenantTag(field) : isTag);
  const body = intake.preparer ? await prepareMessage(intake.preparer, stripped, {
    client: submission.client, helo: submission.helo, tls: submission.tls, protocol: submission.protocol ?? 'SMTP', recipients: submission.recipients,
  }) : stripped.message;
  const receivedAt = Date.now();
  let id: number;
  try {
    id = await spool.insert({ lane, sender: submission.sender, recipients: submission.recipients, client: submission.client, receivedAt, body, tenant });
  } catch (err) {
    log.emit('spool-error', { error: (err as Error).message });
    throw storageError(err as Error & { errcode?: number; code?: string });
  }
  const queueIdText = queueId(id);
  metrics.count(lane, 'received');
  intake.committed(lane);
  log.emit('received', {
    id: queueIdText, lane, tenant, from: submission.sender, rcpt: submission.recipients, client: submission.client,
    user: submission.user, size: body.length,
  });
  return { id: queueIdText, lane };
}

/** Disk full is 452 4.3.1 (the client may retry elsewhere or later); any other failure 451 4.3.0. */
function storageError(err: Error & { errcode?: number; code?: string }) {
  const full = err.errcode === 13 || err.code === 'ENOSPC' || /full|ENOSPC/i.test(err.message);
  return full
    ? smtpError(452, '4.3.1', 'Insufficient system storage, try again later')
    : smtpError(451, '4.3.0', 'Local error in processing: message not stored, try again later');
}
