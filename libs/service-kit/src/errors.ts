import { PROBLEM_CODES, PROBLEM_TITLES, type Problem, type ProblemCode } from '@billing/contracts';

/** A domain or request error with a typed code that maps to a status (docs/api.md). */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.status = PROBLEM_CODES[code];
  }
}

export function problemBody(code: ProblemCode, detail: string, status: number = PROBLEM_CODES[code]): Problem {
  return { type: `/problems/${code}`, title: PROBLEM_TITLES[code], status, detail };
}
