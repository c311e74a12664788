// Error codes shared by node and router; sent over the wire as `Status` (protocol/expert.proto).
import { Status } from './expert.js'

export { Status }

/** A failure that has a wire status code (Lodestar-style: matched by `name`, counted by `code`). */
export class ProtocolError extends Error {
  override name = 'ProtocolError'
  constructor(
    readonly code: Status,
    message: string
  ) {
    super(message)
  }
}

/**
 * How a node's PAYMENT_INVALID message starts when the voucher is genuine but does not cover the
 * node's count of the payer's charges (a client resyncs on it: router/payer.ts `resync`).
 */
export const UNDERPAID = 'underpaid:'

/**
 * Thrown by a node's `verifyPayment` hook to refuse a call; the node answers with `code`
 * (PAYMENT_REQUIRED when no voucher was attached, PAYMENT_INVALID when it does not verify).
 */
export class PaymentError extends ProtocolError {
  override name = 'PaymentError'
  constructor(message: string, code: Status = Status.PAYMENT_REQUIRED) {
    super(code, message)
  }
}

/**
 * A frame whose message breaks the decoding rules (docs/protocol.md#decoding-rules): answered
 * with `code`, under `requestId` when that field was readable (else under request id 0).
 */
export class MalformedMessageError extends ProtocolError {
  override name = 'MalformedMessageError'
  constructor(
    code: Status,
    message: string,
    readonly requestId?: bigint
  ) {
    super(code, message)
  }
}

/** A frame that cannot be decoded at all; the stream is reset (there is no request id to answer). */
export class InvalidFrameError extends Error {
  override name = 'InvalidFrameError'
}

/** A frame whose declared length is over the cap; raised before anything is allocated for it. */
export class FrameTooLargeError extends InvalidFrameError {
  override name = 'FrameTooLargeError'
  constructor(
    readonly length: number,
    readonly max: number
  ) {
    super(`frame of ${length} bytes exceeds the ${max}-byte limit`)
  }
}

/** A remote node answered with a non-OK status. */
export class RemoteError extends Error {
  override name = 'RemoteError'
  constructor(
    readonly code: Status,
    message: string
  ) {
    super(`${code}: ${message}`)
  }
}
