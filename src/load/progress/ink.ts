// Live progress in a terminal with ink: rate, sent/target with a bar, errors, ETA, per-lane p50/p99.
// Components use React.createElement: type stripping does not do JSX.
import React from 'react';
import { render, Box, Text } from 'ink';
import type { Progress } from '../run.ts';
import { int, ms } from '../report/format.ts';

const h = React.createElement;

function Bar({ done, total }: { done: number; total: number }) {
  const width = 30;
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : 0;
  return h(Text, { color: 'cyan' }, `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`);
}

function View({ p, title }: { p: Progress; title: string }) {
  const done = p.accepted + p.failed;
  return h(Box, { flexDirection: 'column', paddingX: 1 },
    h(Text, { bold: true }, `mailops load ${title} — ${p.stage}`),
    h(Box, { gap: 1 },
      h(Bar, { done, total: p.expected }),
      h(Text, null, `${int(done)}/${int(p.expected)}`),
      h(Text, { color: 'green' }, `${int(p.rate)}/s`),
      h(Text, { color: p.failed ? 'red' : 'gray' }, `errors ${int(p.failed)}`),
      h(Text, { color: 'gray' }, `in-flight ${p.inFlight}`),
      h(Text, null, p.etaSeconds === null ? '' : `ETA ${Math.ceil(p.etaSeconds)}s`),
      p.arrived === undefined ? null : h(Text, { color: 'yellow' }, `arrived ${int(p.arrived)}`)),
    ...Object.entries(p.lanes).map(([lane, l]) =>
      h(Text, { key: lane }, `  ${lane.padEnd(14)} p50 ${ms(l.p50).padStart(9)}   p99 ${ms(l.p99).padStart(9)}`)),
  );
}

export function inkProgress(title: string, stdout: NodeJS.WriteStream = process.stdout): { update: (p: Progress) => void; stop: () => void } {
  let app: ReturnType<typeof render> | undefined;
  return {
    update(p) {
      const node = h(View, { p, title });
      if (app) app.rerender(node);
      else app = render(node, { stdout, exitOnCtrlC: false, patchConsole: false });
    },
    stop() {
      app?.unmount();
    },
  };
}
