// What a benchmark reads of a process it started, from /proc: CPU seconds used (user + system: a
// figure that load from other processes disturbs less than wall time) and resident memory.
import { readFileSync } from 'node:fs';

/** CPU seconds (utime + stime, in USER_HZ ticks of 1/100 s) that process `pid` has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident memory of process `pid`, MB. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
