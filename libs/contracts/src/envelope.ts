import { Type, type Static, type TSchema } from 'typebox';

export const IsoTimestamp = Type.String({ format: 'date-time' });
export const Uuid = Type.String({ format: 'uuid' });

/** The envelope every message on the broker carries (docs/messages.md). */
export const EnvelopeSchema = Type.Object(
  {
    id: Uuid,
    type: Type.String({ minLength: 1, maxLength: 200 }),
    version: Type.Literal(1),
    occurredAt: IsoTimestamp,
    correlationId: Type.String({ minLength: 1, maxLength: 200 }),
    data: Type.Unknown(),
  },
  { additionalProperties: false },
);
export type Envelope<D = unknown> = Omit<Static<typeof EnvelopeSchema>, 'data'> & { data: D };

/** A message type: its name, version, where it is published, and its data schema. */
export interface MessageContract<T extends string = string, S extends TSchema = TSchema> {
  readonly type: T;
  readonly version: 1;
  readonly exchange: string;
  readonly routingKey: string;
  readonly schema: S;
}

export function defineMessage<T extends string, S extends TSchema>(
  type: T,
  exchange: string,
  routingKey: string,
  schema: S,
): MessageContract<T, S> {
  return { type, version: 1, exchange, routingKey, schema };
}
