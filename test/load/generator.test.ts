// The generator: open-loop schedule arithmetic, seeded determinism, the domain and lane mix, and
// message bytes (headers a newsletter needs, the load tag, sizes, bounded template memory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateSchedule } from '../../src/load/generate/schedule.ts';
import { Plan } from '../../src/load/generate/plan.ts';
import { Recipients, providerOf } from '../../src/load/generate/recipients.ts';
import { Random } from '../../src/load/generate/random.ts';
import { MessageFactory } from '../../src/load/generate/message.ts';
import { applyOverrides, loadScenario } from '../../src/load/scenario/load.ts';
import { parseScenario } from '../../src/load/scenario/parse.ts';

test('stages: a linear ramp then a hold, inverted per message', () => {
  const s = new RateSchedule([{ target: 100, duration: 2000 }, { target: 100, duration: 1000 }], 0);
  // Ramp 0→100/s over 2 s holds 100 messages; message k is due at sqrt(2k/50) s.
  assert.equal(s.timeOf(0), 0);
  assert.ok(Math.abs(s.timeOf(50)! - 1414.2) < 0.5, String(s.timeOf(50)));
  assert.ok(Math.abs(s.timeOf(100)! - 2000) < 0.001);
  assert.ok(Math.abs(s.timeOf(150)! - 2500) < 0.001);
  // Past the last stage the last target holds.
  assert.ok(Math.abs(s.timeOf(250)! - 3500) < 0.001);
  assert.ok(Math.abs(s.countAt(2000) - 100) < 1e-9);
  assert.equal(new RateSchedule([{ target: 0, duration: 1000 }], 10).timeOf(100), undefined);
});

test('the plan merges bulk with Poisson streams and is the same for the same seed', () => {
  const scenario = parseScenario({ messages: 2000, rate: 1000, transactional: { rate: 50 }, member: { rate: 100 } }, 'mix.yaml');
  const run = (seed: number) => {
    const plan = new Plan(scenario, seed);
    const out: string[] = [];
    let last = -1;
    for (;;) {
      const due = plan.peek(0);
      if (due === Infinity) break;
      const p = plan.take(due);
      assert.ok(p.intended >= last, 'intended times never go back');
      last = p.intended;
      out.push(`${p.lane}:${p.intended.toFixed(3)}:${p.size}`);
    }
    return { out, counts: plan.counts, last };
  };
  const a = run(7);
  assert.deepEqual(run(7).out, a.out);
  assert.notDeepEqual(run(8).out, a.out);
  assert.equal(a.counts.bulk, 2000);
  // 2 s of newsletter: about 100 reminders and 200 member messages (Poisson, so within 5 sigma).
  assert.ok(Math.abs(a.counts.transactional - 100) < 50, `transactional ${a.counts.transactional}`);
  assert.ok(Math.abs(a.counts.member - 200) < 71, `member ${a.counts.member}`);
  assert.ok(a.last <= 2000, 'the streams stop with the newsletter');
});

test('a run behind its schedule takes the due reminders first, then member mail, then the newsletter', () => {
  const scenario = parseScenario({ messages: 2000, rate: 1000, transactional: { rate: 50 }, member: { rate: 100 } }, 'mix.yaml');
  const plan = new Plan(scenario, 7);
  const now = 1500; // the generator is 1.5 s behind: everything planned before now is due at once
  const rank = { transactional: 0, member: 1, bulk: 2 };
  const lanes: number[] = [];
  for (;;) {
    const due = plan.peek(now);
    if (due > now) break;
    lanes.push(rank[plan.take(now).lane]);
  }
  assert.ok(lanes.filter((r) => r === 2).length > 1000, 'the newsletter planned before now is due');
  assert.ok(lanes[0] === 0 && lanes.includes(1), 'reminders and member mail are due too');
  assert.deepEqual(lanes, [...lanes].sort((a, b) => a - b), 'due reminders before due member mail before due bulk');
});

test('the domain mix follows the weights, the corporate tail is Zipf, unknown users have their share', () => {
  const spec = loadScenario('newsletter-smoke').recipients;
  const r = new Recipients({ ...spec, unknown: 0.05 }, new Random(3));
  const byProvider: Record<string, number> = {};
  const corp: Record<string, number> = {};
  let unknown = 0;
  const n = 100_000;
  for (let i = 1; i <= n; i++) {
    const x = r.next(i);
    byProvider[x.provider] = (byProvider[x.provider] ?? 0) + 1;
    if (x.provider === 'corporate') corp[x.domain] = (corp[x.domain] ?? 0) + 1;
    if (x.unknown) {
      unknown++;
      assert.match(x.address, /^unknown\d+@/);
    }
  }
  // Weights: 60 corporate of 94 in total, gmail 12.
  assert.ok(Math.abs(byProvider.corporate / n - 60 / 94) < 0.01, JSON.stringify(byProvider));
  assert.ok(Math.abs(byProvider.google / n - 12 / 94) < 0.01);
  assert.ok(Math.abs(unknown / n - 0.05) < 0.005);
  const top = Object.values(corp).sort((a, b) => b - a);
  // Zipf s=1.07: rank 1 about twice rank 2, far above the median domain.
  assert.ok(top[0] / top[1] > 1.7 && top[0] / top[1] < 2.5, `${top[0]} / ${top[1]}`);
  assert.ok(top[0] > 20 * top[Math.floor(top.length / 2)]);
  assert.equal(providerOf('web.de'), 'united-internet');
  assert.equal(providerOf('hotmail.de'), 'outlook');
  assert.equal(providerOf('greylist-corp.test'), 'greylisting');
});

test('messages carry the newsletter headers and the load tag; sizes hit the target', () => {
  const f = new MessageFactory();
  const meta = { runId: 'r1', seq: 42, lane: 'bulk' as const, from: 'news@news.example', to: 'm42@gmail.com', campaign: 'spring', unsubscribeBase: 'https://news.example/u' };
  const header = f.header(meta, 1_700_000_000_123).toString('latin1');
  assert.match(header, /^List-Unsubscribe: <https:\/\/news\.example\/u\/r1\/42>, <mailto:unsubscribe\+42@news\.example>\r$/m);
  assert.match(header, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
  assert.match(header, /^Feedback-ID: 42:spring:bulk:mailops\r$/m);
  assert.match(header, /^Message-ID: <r1\.42@news\.example>\r$/m);
  assert.match(header, /^X-Mailops-Lane: bulk\r$/m);
  assert.match(header, /^X-Mailops-Load: run=r1; seq=42; lane=bulk; sent=1700000000123\r$/m);
  const tx = f.header({ ...meta, lane: 'transactional' }, 0).toString('latin1');
  assert.doesNotMatch(tx, /List-Unsubscribe/, 'a password reminder is not a list message');

  const fixed = f.body('bulk', 4096, true);
  const total = header.length + 2 + fixed.length - 3; // minus the end-of-data line
  assert.ok(Math.abs(total - 4096) < 200, `fixed 4096 → ${total}`);
  const body = fixed.toString('latin1');
  assert.ok(body.endsWith('\r\n.\r\n'));
  assert.doesNotMatch(body.slice(0, -3), /\r\n\./, 'no line starts with a dot (no stuffing needed)');
});

test('memory: 200k messages reuse a bounded set of body templates', () => {
  const scenario = applyOverrides(loadScenario('newsletter-1m'), { messages: 200_000 });
  const plan = new Plan(scenario, 1);
  const f = new MessageFactory();
  let sizes = 0;
  for (let i = 0; i < 200_000; i++) {
    const p = plan.take(plan.peek(i));
    const b = f.body(p.lane, p.size, plan.isFixed(p.lane));
    sizes += b.length;
  }
  const mean = sizes / 200_000;
  assert.ok(mean > 30_000 && mean < 60_000, `mean body ${mean}`);
  assert.ok(f.templateBytes < 40 * 1024 * 1024, `templates hold ${f.templateBytes} bytes`);
});
