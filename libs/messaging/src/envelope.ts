import { randomUUID } from 'node:crypto';
import type { Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { EnvelopeSchema, type Envelope, type MessageContract } from '@billing/contracts';
import { currentCorrelationId } from '@billing/service-kit';

type Validator = ReturnType<typeof Compile>;
const validators = new WeakMap<object, Validator>();

function validator(schema: object): Validator {
  let v = validators.get(schema);
  if (!v) {
    v = Compile(schema as Parameters<typeof Compile>[0]);
    validators.set(schema, v);
  }
  return v;
}

export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

export function validateEnvelope(value: unknown): Envelope {
  const v = validator(EnvelopeSchema);
  if (!v.Check(value)) {
    const first = [...v.Errors(value)][0];
    throw new InvalidMessageError(
      `invalid envelope: ${first ? `${first.instancePath || '/'} ${first.message}` : 'unknown'}`,
    );
  }
  return value as Envelope;
}

export function validateData<C extends MessageContract>(contract: C, data: unknown): Static<C['schema']> {
  const v = validator(contract.schema);
  if (!v.Check(data)) {
    const first = [...v.Errors(data)][0];
    throw new InvalidMessageError(
      `invalid ${contract.type} data: ${first ? `${first.instancePath || '/'} ${first.message}` : 'unknown'}`,
    );
  }
  return data as Static<C['schema']>;
}

/** A new envelope for a contract's data, validated, carrying the current correlation id. */
export function makeEnvelope<C extends MessageContract>(
  contract: C,
  data: Static<C['schema']>,
  correlationId?: string,
): Envelope<Static<C['schema']>> {
  validateData(contract, data);
  return {
    id: randomUUID(),
    type: contract.type,
    version: 1,
    occurredAt: new Date().toISOString(),
    correlationId: correlationId ?? currentCorrelationId() ?? randomUUID(),
    data,
  };
}

/** AMQP properties docs/messages.md requires on every message. */
export function publishProperties(envelope: Envelope, headers: Record<string, unknown> = {}) {
  return {
    persistent: true,
    messageId: envelope.id,
    type: envelope.type,
    contentType: 'application/json',
    correlationId: envelope.correlationId,
    timestamp: Math.floor(Date.parse(envelope.occurredAt) / 1000),
    headers,
  };
}
