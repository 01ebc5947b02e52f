// Which refusals say "not now" about the connection or the rate (back to the front of the ready
// queue) and which are real deferrals (the lane's retry schedule): the providers' own replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notNow } from '../../src/relay/shape/not-now.ts';

test('provider replies: connection and session limits and rate replies are "not now"; mailbox, greylisting and 5xx are not', () => {
  const cases: [string, ReturnType<typeof notNow>][] = [
    ['421 4.7.0 [127.0.0.3] Too many concurrent SMTP connections from this IP address; please try again later.', 'connections'],
    ['451 4.7.652 The mail server [127.0.0.3] has exceeded the maximum number of connections. (S3115)', 'connections'],
    ['421 Too many connections', 'connections'],
    ['421 4.7.0 Too many messages in this session, closing connection', 'session'],
    ['421 4.3.2 The maximum number of messages per session was reached, closing connection', 'session'],
    ['421-4.7.28 [127.0.0.3] Our system has detected an unusual rate of unsolicited mail', 'rate'],
    ['451 4.7.650 The mail server [127.0.0.3] has been temporarily rate limited due to IP reputation. (S775)', 'rate'],
    ['421 4.7.0 [TSS04] Messages from 127.0.0.3 temporarily deferred due to unexpected volume or user complaints', 'rate'],
    ['421-Service unavailable 421-Reject due to policy restrictions. 421 Too many messages from 127.0.0.3, please reduce the sending rate.', 'rate'],
    ['421 4.7.0 Too many messages from 127.0.0.3, please try again later', 'rate'],
    ['450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.', undefined],
    ['452 4.2.2 <u@gmx.de>: Mailbox full', undefined],
    ['450 4.2.0 <u@greylist.test>: Recipient address rejected: Greylisted', undefined],
    ['451 4.3.0 Temporary server error', undefined],
    ['554 5.7.1 Too many connections from your IP: blocked', undefined],
    ['550 5.1.1 user unknown', undefined],
  ];
  for (const [reply, kind] of cases) assert.equal(notNow(reply), kind, reply);
});
