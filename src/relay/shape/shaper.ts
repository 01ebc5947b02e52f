// Traffic shaping across destinations: which site (provider profile and shared limits) a
// destination belongs to, and what a provider's reply does to that site. A named provider
// profile is one site for all its domains (every Google Workspace domain shares Google's limits);
// under the default profile, domains share a site when they share their MX host set.
import type { RelayConfig } from '../../config/types.ts';
import type { ShapingProfile } from '../../config/sending-types.ts';
import type { EventLog } from '../log.ts';
import { Site, type SiteAction } from './site.ts';

export class Shaper {
  readonly sites = new Map<string, Site>();
  private readonly config: RelayConfig;
  private readonly log: EventLog;
  private readonly smarthostProfile: ShapingProfile;
  /** Told when a site was paused or suspended: defer what its destinations have queued. */
  onPause: (site: Site) => void = () => {};

  constructor(config: RelayConfig, log: EventLog) {
    this.config = config;
    this.log = log;
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

  /** The site for a domain whose mail goes to these MX hosts. */
  siteForMx(mxHosts: string[]): Site {
    const profile = this.profileFor(mxHosts);
    const key = profile.name === 'default' ? `mx:${[...new Set(mxHosts.map((h) => h.toLowerCase()))].sort().join(',')}` : `provider:${profile.name}`;
    return this.site(key, profile);
  }

  siteForSmarthost(key: string): Site {
    return this.site(key, this.smarthostProfile);
  }

  private site(key: string, profile: ShapingProfile): Site {
    let site = this.sites.get(key);
    if (!site) this.sites.set(key, (site = new Site(key, profile, this.config.shaping.rampStep)));
    return site;
  }

  /** A reply from the site: applies the first matching backoff rule of its profile. */
  observe(site: Site, reply: string): void {
    const rule = site.rule(reply);
    if (!rule) return;
    const action = site.apply(rule, reply);
    if (!action) return;
    this.logAction(site, action, rule.match);
    if (action.action !== 'reduce') this.onPause(site);
  }

  logAction(site: Site, action: SiteAction, rule?: string): void {
    this.log.emit('shaping', { site: site.key, profile: site.profile.name, ...action, rule, limit: action.limit ?? site.limit() });
  }

  /** Sites with something to show: open connections, members, or a backoff in force. */
  describe(now = Date.now()) {
    return [...this.sites.values()].map((site) => ({
      site: site.key, profile: site.profile.name, state: site.state(now), connections: site.open,
      limit: site.limit(now), maxConnections: site.profile.maxConnections, messagesPerConnection: site.profile.messagesPerConnection,
      rate: { perSecond: site.profile.ratePerSecond, perHour: site.profile.ratePerHour },
      pausedUntil: site.paused(now) ? (site.pausedUntil >= Number.MAX_SAFE_INTEGER ? 'until resumed' : new Date(site.pausedUntil).toISOString()) : undefined,
      reply: site.paused(now) ? site.pauseReply : undefined,
      destinations: site.recent, history: site.history,
    }));
  }
}
