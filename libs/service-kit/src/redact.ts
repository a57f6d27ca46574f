const SENSITIVE_KEY =
  /pass(word|wd)?|secret|token|authori[sz]ation|cookie|credential|api[-_]?key|client[-_]?id|signature|^sig$|private[-_]?key|vault[-_]?id|payer[-_]?id|customer[-_]?id|account[-_]?id|approval[-_]?session/i;
const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const QUERY_SECRET =
  /([?&][^=&\s"]*(?:token|secret|password|passwd|key|code|sig|signature|auth|payerid|session)[^=&\s"]*=)[^&\s"#]*/gi;
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s"]+:)[^@/\s"]+@/gi;

export const REDACTED = '[REDACTED]';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A redactor that hides sensitive keys, JWTs, auth headers, URL secrets and known secret values. */
export function createRedactor(secrets: readonly string[] = []) {
  const known = secrets.filter((s) => s.length >= 6);
  const knownRe = known.length
    ? new RegExp(
        known
          .map(escapeRegExp)
          .sort((a, b) => b.length - a.length)
          .join('|'),
        'g',
      )
    : null;

  const redactString = (s: string): string => {
    let out = s;
    if (knownRe) out = out.replace(knownRe, REDACTED);
    return out
      .replace(JWT, REDACTED)
      .replace(AUTH_SCHEME, (_m, scheme: string) => `${scheme} ${REDACTED}`)
      .replace(QUERY_SECRET, `$1${REDACTED}`)
      .replace(URL_PASSWORD, `$1${REDACTED}@`);
  };

  const walk = (value: unknown, depth: number, seen: WeakSet<object>): unknown => {
    if (typeof value === 'string') return redactString(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth > 8 || seen.has(value)) return '[Truncated]';
    seen.add(value);
    if (Buffer.isBuffer(value)) return `[Buffer ${value.length}]`;
    if (value instanceof Error) {
      return {
        name: value.name,
        message: redactString(value.message),
        stack: value.stack ? redactString(value.stack) : undefined,
        ...(walk({ ...value }, depth + 1, seen) as object),
      };
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1, seen));
    const out: Record<string | symbol, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] =
        SENSITIVE_KEY.test(k) && v !== null && v !== undefined && typeof v !== 'boolean'
          ? REDACTED
          : walk(v, depth + 1, seen);
    }
    return out;
  };

  return {
    string: redactString,
    /** Redacts a winston info object in place, keeping its Symbol keys. */
    info<T extends Record<string | symbol, unknown>>(info: T): T {
      const seen = new WeakSet<object>();
      for (const k of Object.keys(info)) {
        if (k === 'level') continue;
        const v = info[k];
        (info as Record<string, unknown>)[k] =
          SENSITIVE_KEY.test(k) && v !== null && v !== undefined && typeof v !== 'boolean'
            ? REDACTED
            : walk(v, 0, seen);
      }
      return info;
    },
  };
}
