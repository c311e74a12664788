// protocol/: everything node and router share on the wire. Spec: docs/protocol.md.
export * from './constants.js'
export * from './errors.js'
export * from './fp16.js'
export * from './framing.js'
export * from './codec.js'
export * from './signature.js'
export * from './stream.js'
export {
  DType,
  ExpertRequest,
  ExpertResponse,
  InfoRequest,
  InfoResponse,
  ServedModel,
  Voucher
} from './expert.js'
