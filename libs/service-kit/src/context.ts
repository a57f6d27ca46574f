import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** The correlation id of the request or message being handled (docs/processes.md). */
export interface RequestContext {
  correlationId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithCorrelation<T>(correlationId: string, fn: () => T): T {
  return storage.run({ correlationId }, fn);
}

/** Binds the rest of the current async flow to a correlation id (used by HTTP hooks). */
export function enterCorrelation(correlationId: string): void {
  storage.enterWith({ correlationId });
}

export function currentCorrelationId(): string | undefined {
  return storage.getStore()?.correlationId;
}

/** An incoming id is kept when it is short printable text, else a new one is made. */
export function acceptCorrelationId(raw: unknown): string {
  if (typeof raw === 'string' && /^[\x21-\x7e]{1,128}$/.test(raw)) return raw;
  return randomUUID();
}
