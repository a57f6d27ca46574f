/** Configuration from the environment, validated once at start-up (docs/processes.md). */
export interface VarSpec<T> {
  /** Returns the value, or throws an Error whose message says what is wrong. */
  parse(raw: string | undefined): T;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

class Missing extends Error {}
const present = (raw: string | undefined): raw is string => raw !== undefined && raw.trim() !== '';

function required<T>(fn: (raw: string) => T, fallback?: string): VarSpec<T> {
  return {
    parse(raw) {
      if (!present(raw)) {
        if (fallback === undefined) throw new Missing('is required but not set');
        return fn(fallback);
      }
      return fn(raw.trim());
    },
  };
}

function optional<T>(fn: (raw: string) => T): VarSpec<T | undefined> {
  return { parse: (raw) => (present(raw) ? fn(raw.trim()) : undefined) };
}

function parseUrl(raw: string, protocols: string[]): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error('is not a valid URL');
  }
  if (!protocols.includes(u.protocol))
    throw new Error(
      `must use ${protocols.map((p) => p.replace(':', '')).join(' or ')}, got ${u.protocol.replace(':', '')}`,
    );
  if (!u.hostname) throw new Error('has no host');
  return raw;
}

function parseInteger(raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new Error(`must be an integer, got "${raw.slice(0, 40)}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${n}`);
  return n;
}

export const env = {
  url: (protocols: string[], fallback?: string) => required((raw) => parseUrl(raw, protocols), fallback),
  optionalUrl: (protocols: string[]) => optional((raw) => parseUrl(raw, protocols)),
  /** One URL or several, comma-separated (the nodes of a cluster), each checked; kept as given. */
  urlList: (protocols: string[], fallback?: string) =>
    required((raw) => {
      const urls = raw.split(',').map((u) => u.trim());
      urls.forEach((u, i) => {
        try {
          parseUrl(u, protocols);
        } catch (err) {
          throw new Error(urls.length > 1 ? `(URL ${i + 1}) ${(err as Error).message}` : (err as Error).message);
        }
      });
      return urls.join(',');
    }, fallback),
  /**
   * A Postgres URL, which may name several hosts as libpq does (`postgres://u@db-0:5432,db-1:5432/billing`,
   * docs/guarantees.md, Postgres failover): each host checked; kept as given.
   */
  postgresUrl: (fallback?: string) =>
    required((raw) => {
      const m = /^([a-z]+:\/\/(?:[^@/?]*@)?)([^/?]*)(.*)$/i.exec(raw);
      const hosts = m ? m[2]!.split(',') : [''];
      for (const h of m && hosts.length > 1 ? hosts : [null])
        parseUrl(h === null ? raw : `${m![1]}${h}${m![3]}`, ['postgres:', 'postgresql:']);
      return raw;
    }, fallback),
  int: (fallback: number | undefined, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    required((raw) => parseInteger(raw, min, max), fallback === undefined ? undefined : String(fallback)),
  port: (fallback: number) => required((raw) => parseInteger(raw, 0, 65535), String(fallback)),
  string: (fallback?: string) => required((raw) => raw, fallback),
  optionalString: () => optional((raw) => raw),
  /** A secret that may be left unset (the feature it signs for is off), at least `min` characters when set. */
  optionalSecret: (min: number) =>
    optional((raw) => {
      if (raw.length < min) throw new Error(`must be at least ${min} characters`);
      return raw;
    }),
  oneOf: <T extends string>(values: readonly T[], fallback: T) =>
    required((raw) => {
      if (!(values as readonly string[]).includes(raw)) throw new Error(`must be one of ${values.join(', ')}`);
      return raw as T;
    }, fallback),
  msList: (fallback: string) =>
    required((raw) => raw.split(',').map((part) => parseInteger(part.trim(), 1, 365 * 86_400_000)), fallback),
};

export type ConfigOf<S extends Record<string, VarSpec<unknown>>> = { [K in keyof S]: ReturnType<S[K]['parse']> };

/** Reads every variable of `spec`; collects one line per missing or malformed one. */
export function loadConfig<S extends Record<string, VarSpec<unknown>>>(
  spec: S,
  source: NodeJS.ProcessEnv = process.env,
  check?: (c: ConfigOf<S>) => string[],
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, v] of Object.entries(spec)) {
    try {
      out[name] = v.parse(source[name]);
    } catch (err) {
      problems.push(`${name} ${(err as Error).message}`);
    }
  }
  // The cross-variable check runs too, so every problem is reported in one round (a missing JWT
  // key is not left for after the others are fixed). It sees what did parse.
  if (check) problems.push(...check(out as ConfigOf<S>));
  if (problems.length) throw new ConfigError(problems);
  return out as ConfigOf<S>;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;

/** What every process reads (docs/processes.md). */
export const baseConfig = {
  DATABASE_URL: env.postgresUrl('postgres://postgres@127.0.0.1:5432/billing'),
  /** One broker, or every node of a cluster, comma-separated: the connection moves to the next that answers. */
  AMQP_URL: env.urlList(['amqp:', 'amqps:'], 'amqp://guest:guest@127.0.0.1:5672'),
  ELASTICSEARCH_URL: env.optionalUrl(['http:', 'https:']),
  LOG_LEVEL: env.oneOf(LOG_LEVELS, 'info'),
  HOST: env.optionalString(),
  /** Postgres connections this process keeps (docs/processes.md). */
  DB_POOL_SIZE: env.int(10, 1, 200),
};

/**
 * TRUST_PROXY (docs/processes.md): whom to believe about the client's address and protocol
 * (X-Forwarded-For / -Proto): unset or `false` nobody; `true` everybody; a number of hops; or a
 * comma-separated list of addresses, CIDRs and the words loopback, linklocal, uniquelocal.
 */
export function trustProxyOf(value: string | undefined): boolean | string[] | ((addr: string, hop: number) => boolean) {
  const v = (value ?? '').trim();
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return (_addr, hop) => hop < hops;
  }
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

export const httpConfig = {
  TRUST_PROXY: env.optionalString(),
};

export const paypalConfig = {
  PAYPAL_API_BASE: env.url(['http:', 'https:'], 'https://api-m.sandbox.paypal.com'),
  PAYPAL_CLIENT_ID: env.string(),
  PAYPAL_CLIENT_SECRET: env.string(),
  PAYPAL_TIMEOUT_MS: env.int(10_000, 1, 600_000),
};

export const authServiceConfig = {
  AUTH_SERVICE_URL: env.url(['http:', 'https:']),
  AUTH_SERVICE_TOKEN: env.string(),
};

export const jwtConfig = {
  JWT_SECRET: env.optionalString(),
  JWT_PUBLIC_KEY: env.optionalString(),
  JWT_ISSUER: env.optionalString(),
  JWT_AUDIENCE: env.optionalString(),
};

/** docs/processes.md: exactly one of JWT_SECRET (at least 32 bytes) and JWT_PUBLIC_KEY, the key a PEM. */
export function checkJwt(c: { JWT_SECRET?: string | undefined; JWT_PUBLIC_KEY?: string | undefined }): string[] {
  if (c.JWT_SECRET && c.JWT_PUBLIC_KEY) return ['JWT_SECRET and JWT_PUBLIC_KEY are both set: set exactly one'];
  if (!c.JWT_SECRET && !c.JWT_PUBLIC_KEY) return ['JWT_SECRET or JWT_PUBLIC_KEY is required: set exactly one'];
  if (c.JWT_PUBLIC_KEY && !/-----BEGIN (RSA )?PUBLIC KEY-----/.test(c.JWT_PUBLIC_KEY.replace(/\\n/g, '\n'))) {
    return ['JWT_PUBLIC_KEY is malformed: must be a PEM public key'];
  }
  // An HS256 secret short enough to guess by brute force signs tokens for anyone (docs/auth.md).
  if (c.JWT_SECRET && Buffer.byteLength(c.JWT_SECRET, 'utf8') < 32) {
    return [`JWT_SECRET is too short: at least 32 bytes (${Buffer.byteLength(c.JWT_SECRET, 'utf8')} given)`];
  }
  return [];
}

/** Values that must never reach a log line, whatever key they hide under. */
export function secretValues(c: Record<string, unknown>): string[] {
  const names = ['JWT_SECRET', 'AUTH_SERVICE_TOKEN', 'PAYPAL_CLIENT_SECRET', 'PAYPAL_CLIENT_ID'];
  const fromUrls = ['DATABASE_URL', 'AMQP_URL', 'ELASTICSEARCH_URL'].flatMap((n) => {
    const v = c[n];
    if (typeof v !== 'string') return [];
    try {
      const p = decodeURIComponent(new URL(v).password);
      return p ? [p] : [];
    } catch {
      return [];
    }
  });
  return [
    ...names.map((n) => c[n]).filter((v): v is string => typeof v === 'string' && v.length >= 6),
    ...fromUrls.filter((p) => p.length >= 6),
  ];
}
