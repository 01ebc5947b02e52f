// The delivery logs' web page script (index.html), plain browser JavaScript. Graphs from
// GET /api/v1/logs/summary (per minute over the filters' range, default the last hour), drawn
// with uPlot, refreshed every 10 s; the live tail from GET /api/v1/logs?follow=1 (NDJSON), read
// as a stream, newest row on top, at most 500 rows kept. The token (#token=... once, then this
// tab's sessionStorage) goes in the Authorization header, never in a URL the server sees. Record
// fields are put in the page as text, never as markup. The body's data-* attributes say what was
// drawn (charts, series, tail rows): the headless-browser test reads them.
'use strict';
(() => {
  const COLORS = { received: '#64748b', delivered: '#1a7f37', deferred: '#d97706', failed: '#b42318', expired: '#7c3aed', suppressed: '#0891b2', bounced: '#db2777' };
  const LANE_COLORS = ['#2563eb', '#0d9488', '#9333ea', '#ea580c', '#475569'];
  const FILTERS = ['tenant', 'sender', 'recipient', 'domain', 'lane', 'event', 'class', 'reply', 'id', 'since', 'until'];
  const MAX_ROWS = 500;
  const REFRESH_MS = 10000;
  const CHART_HEIGHT = 200;

  const params = new URLSearchParams(location.search);
  const hash = new URLSearchParams(location.hash.slice(1));
  let token = hash.get('token') || sessionStorage.getItem('mailops-token') || '';
  if (hash.get('token')) {
    sessionStorage.setItem('mailops-token', token);
    history.replaceState(null, '', location.pathname + location.search);
  }

  const $ = (id) => document.getElementById(id);
  const status = (text, error) => {
    $('status').textContent = text;
    $('status').className = error ? 'error' : '';
  };

  // the form shows the URL's filters; applying it makes a new URL (a page to bookmark or share, without the token)
  const form = $('filters');
  for (const input of form.elements) if (input.name && input.name !== 'token') input.value = params.get(input.name) || '';
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const input of form.elements) {
      if (!input.name || !input.value.trim()) continue;
      if (input.name === 'token') sessionStorage.setItem('mailops-token', input.value.trim());
      else next.set(input.name, input.value.trim());
    }
    location.search = next.toString();
  });
  if (params.get('tenant')) $('scope').textContent = `tenant ${params.get('tenant')}`;

  const apiParams = () => {
    const q = new URLSearchParams();
    for (const key of FILTERS) if (params.get(key)) q.set(key, params.get(key));
    return q;
  };
  const headers = () => (token ? { authorization: `Bearer ${token}` } : {});

  async function getJson(path) {
    const res = await fetch(path, { headers: headers() });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${res.status}: ${body.error || res.statusText}`);
    return body;
  }

  // ---- graphs ----
  const charts = {};
  const drawn = {};
  function draw(id, opts, data) {
    const el = $(id);
    if (charts[id]) charts[id].destroy();
    charts[id] = new uPlot({ width: Math.max(320, el.clientWidth), height: CHART_HEIGHT, ...opts }, data, el);
    drawn[id] = { series: opts.series.length - 1, points: data[0].length };
    el.dataset.series = String(opts.series.length - 1);
    el.dataset.points = String(data[0].length);
    document.body.dataset.charts = String(Object.keys(drawn).length);
  }

  const bars = () => uPlot.paths.bars({ size: [0.8, 40] });
  /** Categories on the x axis: indices 0..n-1, labelled. */
  function categoryAxis(labels) {
    return {
      scales: { x: { time: false, range: [-0.6, Math.max(labels.length, 1) - 0.4] } },
      axes: [
        { splits: () => labels.map((_, i) => i), values: (u, splits) => splits.map((i) => labels[i] || ''), rotate: 0, size: 40 },
        { size: 50 },
      ],
    };
  }

  function drawOutcomes(s) {
    const events = Object.keys(s.series.events).filter((e) => s.totals[e] > 0);
    if (events.length === 0) events.push('delivered');
    draw('chart-outcomes', {
      series: [{}, ...events.map((e) => ({ label: e, stroke: COLORS[e] || '#333', width: 2, points: { show: true, size: 6, fill: COLORS[e] || '#333' } }))],
      axes: [{}, { size: 50 }],
    }, [s.series.times.map((t) => t / 1000), ...events.map((e) => s.series.events[e])]);
  }

  function drawReasons(s) {
    // one slot per reason; a deferral's slot has no bounce bar and the other way round
    const entries = [...s.reasons.deferred.map((r) => ['deferred', r]), ...s.reasons.bounced.map((r) => ['bounced', r])];
    const labels = entries.map(([, r]) => `${r.class} ${r.code}`.trim());
    draw('chart-reasons', {
      ...categoryAxis(labels),
      series: [{}, ...['deferred', 'bounced'].map((kind) => ({ label: kind === 'bounced' ? 'failed/expired' : kind, fill: COLORS[kind], stroke: COLORS[kind], paths: bars(), points: { show: false } }))],
    }, [labels.map((_, i) => i), ...['deferred', 'bounced'].map((kind) => entries.map(([k, r]) => (k === kind ? r.count : null)))]);
  }

  function drawProviders(s) {
    // three slots per provider (delivered, deferred, failed), labelled in the middle one
    const shown = ['delivered', 'deferred', 'failed'];
    const providers = s.providers.slice(0, 8);
    const xs = [];
    const labels = [];
    providers.forEach((p, i) => shown.forEach((_, k) => { xs.push(i * 4 + k); labels[i * 4 + k] = k === 1 ? p.provider : ''; }));
    const opts = categoryAxis(labels);
    opts.scales.x.range = [-1, Math.max(xs.length ? xs[xs.length - 1] : 0, 2) + 1];
    opts.axes[0].splits = () => providers.map((_, i) => i * 4 + 1);
    draw('chart-providers', {
      ...opts,
      series: [{}, ...shown.map((e) => ({ label: e, fill: COLORS[e], stroke: COLORS[e], paths: bars(), points: { show: false } }))],
    }, [xs, ...shown.map((e, k) => xs.map((x) => (x % 4 === k ? (providers[Math.floor(x / 4)].events[e] || 0) : null)))]);
  }

  function drawLatency(s) {
    const lanes = Object.keys(s.latency.series);
    if (lanes.length === 0) lanes.push('(none)');
    draw('chart-latency', {
      series: [{}, ...lanes.map((lane, i) => { const c = LANE_COLORS[i % LANE_COLORS.length]; return { label: `${lane} ms`, stroke: c, width: 2, spanGaps: true, points: { show: true, size: 8, fill: c, stroke: c } }; })],
      axes: [{}, { size: 60 }],
    }, [s.series.times.map((t) => t / 1000), ...lanes.map((lane) => s.latency.series[lane] || s.series.times.map(() => null))]);
  }

  async function refreshGraphs() {
    const q = apiParams();
    if (!q.get('since')) q.set('since', '1h');
    q.set('bucket', '1m');
    try {
      const s = await getJson(`/api/v1/logs/summary?${q}`);
      drawOutcomes(s);
      drawReasons(s);
      drawProviders(s);
      drawLatency(s);
      const total = Object.values(s.totals).reduce((a, b) => a + b, 0);
      status(`${total} records since ${s.since} (${s.store} store${s.partial ? `; ${s.partial}` : ''})`);
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } catch (err) {
      status(`graphs: ${err.message}`, true);
    }
  }

  // ---- live tail ----
  let rows = 0;
  const COLUMNS = [(r) => r.time.replace('T', ' ').replace('Z', ''), (r) => r.node, (r) => r.event, (r) => r.tenant, (r) => r.id, (r) => r.lane,
    (r) => r.from, (r) => r.rcpt, (r) => (r.mx ? `${r.mx}${r.ip && r.ip !== r.mx ? ` [${r.ip}]` : ''}` : ''), (r) => r.reply];

  function addRow(record) {
    const body = $('tail').tBodies[0];
    const tr = body.insertRow(0);
    tr.className = record.event;
    for (const cell of COLUMNS) tr.insertCell().textContent = cell(record) ?? '';
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    document.body.dataset.tailRows = String(++rows);
  }

  async function tail() {
    $('tail').tBodies[0].replaceChildren(); // a reconnection sends the latest records again
    const q = apiParams();
    q.delete('until');
    q.set('follow', '1');
    q.set('limit', '50');
    try {
      const res = await fetch(`/api/v1/logs?${q}`, { headers: headers() });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(`${res.status}: ${body.error || res.statusText}`);
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          const item = JSON.parse(line);
          if (item.following) {
            $('tail-state').textContent = `(live from ${item.following})`;
            document.body.dataset.following = item.following;
          } else if (item.dropped) {
            $('tail-state').textContent = `(${item.dropped} records skipped: this page fell behind)`;
          } else if (item.event) {
            addRow(item);
          }
        }
      }
      $('tail-state').textContent = '(disconnected; reconnecting)';
    } catch (err) {
      $('tail-state').textContent = `(${err.message}; reconnecting)`;
    }
    setTimeout(tail, 2000);
  }

  refreshGraphs();
  setInterval(refreshGraphs, REFRESH_MS);
  tail();
})();
