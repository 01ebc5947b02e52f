// Small helpers shared by command files.
import { ConfigError } from '../config/errors.ts';

/** Commander collector for repeatable flags (`--route a=b --route c=d`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag}: expected a positive integer, got ${JSON.stringify(value)}`);
    return n;
  };
}
