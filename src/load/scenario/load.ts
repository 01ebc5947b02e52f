// Finds a scenario by name (scenarios/NAME.yaml) or path, parses the YAML and applies the
// command-line overrides, which win over the file.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError } from '../../config/errors.ts';
import { parseScenario } from './parse.ts';
import type { Scenario } from './types.ts';

export const SCENARIO_DIR = fileURLToPath(new URL('../../../scenarios/', import.meta.url));

export function listScenarios(): string[] {
  return readdirSync(SCENARIO_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
}

export function resolveScenarioPath(nameOrFile: string): string {
  if (existsSync(nameOrFile) && /\.ya?ml$/.test(nameOrFile)) return nameOrFile;
  const shipped = join(SCENARIO_DIR, `${nameOrFile}.yaml`);
  if (/^[a-z0-9-]+$/i.test(nameOrFile) && existsSync(shipped)) return shipped;
  throw new ConfigError(`--scenario: no scenario file or shipped scenario ${JSON.stringify(nameOrFile)} (shipped: ${listScenarios().join(', ')})`);
}

/** The parsed YAML of a scenario file (any type) and its path, for the parser of its type. */
export function readScenarioFile(nameOrFile: string): { path: string; doc: unknown } {
  const path = resolveScenarioPath(nameOrFile);
  try {
    return { path, doc: parse(readFileSync(path, 'utf8'), { prettyErrors: true }) ?? {} };
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
}

export function loadScenario(nameOrFile: string): Scenario {
  const { path, doc } = readScenarioFile(nameOrFile);
  return parseScenario(doc, path);
}

export interface Overrides {
  messages?: number;
  rate?: number | 'max';
  size?: number;
  connections?: number;
  duration?: number;
}

export function applyOverrides(s: Scenario, o: Overrides): Scenario {
  const out = { ...s, bulk: { ...s.bulk } };
  if (o.messages !== undefined) out.messages = o.messages;
  if (o.rate !== undefined) out.rate = o.rate === 'max' ? 'max' : [{ target: o.rate, duration: 0 }];
  if (o.rate !== undefined) out.startRate = o.rate === 'max' ? 0 : o.rate;
  if (o.size !== undefined) {
    // A fixed size applies to every lane: the benchmark against smtp-source wants exactly N bytes.
    out.bulk.size = { median: o.size, p95: o.size };
    if (out.transactional) out.transactional = { ...out.transactional, size: out.bulk.size };
    if (out.member) out.member = { ...out.member, size: out.bulk.size };
  }
  if (o.connections !== undefined) out.connections = o.connections;
  if (o.duration !== undefined) out.duration = o.duration;
  return out;
}
