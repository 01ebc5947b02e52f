// The event feed against a real relay process: every deferral of a burst arrives (batched reads
// lose nothing at this rate), the last error is the relay's reply, and the feed reconnects by
// itself after the node was killed and started again on its port; without the node's token the
// stream is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventFeed } from '../../src/tui/events.ts';
import { disposeRelay, inject, startRelayChild, stopRelay, TOKEN, waitFor } from './nodes.ts';

test('event feed: a burst arrives complete, last error per domain, reconnect after kill -9', { timeout: 60_000 }, async (t) => {
  let relay = await startRelayChild();
  t.after(() => disposeRelay(relay));
  // the stream shows addresses: the node has an http.token, and refuses a feed without it
  const refused = new EventFeed(relay.url);
  t.after(() => refused.stop());
  refused.start();
  await waitFor('the feed without a token to be refused', () => (refused.refused === 401 ? true : undefined));
  refused.stop();
  const feed = new EventFeed(relay.url, TOKEN);
  t.after(() => feed.stop());
  feed.start();
  await waitFor('the feed to connect', () => (feed.status === 'connected' ? true : undefined));

  await Promise.all([1, 2, 3, 4].map(() => inject(relay, 'bulk', 50, ['a@burst.test'])));
  const deferred = async () => Number(/mailops_deferred_total\{lane="bulk"\} (\d+)/.exec(await (await fetch(`${relay.url}/metrics`)).text())?.[1]);
  await waitFor('200 deferrals at the relay', async () => ((await deferred()) === 200 ? true : undefined));
  await waitFor('200 deferrals in the feed', () => (feed.recentDeferrals('burst.test', Date.now()) === 200 ? true : undefined), 5000,
    () => String(feed.recentDeferrals('burst.test', Date.now())));
  assert.equal(feed.dropped, 0);
  const domain = feed.domains.get('burst.test')!;
  assert.equal(domain.lastOutcome, 'deferred');
  assert.match(domain.lastError!, /^451 4\.4\.1 /);
  assert.equal(feed.lines.length, 200, 'the latest 200 lines are kept');
  assert.ok(feed.lines.some((l) => l.event === 'received') && feed.lines.some((l) => l.event === 'deferred'));

  await stopRelay(relay, 'SIGKILL');
  await waitFor('the feed to notice', () => (feed.status === 'reconnecting' ? true : undefined));
  relay = await startRelayChild({ dir: relay.dir, httpPort: relay.httpPort });
  await waitFor('the feed to reconnect', () => (feed.status === 'connected' ? true : undefined), 15_000);
  await inject(relay, 'transactional', 1, ['b@back.test']);
  await waitFor('events after the reconnect', () => (feed.domains.get('back.test')?.lastOutcome === 'deferred' ? true : undefined));
});
