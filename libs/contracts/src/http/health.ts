import { Type, type Static } from 'typebox';

const Check = Type.Union([Type.Literal('up'), Type.Literal('down')]);
/** docs/processes.md: the readiness body. */
export const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Object({ postgres: Check, rabbitmq: Check }),
});
export type Readiness = Static<typeof ReadinessSchema>;
