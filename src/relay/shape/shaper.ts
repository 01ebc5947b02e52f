// Traffic shaping policy: which site (provider profile) a destination belongs to, and what a
// provider's reply does to an egress path's shaping state. A named provider profile is one site
// for all its domains (every Google Workspace domain shares Google's limits); under the default
// profile, domains share a site when they share their MX host set; a smarthost is a site of its
// own with the delivery.* limits. Replies are matched against the profile's backoff rules; a
// "not now" reply that no rule names still backs off (fewer connections, or a short pause for a
// rate reply) so that the relay never keeps knocking at the same rate. Every action is logged
// with the path, the site and the lanes it touched. May touch: a path's PathShaping, the log.
import type { RelayConfig } from '../../config/types.ts';
import type { BackoffRule, ShapingProfile } from '../../config/sending-types.ts';
import type { EventLog } from '../log.ts';
import { notNow } from './not-now.ts';
import { PathShaping, UNTIL_RESUMED, type ShapingAction } from './path-shaping.ts';
import { SiteRate, type RateLimiter } from './rate.ts';

/** Makes a path's rate limiter: a cluster's shared one (cluster/limits.ts), else this node's own. */
export type RateSource = (pathKey: string, perSecond: number, perHour: number) => RateLimiter;

const ownRate: RateSource = (_, perSecond, perHour) => new SiteRate(perSecond, perHour);

export interface SiteRef { key: string; profile: ShapingProfile }

/** Identifies a path in log lines and views. */
export interface PathLabel { key: string; egressName: string; site: string; shaping: PathShaping }

/** Backoff for "not now" replies that no rule of the profile matches. */
const IMPLICIT: Record<'connections' | 'rate', BackoffRule> = {
  connections: { match: '(not now: connections)', regex: /$^/, action: 'reduce' },
  rate: { match: '(not now: rate)', regex: /$^/, action: 'pause', duration: 10_000 },
};

export class Shaper {
  private readonly config: RelayConfig;
  private readonly log: EventLog;
  private readonly smarthostProfile: ShapingProfile;
  private readonly rates: RateSource;

  constructor(config: RelayConfig, log: EventLog, rates: RateSource = ownRate) {
    this.config = config;
    this.log = log;
    this.rates = rates;
    const d = config.delivery;
    const fallback = config.shaping.profiles.find((p) => p.name === 'default')!;
    // a smarthost is the operator's own next hop: the delivery.* limits, the default backoff rules
    this.smarthostProfile = {
      ...fallback, name: 'smarthost', mx: [], maxConnections: d.maxConnectionsPerDestination,
      messagesPerConnection: d.messagesPerConnection, idleTimeout: d.idleTimeout, ratePerSecond: 0, ratePerHour: 0,
    };
  }

  profileFor(mxHosts: string[]): ShapingProfile {
    const hosts = mxHosts.map((h) => h.toLowerCase().replace(/\.$/, ''));
    for (const profile of this.config.shaping.profiles) {
      if (profile.mx.some((suffix) => hosts.some((h) => h === suffix || h.endsWith(`.${suffix}`)))) return profile;
    }
    return this.config.shaping.profiles[this.config.shaping.profiles.length - 1];
  }

  /** The site of a domain whose mail goes to these MX hosts. */
  siteForMx(mxHosts: string[]): SiteRef {
    const profile = this.profileFor(mxHosts);
    const key = profile.name === 'default' ? `mx:${[...new Set(mxHosts.map((h) => h.toLowerCase()))].sort().join(',')}` : `provider:${profile.name}`;
    return { key, profile };
  }

  siteForSmarthost(key: string): SiteRef {
    return { key, profile: this.smarthostProfile };
  }

  /** Fresh shaping state for a new egress path (`pathKey`) to a site; `members`: the lanes that send on it. */
  shapingFor(pathKey: string, site: SiteRef, members: boolean[]): PathShaping {
    const rate = this.rates(pathKey, site.profile.ratePerSecond, site.profile.ratePerHour);
    return new PathShaping(site.profile, this.config.lanes, this.config.shaping.rampStep, rate, members);
  }

  /**
   * A refusal that lane `p`'s traffic got on a path: applies the first matching backoff rule (or
   * the implicit one for a "not now" reply). Returns the action when one was taken.
   */
  observe(path: PathLabel, p: number, reply: string, cap?: number): ShapingAction | undefined {
    const kind = notNow(reply);
    const rule = path.shaping.rule(reply) ?? (kind === 'connections' || kind === 'rate' ? IMPLICIT[kind] : undefined);
    if (!rule) return undefined;
    const action = path.shaping.apply(rule, reply, p, Date.now(), cap);
    if (action) this.logAction(path, action, rule.match);
    return action;
  }

  logAction(path: PathLabel, action: ShapingAction, rule?: string): void {
    this.log.emit('shaping', {
      path: path.key, egress: path.egressName, site: path.site, profile: path.shaping.profile.name, ...action, rule,
      limit: action.limit ?? path.shaping.limit(this.config.lanes.length - 1),
    });
  }
}

export { UNTIL_RESUMED };
