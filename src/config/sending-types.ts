// The sending-quality part of the relay config (DKIM keys, bounces, traffic shaping, lane
// egress). Durations in milliseconds, as in the rest of RelayConfig.

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimKeyConfig {
  domain: string;
  selector: string;
  /** Path of a PEM private key file. */
  privateKey: string;
  algorithm: DkimAlgorithm;
}

export interface BouncesConfig {
  /** Send RFC 3464 delivery status notifications to the envelope sender. */
  dsn: boolean;
  /** Lane the notifications travel in. */
  lane: string;
  /** Add bad-mailbox hard bounces to the suppression list. */
  suppress: boolean;
}

export type BackoffAction = 'reduce' | 'pause' | 'suspend';

export interface BackoffRule {
  /** Case-insensitive regex tested against the whole reply (code, enhanced code and text). */
  match: string;
  regex: RegExp;
  action: BackoffAction;
  /** How long a pause/suspension lasts; a suspension without one lasts until resumed. */
  duration?: number;
  /** For `reduce`: connections to cut down to (default: half of the current limit). */
  connections?: number;
}

export interface ShapingProfile {
  name: string;
  /** MX host name suffixes this profile applies to ("google.com" matches "aspmx.l.google.com"). */
  mx: string[];
  maxConnections: number;
  messagesPerConnection: number;
  /** Messages per second and per hour for the whole site (0 = no limit). */
  ratePerSecond: number;
  ratePerHour: number;
  idleTimeout: number;
  backoff: BackoffRule[];
}

export interface ShapingConfig {
  /** Profiles in match order; the one named `default` applies to every other MX host. */
  profiles: ShapingProfile[];
  /** After a backoff, the connection limit grows back by one per step. */
  rampStep: number;
}

export interface LaneEgress { address?: string; helo?: string }
