const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** Our ids are UUIDs: anything else names nothing of ours. */
export const isUuid = (s: string): boolean => UUID.test(s);
