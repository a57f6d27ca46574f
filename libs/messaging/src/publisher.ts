import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Static } from 'typebox';
import type { Envelope, MessageContract } from '@billing/contracts';
import type { Broker } from './connection.js';
import { makeEnvelope, publishProperties } from './envelope.js';

/** Publishes contract messages persistent, and resolves only once the broker confirms. */
export class Publisher {
  readonly channel: ChannelWrapper;

  constructor(
    broker: Broker,
    setup: (ch: import('amqplib').ConfirmChannel) => Promise<void>,
    publishTimeoutMs = 5_000,
  ) {
    this.channel = broker.channel('publisher', setup, publishTimeoutMs);
  }

  async publish<C extends MessageContract>(
    contract: C,
    data: Static<C['schema']>,
    correlationId?: string,
  ): Promise<Envelope<Static<C['schema']>>> {
    const envelope = makeEnvelope(contract, data, correlationId);
    await this.publishEnvelope(contract.exchange, contract.routingKey, envelope);
    return envelope;
  }

  async publishEnvelope(
    exchange: string,
    routingKey: string,
    envelope: Envelope,
    headers: Record<string, unknown> = {},
  ): Promise<void> {
    await this.channel.publish(
      exchange,
      routingKey,
      Buffer.from(JSON.stringify(envelope)),
      publishProperties(envelope, headers),
    );
  }
}
