import type { ColumnType, Generated } from 'kysely';

/** A timestamptz column: read as Date, written as Date or ISO string. */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
export type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
export type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;
/** A JSON column: written as a JSON string or a value; read as the parsed value. */
export type Json<T = unknown> = ColumnType<T, T | string, T | string>;
export type { Generated };
