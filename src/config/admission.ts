// Reads the smtp keys of connection admission (receive/admission.ts): the slots reserved for
// relayNetworks and authenticated clients, the per-network limit, the command-line deadline, the
// minimum data rate and stress mode. Checks that the values fit together (the reserve leaves
// slots for everyone else; stress limits are not longer than the normal ones) and names the key
// of any that does not. May touch: nothing but the Reader it is given.
import { formatDuration } from '../util/units.ts';
import type { Reader } from './reader.ts';
import type { RelayConfig } from './types.ts';

type AdmissionKeys = Pick<RelayConfig['smtp'], 'reservedConnections' | 'maxConnectionsPerNetwork' | 'commandDeadline' | 'minDataRate' | 'stress'>;

/** The keys read here, for the `smtp.only` list. */
export const ADMISSION_KEYS = ['reservedConnections', 'maxConnectionsPerNetwork', 'commandDeadline', 'minDataRate', 'stress'];

/** A duration that must be above zero (a zero timeout would end every session at once). */
function positiveDuration(reader: Reader, name: string): number {
  const ms = reader.duration(name);
  if (ms <= 0) reader.report(name, 'a duration above zero, such as 10s');
  return ms;
}

/** `smtp` given as a Reader; `maxConnections` and `idleTimeout` as already read from it. */
export function readAdmission(smtp: Reader, maxConnections: number, idleTimeout: number): AdmissionKeys {
  // by default a tenth of the slots, so that a config that only lowers maxConnections stays valid
  const reservedConnections = smtp.doc.reservedConnections === undefined
    ? Math.floor(maxConnections / 10)
    : smtp.int('reservedConnections', 0, Math.max(0, maxConnections - 1));
  const commandDeadline = positiveDuration(smtp, 'commandDeadline');
  const minDataRate = smtp.size('minDataRate');

  const stress = smtp.child('stress');
  stress.only(['threshold', 'idleTimeout', 'commandDeadline']);
  const threshold = stress.number('threshold', 0);
  if (threshold <= 0 || threshold > 1) stress.report('threshold', 'a fraction of smtp.maxConnections above 0 and at most 1, such as 0.8');
  const stressIdle = positiveDuration(stress, 'idleTimeout');
  // (a bad normal value has been reported already and stands in as 0)
  if (idleTimeout > 0 && stressIdle > idleTimeout) stress.report('idleTimeout', `a duration no longer than smtp.idleTimeout (${formatDuration(idleTimeout)})`);
  const stressDeadline = positiveDuration(stress, 'commandDeadline');
  if (commandDeadline > 0 && stressDeadline > commandDeadline) stress.report('commandDeadline', `a duration no longer than smtp.commandDeadline (${formatDuration(commandDeadline)})`);

  return {
    reservedConnections,
    maxConnectionsPerNetwork: smtp.int('maxConnectionsPerNetwork', 1),
    commandDeadline,
    minDataRate,
    stress: { threshold, idleTimeout: stressIdle, commandDeadline: stressDeadline },
  };
}
