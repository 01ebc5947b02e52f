// Signals that make a lane look for work: new mail was committed for it, or recipients it had in
// flight settled (so its window has room). Intake and outcomes raise them; the scheduler listens.
// It lets the stages be built in the order of the journey without one holding a setter of another.
import { EventEmitter } from 'node:events';

export class LaneSignals extends EventEmitter<{ committed: [lane: string]; settled: [lane: string, n: number] }> {
  committed(lane: string): void {
    this.emit('committed', lane);
  }

  settled(lane: string, n: number): void {
    this.emit('settled', lane, n);
  }
}
