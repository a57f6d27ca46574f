/** Every exchange and queue name the apps use, in one place (SPEC §7 fixes the notification ones). */
export const EXCHANGES = {
  /** Internal commands and events between the apps (topic, durable). */
  internal: 'billing.internal',
  /** SPEC §7: the Notification service's exchange (topic, durable, no arguments). */
  notifications: 'notifications',
} as const;

export const QUEUES = {
  paymentWorker: 'billing.payment-worker',
  roleWorker: 'billing.role-worker',
  /** SPEC §7: durable, arguments exactly `x-queue-type: quorum`, bound with `billing.#`. */
  notifications: 'notifications.billing',
} as const;

export const NOTIFICATIONS_BINDING = 'billing.#';

/** Routing keys on the internal exchange, by consumer. */
export const ROUTES = {
  payment: 'payment.#',
  role: 'role.#',
} as const;
