// A load scenario as the engines read it: every duration in ms, every size in bytes, every share
// as a fraction. The YAML accepts human units (see scenario/parse.ts and scenarios/README.md).

export type Lane = 'transactional' | 'member' | 'bulk';
export const LANES: readonly Lane[] = ['transactional', 'member', 'bulk'];

/** k6-style stage: the rate moves linearly from the previous target to `target` msgs/s over `duration`. */
export interface Stage { target: number; duration: number }

/** Lognormal message size; median === p95 means a fixed size. */
export interface SizeDist { median: number; p95: number }

/** A Poisson stream (transactional reminders, member mail) that runs while the newsletter flows. */
export interface StreamSpec { rate: number; size: SizeDist; from: string }

export interface ProviderWeight { domain: string; weight: number }

export interface Threshold { expression: string; metric: string; op: '<' | '<=' | '>' | '>=' | '=='; value: number }

export interface Scenario {
  name: string;
  description: string;
  source: string;
  /** Bulk newsletter messages (the volume); the Poisson streams come on top. */
  messages: number;
  /** 'max' = closed loop, as fast as the target accepts; otherwise open-loop stages. */
  rate: 'max' | Stage[];
  /** Start rate for the first stage (msgs/s). */
  startRate: number;
  /** Hard cap on the sending time (ms); 0 = none. */
  duration: number;
  connections: number;
  messagesPerConnection: number;
  pipelining: boolean;
  bulk: { from: string; size: SizeDist; campaign: string };
  transactional?: StreamSpec;
  member?: StreamSpec;
  recipients: {
    providers: ProviderWeight[];
    corporate: { weight: number; domains: number; zipf: number };
    unknown: number;
  };
  unsubscribeBase: string;
  thresholds: Threshold[];
  drainTimeout: number;
}
