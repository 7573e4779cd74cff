/**
 * One error type for everything Frugal rejects. Every error has a stable `code` that callers and the
 * CLI can switch on, a message that names the thing at fault and what would fix it, and an optional
 * `cause`. The CLI prints `message` on one line and exits non-zero; it never shows a stack trace for a
 * FrugalError.
 */
export type ErrorCode =
  /** The bytes are not a valid ONNX protobuf (truncated, corrupt, wrong file type). */
  | 'E_DECODE'
  /** The model is structurally invalid (dangling value, cycle, missing opset...). */
  | 'E_INVALID_MODEL'
  /** External data is missing, out of range, or its location leaves the model's folder. */
  | 'E_EXTERNAL_DATA'
  /** A file could not be read or written. */
  | 'E_IO'
  /** A user-supplied option, flag or argument is wrong. */
  | 'E_USAGE'
  /** The operator, type or feature is not supported (names what is). */
  | 'E_UNSUPPORTED'
  /** Shape or type inference found an inconsistency. */
  | 'E_SHAPE'
  /** ONNX Runtime failed to create a session or run the model. */
  | 'E_RUNTIME'
  /** A dataset could not be loaded. */
  | 'E_DATA'
  /** An invariant of Frugal itself broke: a bug to report, not something the caller can fix. */
  | 'E_INTERNAL';

export interface FrugalErrorOptions {
  cause?: unknown;
  /**
   * The library option at fault, as the library spells it (`blockSize`); the message names it the
   * same way, and the CLI rewrites it to the flag the user typed (`--block-size`).
   */
  option?: string;
}

export class FrugalError extends Error {
  readonly code: ErrorCode;
  readonly option?: string;
  constructor(code: ErrorCode, message: string, options?: FrugalErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FrugalError';
    this.code = code;
    if (options?.option !== undefined) this.option = options.option;
  }
}

/** True when `e` is a FrugalError (optionally with the given code). */
export function isFrugalError(e: unknown, code?: ErrorCode): e is FrugalError {
  return e instanceof FrugalError && (code === undefined || e.code === code);
}
