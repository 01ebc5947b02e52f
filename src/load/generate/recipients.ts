// Recipient addresses with the scenario's domain mix: weighted big providers plus a synthetic
// corporate long tail whose domain popularity follows Zipf. A share of local parts start with
// `unknown`, which every mailops sink profile (but accept-all) refuses with 550 5.1.1.
import type { Scenario } from '../scenario/types.ts';
import { Random, WeightedPick, zipfWeights } from './random.ts';

/** The provider tag of a domain, the same names as the mailops sink's profiles. */
export function providerOf(domain: string): string {
  if (domain === 'gmail.com' || domain === 'googlemail.com') return 'google';
  if (/^(outlook\.|hotmail\.|live\.|msn\.com$)/.test(domain)) return 'outlook';
  if (domain.startsWith('yahoo.') || domain.startsWith('ymail.')) return 'yahoo';
  if (domain.startsWith('gmx.') || domain === 'web.de') return 'united-internet';
  if (domain === 't-online.de') return 'telekom';
  if (domain.startsWith('greylist')) return 'greylisting';
  return 'corporate';
}

export interface Recipient { address: string; domain: string; provider: string; unknown: boolean }

export class Recipients {
  private readonly random: Random;
  private readonly pickGroup: WeightedPick;
  private readonly pickCorporate: WeightedPick;
  private readonly domains: string[];
  private readonly providers: string[];
  private readonly corporate: (string | undefined)[];
  private readonly unknownShare: number;

  constructor(spec: Scenario['recipients'], random: Random) {
    this.random = random;
    this.domains = spec.providers.map((p) => p.domain);
    this.providers = this.domains.map(providerOf);
    // Index domains.length stands for "a corporate domain".
    this.pickGroup = new WeightedPick([...spec.providers.map((p) => p.weight), spec.corporate.weight]);
    this.pickCorporate = new WeightedPick(zipfWeights(spec.corporate.domains, spec.corporate.zipf));
    this.corporate = new Array(spec.corporate.domains);
    this.unknownShare = spec.unknown;
  }

  next(seq: number): Recipient {
    const group = this.pickGroup.pick(this.random);
    let domain: string;
    let provider: string;
    if (group < this.domains.length) {
      domain = this.domains[group];
      provider = this.providers[group];
    } else {
      const rank = this.pickCorporate.pick(this.random);
      domain = this.corporate[rank] ??= `corp${rank + 1}.mailops.test`;
      provider = 'corporate';
    }
    const unknown = this.unknownShare > 0 && this.random.next() < this.unknownShare;
    return { address: `${unknown ? 'unknown' : 'm'}${seq}@${domain}`, domain, provider, unknown };
  }
}
