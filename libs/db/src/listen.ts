import type pg from 'pg';
import { connectClient, databaseHosts, HostChoice } from './hosts.js';

export interface ChannelListenerOptions {
  databaseUrl: string;
  /** The NOTIFY channel (a plain identifier). */
  channel: string;
  /** The connection's application_name, to find it in pg_stat_activity. */
  name: string;
  onNotify: () => void;
  /** Called each time LISTEN is in place (at start and after every reconnect): what was missed meanwhile is to be caught up. */
  onListening?: () => void;
  /** Called when the connection is lost or cannot be made; it is tried again after `retryMs`. */
  onLost?: (err: Error) => void;
  retryMs?: number;
}

/** LISTEN on a dedicated connection, LISTENed again after every reconnect, until stopped. */
export class ChannelListener {
  /** True while LISTEN is in place: a notification sent now will arrive. */
  listening = false;
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private readonly hosts: HostChoice;

  constructor(private readonly opts: ChannelListenerOptions) {
    if (!/^[a-z_][a-z0-9_]*$/.test(opts.channel)) throw new Error(`"${opts.channel}" is not a channel name`);
    // LISTEN needs the primary (a standby refuses it): the host that takes writes.
    const hosts = databaseHosts(opts.databaseUrl);
    this.hosts = new HostChoice({ ...hosts, readWrite: hosts.urls.length > 1 || hosts.readWrite });
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    let client: pg.Client | undefined;
    let lostOnce = false;
    const lost = (err: Error) => {
      if (lostOnce) return;
      lostOnce = true;
      this.listening = false;
      if (client && this.client === client) this.client = undefined;
      client?.end().catch(() => undefined);
      this.opts.onLost?.(err);
      clearTimeout(this.timer);
      if (!this.stopped) this.timer = setTimeout(() => void this.start(), this.opts.retryMs ?? 1_000);
    };
    try {
      client = await connectClient(this.hosts, { application_name: this.opts.name });
      client.on('error', lost);
      client.on('notification', () => this.opts.onNotify());
      await client.query(`LISTEN ${this.opts.channel}`);
      this.client = client;
      this.listening = true;
      this.opts.onListening?.();
    } catch (err) {
      lost(err as Error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.listening = false;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
