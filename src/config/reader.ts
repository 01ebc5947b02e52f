// Walks a parsed YAML document with the key path at hand, so that every error names the key
// (`lanes.bulk.retry.initial`) and the value it found. Unknown keys are errors: a typo in a
// config file must not silently fall back to a default.
import { ConfigError } from './errors.ts';
import { parseDuration, parseHostPort, parseSize, type HostPort } from '../util/units.ts';

type Doc = Record<string, unknown>;

export function isDoc(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return value === undefined ? '(missing)' : JSON.stringify(value);
}

export class Reader {
  readonly path: string;
  readonly doc: Doc;
  readonly source: string;
  constructor(doc: unknown, path: string, source: string) {
    if (!isDoc(doc)) throw new ConfigError(`${source}: ${path || 'config'} must be a mapping, got ${show(doc)}`);
    this.doc = doc;
    this.path = path;
    this.source = source;
  }

  key(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  fail(name: string, expected: string): never {
    throw new ConfigError(`${this.source}: ${this.key(name)}: expected ${expected}, got ${show(this.doc[name])}`);
  }

  /** Throws on keys outside `known`. */
  only(known: string[]): void {
    for (const name of Object.keys(this.doc)) {
      if (!known.includes(name)) throw new ConfigError(`${this.source}: ${this.key(name)}: unknown key (known: ${known.join(', ')})`);
    }
  }

  child(name: string): Reader {
    return new Reader(this.doc[name] ?? {}, this.key(name), this.source);
  }

  string(name: string): string {
    const value = this.doc[name];
    if (typeof value !== 'string' || value === '') this.fail(name, 'a non-empty string');
    return value;
  }

  optionalString(name: string): string | undefined {
    return this.doc[name] === undefined ? undefined : this.string(name);
  }

  int(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.doc[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(name, `an integer from ${min} to ${max}`);
    }
    return value;
  }

  number(name: string, min: number): number {
    const value = this.doc[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) this.fail(name, `a number >= ${min}`);
    return value;
  }

  duration(name: string): number {
    const ms = parseDuration(this.doc[name]);
    if (ms === undefined) this.fail(name, 'a duration such as 30s, 5m, 2h or 5d');
    return ms;
  }

  size(name: string): number {
    const bytes = parseSize(this.doc[name]);
    if (bytes === undefined) this.fail(name, 'a size such as 4096, 512KB or 25MB');
    return bytes;
  }

  hostPort(name: string, defaultPort?: number): HostPort {
    const hp = parseHostPort(this.doc[name], defaultPort);
    if (!hp) this.fail(name, 'HOST:PORT');
    return hp;
  }

  optionalHostPort(name: string, defaultPort?: number): HostPort | undefined {
    return this.doc[name] === undefined ? undefined : this.hostPort(name, defaultPort);
  }

  list(name: string): unknown[] {
    const value = this.doc[name] ?? [];
    if (!Array.isArray(value)) this.fail(name, 'a list');
    return value;
  }

  stringList(name: string): string[] {
    const list = this.list(name);
    list.forEach((item, i) => {
      if (typeof item !== 'string' || item === '') throw new ConfigError(`${this.source}: ${this.key(name)}[${i}]: expected a string, got ${show(item)}`);
    });
    return list as string[];
  }

  /** Items of a list of mappings, each with its own path (`routes[2]`). */
  readers(name: string): Reader[] {
    return this.list(name).map((item, i) => new Reader(item, `${this.key(name)}[${i}]`, this.source));
  }
}

/** Deep merge of plain mappings; lists and scalars in `over` replace those in `base`. */
export function merge(base: Doc, over: Doc): Doc {
  const out: Doc = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isDoc(value) && isDoc(base[key]) ? merge(base[key] as Doc, value) : value;
  }
  return out;
}
