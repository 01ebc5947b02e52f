// The full-screen dashboard in tmux against two relay processes with queued mail (receiver down):
// lane names and counts appear and change after more mail is injected, the views switch, a killed
// node shows as down and comes back when restarted on its port, ? shows help, d cycles the
// destinations panel through domains, providers and egress paths, and q exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { disposeRelay, inject, laneRow, startRelayChild, stopRelay, TmuxTop, TOKEN } from './nodes.ts';

test('mailops top in tmux: lanes and counts, change on injection, per-node view, node down and back, help, q', { timeout: 90_000 }, async (t) => {
  const a = await startRelayChild();
  t.after(() => disposeRelay(a));
  let b = await startRelayChild();
  t.after(() => disposeRelay(b));
  // two recipients per message: depth counts recipients
  await inject(a, 'bulk', 3);
  await inject(a, 'transactional', 1);
  await inject(b, 'bulk', 2);

  // the event streams show addresses: the nodes have an http.token, which the dashboard passes on
  const top = new TmuxTop(['--node', a.url, '--node', b.url, '--token', TOKEN, '--interval', '500ms']);
  t.after(() => top.kill());
  await top.until('bulk depth 10 and transactional 2 across both nodes, event streams live', (s) =>
    laneRow(s, 'bulk')?.[0] === '10' && laneRow(s, 'transactional')?.[0] === '2' && laneRow(s, 'member')?.[0] === '0' &&
    /#1 .* up .* live/.test(s) && /#2 .* up .* live/.test(s) ? true : undefined);
  assert.match(top.screen, /view: all 2 nodes \(1\/3\)/);
  assert.match(top.screen, /2\/2 node\(s\) up/);
  assert.match(top.screen, /queue depth per lane/);
  assert.match(top.screen, /^│gmail\.test\s+corporate\s+bulk,trans\s+6\s/m, 'destination rows with their queued recipients');
  assert.doesNotMatch(top.screen, /[lqkjmx]{10}/, 'borders are lines, not letters');

  // more mail while watching: counts change, the event stream shows it, deferrals name the error
  await inject(a, 'bulk', 2);
  await top.until('bulk depth 14 after injection', (s) => (laneRow(s, 'bulk')?.[0] === '14' ? true : undefined));
  await top.until('received and deferred events with the reply', (s) => (/#1 received bulk \w{8} <news@sender\.test>/.test(s) && /#1 deferred bulk \w{8} user@gmail\.test: 451/.test(s) ? true : undefined));
  await top.until('gmail.test deferring with its last error', (s) => (/^│gmail\.test\s.*deferring\s+451 4\.4\.1/m.test(s) ? true : undefined));

  // per-node view: node a alone (5 bulk messages = 10 recipients), then back to the aggregate
  top.keys('n');
  await top.until('the view of node a', (s) => (s.includes(`view: 127.0.0.1:${a.httpPort} (2/3)`) && laneRow(s, 'bulk')?.[0] === '10' ? true : undefined));
  top.keys('p');
  await top.until('the aggregate view', (s) => (s.includes('view: all 2 nodes (1/3)') && laneRow(s, 'bulk')?.[0] === '14' ? true : undefined));

  // node b goes away: shown as down, the aggregate keeps node a's numbers
  await stopRelay(b, 'SIGKILL');
  await top.until('node b down', (s) => (new RegExp(`127\\.0\\.0\\.1:${b.httpPort}\\s+DOWN`).test(s) && laneRow(s, 'bulk')?.[0] === '10' ? true : undefined));
  assert.match(top.screen, /1\/2 node\(s\) up/);
  assert.match(top.screen, new RegExp(`127\\.0\\.0\\.1:${b.httpPort}: GET /health: ECONNREFUSED`));

  // and comes back on the same port with its spool: reconnected, counted again, events live again
  b = await startRelayChild({ dir: b.dir, httpPort: b.httpPort });
  await top.until('node b up again', (s) => (new RegExp(`127\\.0\\.0\\.1:${b.httpPort}\\s+up\\s.*live`).test(s) && laneRow(s, 'bulk')?.[0] === '14' ? true : undefined), 20_000);

  top.keys('?');
  await top.until('the help', (s) => (s.includes('show or hide this help') ? true : undefined));
  top.keys('?');
  top.keys('d');
  await top.until('destinations by provider', (s) => (s.includes('destinations by provider') && /^│united-internet\s+1\s+bulk,trans\s+8\s/m.test(s) ? true : undefined));
  // the third mode: node a's path to its (unreachable) smarthost, numbered as in the nodes table
  top.keys('d');
  await top.until('egress paths', (s) => (s.includes('egress paths (sending address × site)') && /^│#1 smarthost:127\.0\.0\.1:9 {2}from default {2}conn 0\/\d+/m.test(s) ? true : undefined));
  top.keys('q');
  assert.equal(await top.exitStatus(), 0);
});
