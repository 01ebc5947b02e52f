// Walks a parsed YAML document with the key path at hand, so that every error names the key
// (`lanes.bulk.retry.initial`) and the value it found. Unknown keys are errors: a typo in a
// config file must not silently fall back to a default. A Reader given a ConfigProblems records
// each bad value and carries on with a stand-in, so that one run reports every mistake in a
// file; without one it throws at the first.
import { ConfigError } from './errors.ts';
import { parseDuration, parseHostPort, parseSize, type HostPort } from '../util/units.ts';

type Doc = Record<string, unknown>;

export function isDoc(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return value === undefined ? '(missing)' : JSON.stringify(value);
}

/** The problems found in one config document, in the order found: one per key, none below a bad key. */
export class ConfigProblems {
  private readonly byKey = new Map<string, string>();

  add(key: string, message: string): void {
    for (const bad of this.byKey.keys()) {
      // `smtp` not a mapping: its keys are all missing, which says nothing new
      if (key === bad || key.startsWith(`${bad}.`) || key.startsWith(`${bad}[`)) return;
    }
    this.byKey.set(key, message);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Throws one ConfigError listing every problem, if there is any. */
  throwIfAny(): void {
    if (this.byKey.size) throw new ConfigError([...this.byKey.values()]);
  }
}

export class Reader {
  readonly path: string;
  readonly doc: Doc;
  readonly source: string;
  /** Where bad values are recorded; without it the first one throws. */
  readonly problems?: ConfigProblems;
  constructor(doc: unknown, path: string, source: string, problems?: ConfigProblems) {
    this.path = path;
    this.source = source;
    this.problems = problems;
    if (!isDoc(doc)) this.reportAt(path || 'config', `must be a mapping, got ${show(doc)}`);
    this.doc = isDoc(doc) ? doc : {};
  }

  /** A Reader for another document (`path` names it) that records its problems with this one's. */
  readerFor(doc: unknown, path: string): Reader {
    return new Reader(doc, path, this.source, this.problems);
  }

  /** The key path of `name` here; '' is this mapping itself. */
  key(name: string): string {
    if (!name) return this.path;
    return this.path ? `${this.path}.${name}` : name;
  }

  /** Throws for a bad value that reading cannot go on from. */
  fail(name: string, expected: string): never {
    throw new ConfigError(`${this.source}: ${this.key(name)}: expected ${expected}, got ${show(this.doc[name])}`);
  }

  /** A bad value: recorded, and reading goes on (throws when no problems are being collected). */
  report(name: string, expected: string): void {
    this.reportText(name, `expected ${expected}, got ${show(this.doc[name])}`);
  }

  /** A problem with key `name` in words of its own ("is not a CIDR network"). */
  reportText(name: string, text: string): void {
    this.reportAt(this.key(name), text);
  }

  private reportAt(key: string, text: string): void {
    const message = `${this.source}: ${key}: ${text}`;
    if (!this.problems) throw new ConfigError(message);
    this.problems.add(key, message);
  }

  /** Reports every key outside `known`. */
  only(known: string[]): void {
    for (const name of Object.keys(this.doc)) {
      if (!known.includes(name)) this.reportText(name, `unknown key (known: ${known.join(', ')})`);
    }
  }

  child(name: string): Reader {
    return this.readerFor(this.doc[name] ?? {}, this.key(name));
  }

  // The readers below report a bad value and return a stand-in of the right type: the config is
  // thrown away once problems were found, so a stand-in never reaches the relay.

  string(name: string): string {
    const value = this.doc[name];
    if (typeof value === 'string' && value !== '') return value;
    this.report(name, 'a non-empty string');
    return '';
  }

  optionalString(name: string): string | undefined {
    return this.doc[name] === undefined ? undefined : this.string(name);
  }

  int(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.doc[name];
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    this.report(name, `an integer from ${min} to ${max}`);
    return min;
  }

  number(name: string, min: number): number {
    const value = this.doc[name];
    if (typeof value === 'number' && Number.isFinite(value) && value >= min) return value;
    this.report(name, `a number >= ${min}`);
    return min;
  }

  duration(name: string): number {
    const ms = parseDuration(this.doc[name]);
    if (ms !== undefined) return ms;
    this.report(name, 'a duration such as 30s, 5m, 2h or 5d');
    return 0;
  }

  size(name: string): number {
    const bytes = parseSize(this.doc[name]);
    if (bytes !== undefined) return bytes;
    this.report(name, 'a size such as 4096, 512KB or 25MB');
    return 0;
  }

  hostPort(name: string, defaultPort?: number): HostPort {
    const hp = parseHostPort(this.doc[name], defaultPort);
    if (hp) return hp;
    this.report(name, 'HOST:PORT');
    return { host: '', port: 0 };
  }

  optionalHostPort(name: string, defaultPort?: number): HostPort | undefined {
    return this.doc[name] === undefined ? undefined : this.hostPort(name, defaultPort);
  }

  list(name: string): unknown[] {
    const value = this.doc[name] ?? [];
    if (Array.isArray(value)) return value;
    this.report(name, 'a list');
    return [];
  }

  stringList(name: string): string[] {
    return this.list(name).filter((item, i): item is string => {
      if (typeof item === 'string' && item !== '') return true;
      this.reportText(`${name}[${i}]`, `expected a string, got ${show(item)}`);
      return false;
    });
  }

  /** Items of a list of mappings, each with its own path (`routes[2]`). */
  readers(name: string): Reader[] {
    return this.list(name).map((item, i) => this.readerFor(item, `${this.key(name)}[${i}]`));
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
