/** Every exchange and queue name the apps use, in one place (docs/messages.md fixes the notification ones). */
export const EXCHANGES = {
  /** Internal commands and events between the apps (topic, durable). */
  internal: 'billing.internal',
  /** docs/messages.md: the Notification service's exchange (topic, durable, no arguments). */
  notifications: 'notifications',
} as const;

export const QUEUES = {
  paymentWorker: 'billing.payment-worker',
  roleWorker: 'billing.role-worker',
  /** docs/messages.md: durable, arguments exactly `x-queue-type: quorum`, bound with `billing.#`. */
  notifications: 'notifications.billing',
} as const;

export const NOTIFICATIONS_BINDING = 'billing.#';

/** Routing keys on the internal exchange, by consumer. */
export const ROUTES = {
  payment: 'payment.#',
  role: 'role.#',
} as const;
