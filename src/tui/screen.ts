// The full-screen view: blessed boxes and a blessed-contrib line chart laid out from the terminal
// size, filled from a Snapshot. Drawing only: no polling, no state beyond the widgets and which
// destinations view `d` chose. May touch: the terminal, nothing else.
import blessed from 'blessed';
import contrib from 'blessed-contrib';
import { age } from './format.ts';
import { domainLines, eventLines, laneLines, nodeLines, pathLines, providerLines } from './format.ts';
import type { Snapshot } from './types.ts';

const COLOURS = ['green', 'yellow', 'cyan', 'magenta', 'red', 'blue', 'white'];

/** What the destinations panel shows; `d` steps through them in this order. */
const DESTINATION_MODES = [
  { label: ' busiest destination domains [d] ', lines: (s: Snapshot) => domainLines(s) },
  { label: ' destinations by provider [d] ', lines: (s: Snapshot) => providerLines(s) },
  { label: ' egress paths (sending address × site) [d] ', lines: (s: Snapshot, width: number) => pathLines(s, { width }) },
];

const HELP = [
  'mailops top: queue depth per priority lane across relay nodes',
  '',
  '  q, Ctrl-C    quit',
  '  n, →         next view (aggregate, then each node)',
  '  p, ←         previous view',
  '  d            destinations by domain, by provider, or egress paths',
  '  ?            show or hide this help',
  '',
  'Depth = queued + deferred + active recipients. IN/s counts messages',
  'received; OUT/s, DEFER/s, FAIL/s count recipients. P50/P99: bucket',
  'upper bounds of inject-to-delivered latency over the last minute.',
  'REQUEUE/s: recipients refused "not now", back at the front of the queue.',
  'DEFER/5m: deferrals seen on the event stream in the last five minutes.',
  'Egress paths: per lane state and time left, busy/limit, ready jobs.',
].join('\n');

export interface ScreenHandlers { quit(): void; next(step: 1 | -1): void; redraw(): void }

/** Colours a few state words after escaping, so text from the nodes cannot inject tags. */
function paint(lines: string[]): string {
  return lines.map((line) => blessed.escape(line)
    .replace(/\bDOWN\b/g, '{red-fg}{bold}DOWN{/bold}{/red-fg}')
    .replace(/\b(deferring|failing|partial|retry|deferred|failed|expired)\b/g, '{yellow-fg}$1{/yellow-fg}')
    .replace(/\breduced\b/g, '{yellow-fg}reduced{/yellow-fg}')
    .replace(/\b(paused|suspended)\b/g, '{red-fg}$1{/red-fg}')).join('\n');
}

export class Screen {
  private readonly screen: any;
  private readonly header: any;
  private chart: any;
  private chartBox = { top: 1, left: 0, width: 0, height: 0 };
  private readonly nodes: any;
  private readonly lanes: any;
  private readonly domains: any;
  private readonly events: any;
  private readonly help: any;
  private laneColours = new Map<string, string>();
  /** Index into DESTINATION_MODES. */
  private destinationMode = 0;

  constructor(handlers: ScreenHandlers) {
    this.screen = blessed.screen({ smartCSR: true, title: 'mailops top', warnings: false, autoPadding: true });
    const box = (label: string) => blessed.box({ label: ` ${label} `, tags: true, border: { type: 'line' }, style: { border: { fg: 'cyan' } }, wrap: false });
    this.header = blessed.box({ top: 0, left: 0, height: 1, width: '100%', tags: true, style: { fg: 'white', bg: 'blue' } });
    this.nodes = box('nodes');
    this.lanes = box('lanes');
    this.domains = box('destinations');
    this.events = box('events');
    this.help = blessed.box({
      top: 'center', left: 'center', width: 76, height: 17, label: ' help ', content: HELP, hidden: true,
      border: { type: 'line' }, style: { border: { fg: 'yellow' } }, padding: { left: 1 },
    });
    for (const widget of [this.header, this.nodes, this.lanes, this.domains, this.events, this.help]) this.screen.append(widget);
    this.screen.on('resize', () => handlers.redraw());
    this.screen.key(['q', 'C-c'], () => handlers.quit());
    this.screen.key(['n', 'right'], () => handlers.next(1));
    this.screen.key(['p', 'left'], () => handlers.next(-1));
    this.screen.key(['d'], () => {
      this.destinationMode = (this.destinationMode + 1) % DESTINATION_MODES.length;
      handlers.redraw();
    });
    this.screen.key(['?'], () => {
      this.help.toggle();
      this.screen.render();
    });
    this.screen.key(['escape'], () => {
      this.help.hide();
      this.screen.render();
    });
  }

  /** Positions from the terminal size: chart and nodes on top, lanes across, destinations and events below. */
  private layout(laneCount: number): boolean {
    const { width, height } = this.screen;
    const topHeight = Math.max(8, Math.floor((height - 1) * 0.36));
    const lanesHeight = Math.max(4, laneCount + 3);
    const split = Math.floor(width * 0.58);
    this.chartBox = { top: 1, left: 0, width: split, height: topHeight };
    Object.assign(this.nodes, { top: 1, left: split, width: width - split, height: topHeight });
    Object.assign(this.lanes, { top: 1 + topHeight, left: 0, width, height: lanesHeight });
    const rest = Math.max(3, height - 1 - topHeight - lanesHeight);
    const low = Math.floor(width * 0.6);
    Object.assign(this.domains, { top: 1 + topHeight + lanesHeight, left: 0, width: low, height: rest });
    Object.assign(this.events, { top: 1 + topHeight + lanesHeight, left: low, width: width - low, height: rest });
    // the line chart draws on a canvas twice the width minus margins: too small a box has none
    return split >= 30 && topHeight >= 8;
  }

  draw(s: Snapshot, viewLabel: string, viewPosition: string): void {
    try {
      this.fill(s, viewLabel, viewPosition);
      this.screen.render();
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /** A bug must not take the operator's dashboard down: say so in the header and go on. */
  fail(err: Error): void {
    this.header.setContent(blessed.escape(` mailops top: could not draw: ${err.message}`));
    this.screen.render();
  }

  private fill(s: Snapshot, viewLabel: string, viewPosition: string): void {
    const canChart = this.layout(s.lanes.length);
    const up = s.nodes.filter((n) => n.status === 'up' || n.status === 'partial').length;
    this.header.setContent(blessed.escape(` mailops top  ${s.at.slice(11, 19)}  view: ${viewLabel} ${viewPosition}  ${up}/${s.nodes.length} node(s) up  ` +
      `${s.messages} message(s) in queue   [n/p] view  [?] help  [q] quit`));
    this.nodes.setContent(paint(nodeLines(s)));
    const over = (seconds: number) => (seconds > 0 ? `last ${seconds}s` : 'after two polls');
    this.lanes.setLabel(` lanes (recipients) · rates: ${over(s.rateWindowSeconds)} · latency: ${over(s.latencyWindowSeconds)} `);
    this.lanes.setContent(paint(laneLines(s, 'window')));
    const mode = DESTINATION_MODES[this.destinationMode];
    this.domains.setLabel(mode.label);
    this.domains.setContent(paint(mode.lines(s, Math.max(20, (this.domains.width as number) - 2))));
    const rows = Math.max(0, (this.events.height as number) - 2);
    this.events.setContent(paint(eventLines(s, s.view === 'all' && s.nodes.length > 1).slice(-rows)));
    if (canChart) this.drawChart(s);
    else this.chart?.hide();
  }

  /** contrib's line chart sizes its canvas when attached: a new size needs a new chart. */
  private placeChart(): void {
    const b = this.chartBox;
    if (this.chart && this.chart.width === b.width && this.chart.height === b.height) return this.chart.show();
    if (this.chart) this.screen.remove(this.chart);
    this.chart = contrib.line({
      ...b, label: ' queue depth per lane (recipients) ', showLegend: true, legend: { width: 16 }, wholeNumbersOnly: true,
      border: { type: 'line' }, style: { line: 'yellow', text: 'white', baseline: 'white', border: { fg: 'cyan' } },
      xLabelPadding: 3, xPadding: 5,
    } as any);
    this.screen.insertBefore(this.chart, this.help);
  }

  private drawChart(s: Snapshot): void {
    this.placeChart();
    const now = Date.parse(s.at);
    const times = s.history.times;
    if (times.length === 0) return;
    const labels = times.map((t, i) => (i === times.length - 1 ? 'now' : `-${age((now - t) / 1000)}`));
    const series = Object.entries(s.history.lanes).map(([lane, values]) => {
      if (!this.laneColours.has(lane)) this.laneColours.set(lane, COLOURS[this.laneColours.size % COLOURS.length]);
      return { title: lane, x: labels, y: values.map((v) => v ?? 0), style: { line: this.laneColours.get(lane) } };
    });
    if (series.length === 0) series.push({ title: '(no data)', x: labels, y: labels.map(() => 0), style: { line: 'white' } });
    // blessed-contrib divides by the largest value: give an all-zero chart a scale of 1
    const max = Math.max(...series.flatMap((d) => d.y));
    this.chart.options.maxY = max > 0 ? undefined : 1;
    this.chart.setData(series);
  }

  destroy(): void {
    this.screen.destroy();
  }
}
