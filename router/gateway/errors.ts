// OpenAI-shaped errors: `{ error: { message, type, param, code } }` with the HTTP status a client
// library maps to its exception classes (400 BadRequest, 401, 402, 404 NotFound, 413, 503 …).

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'insufficient_quota'
  | 'not_found_error'
  | 'server_error'
  | 'service_unavailable'

export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null
  ) {
    super(message)
  }

  toJSON(): {
    error: { message: string; type: string; param: string | null; code: string | null }
  } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export const badRequest = (
  message: string,
  param: string | null = null,
  code = 'invalid_value'
): ApiError => new ApiError(400, 'invalid_request_error', message, code, param)

/**
 * Why a generation stopped early: a cost cap was reached (`request`, `gateway`), or the payer's
 * deposit is spent (`funds`: no lane covers the next voucher and nothing is left to allocate).
 */
export class SpendRefusedError extends Error {
  override name = 'SpendRefusedError'
  constructor(
    readonly cap: 'request' | 'gateway' | 'funds',
    message: string
  ) {
    super(message)
  }
}
