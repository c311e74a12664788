/* eslint-disable require-yield */

import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum DType {
  DTYPE_UNSPECIFIED = 'DTYPE_UNSPECIFIED',
  FP32 = 'FP32',
  FP16 = 'FP16'
}

enum __DTypeValues {
  DTYPE_UNSPECIFIED = 0,
  FP32 = 1,
  FP16 = 2
}

export namespace DType {
  export const codec = (): Codec<DType, DType> => {
    return enumeration<DType>(__DTypeValues)
  }
}

export enum Status {
  OK = 'OK',
  BAD_REQUEST = 'BAD_REQUEST',
  UNKNOWN_MODEL = 'UNKNOWN_MODEL',
  EXPERT_NOT_HOSTED = 'EXPERT_NOT_HOSTED',
  BAD_SHAPE = 'BAD_SHAPE',
  BAD_DTYPE = 'BAD_DTYPE',
  PAYMENT_REQUIRED = 'PAYMENT_REQUIRED',
  PAYMENT_INVALID = 'PAYMENT_INVALID',
  OVERLOADED = 'OVERLOADED',
  INTERNAL = 'INTERNAL',
  TIMEOUT = 'TIMEOUT'
}

enum __StatusValues {
  OK = 0,
  BAD_REQUEST = 1,
  UNKNOWN_MODEL = 2,
  EXPERT_NOT_HOSTED = 3,
  BAD_SHAPE = 4,
  BAD_DTYPE = 5,
  PAYMENT_REQUIRED = 6,
  PAYMENT_INVALID = 7,
  OVERLOADED = 8,
  INTERNAL = 9,
  TIMEOUT = 10
}

export namespace Status {
  export const codec = (): Codec<Status, Status> => {
    return enumeration<Status>(__StatusValues)
  }
}

export interface Voucher {
  payer: Uint8Array<ArrayBuffer>
  payee: Uint8Array<ArrayBuffer>
  cumulativeAmount: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
  extra: Uint8Array<ArrayBuffer>
}

export namespace Voucher {
  let _codec: Codec<Voucher, Voucher>

  export const codec = (): Codec<Voucher, Voucher> => {
    if (_codec == null) {
      _codec = message<Voucher, Voucher>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.payer != null && obj.payer.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.payer)
        }

        if ((obj.payee != null && obj.payee.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.payee)
        }

        if ((obj.cumulativeAmount != null && obj.cumulativeAmount.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.cumulativeAmount)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.signature)
        }

        if ((obj.extra != null && obj.extra.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.extra)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          payer: uint8ArrayAlloc(0),
          payee: uint8ArrayAlloc(0),
          cumulativeAmount: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0),
          extra: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.payer = reader.bytes()
              break
            }
            case 2: {
              obj.payee = reader.bytes()
              break
            }
            case 3: {
              obj.cumulativeAmount = reader.bytes()
              break
            }
            case 4: {
              obj.signature = reader.bytes()
              break
            }
            case 5: {
              obj.extra = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.payer`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.payee`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.cumulativeAmount`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.extra`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface VoucherPayerFieldEvent {
    field: '$.payer'
    value: Uint8Array<ArrayBuffer>
  }

  export interface VoucherPayeeFieldEvent {
    field: '$.payee'
    value: Uint8Array<ArrayBuffer>
  }

  export interface VoucherCumulativeAmountFieldEvent {
    field: '$.cumulativeAmount'
    value: Uint8Array<ArrayBuffer>
  }

  export interface VoucherSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface VoucherExtraFieldEvent {
    field: '$.extra'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Voucher>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj as Voucher, Voucher.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Voucher>): Voucher {
    return decodeMessage(buf, Voucher.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Voucher>): Generator<VoucherPayerFieldEvent | VoucherPayeeFieldEvent | VoucherCumulativeAmountFieldEvent | VoucherSignatureFieldEvent | VoucherExtraFieldEvent> {
    return streamMessage(buf, Voucher.codec(), opts)
  }
}

export interface ExpertRequest {
  requestId: bigint
  modelId: Uint8Array<ArrayBuffer>
  layer: number
  expert: number
  dtype: DType
  rows: number
  hidden: number
  payment?: Voucher
  tensor: Uint8Array<ArrayBuffer>
}

export namespace ExpertRequest {
  let _codec: Codec<ExpertRequest, ExpertRequest>

  export const codec = (): Codec<ExpertRequest, ExpertRequest> => {
    if (_codec == null) {
      _codec = message<ExpertRequest, ExpertRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.requestId != null && obj.requestId !== 0n)) {
          w.uint32(8)
          w.uint64(obj.requestId)
        }

        if ((obj.modelId != null && obj.modelId.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.modelId)
        }

        if ((obj.layer != null && obj.layer !== 0)) {
          w.uint32(24)
          w.uint32(obj.layer)
        }

        if ((obj.expert != null && obj.expert !== 0)) {
          w.uint32(32)
          w.uint32(obj.expert)
        }

        if (obj.dtype != null && __DTypeValues[obj.dtype] !== 0) {
          w.uint32(40)
          DType.codec().encode(obj.dtype, w)
        }

        if ((obj.rows != null && obj.rows !== 0)) {
          w.uint32(48)
          w.uint32(obj.rows)
        }

        if ((obj.hidden != null && obj.hidden !== 0)) {
          w.uint32(56)
          w.uint32(obj.hidden)
        }

        if (obj.payment != null) {
          w.uint32(66)
          Voucher.codec().encode(obj.payment, w)
        }

        if ((obj.tensor != null && obj.tensor.byteLength > 0)) {
          w.uint32(122)
          w.bytes(obj.tensor)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          requestId: 0n,
          modelId: uint8ArrayAlloc(0),
          layer: 0,
          expert: 0,
          dtype: DType.DTYPE_UNSPECIFIED,
          rows: 0,
          hidden: 0,
          tensor: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.requestId = reader.uint64()
              break
            }
            case 2: {
              obj.modelId = reader.bytes()
              break
            }
            case 3: {
              obj.layer = reader.uint32()
              break
            }
            case 4: {
              obj.expert = reader.uint32()
              break
            }
            case 5: {
              obj.dtype = DType.codec().decode(reader)
              break
            }
            case 6: {
              obj.rows = reader.uint32()
              break
            }
            case 7: {
              obj.hidden = reader.uint32()
              break
            }
            case 8: {
              obj.payment = Voucher.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.payment
              })
              break
            }
            case 15: {
              obj.tensor = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.requestId`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.modelId`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.layer`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.expert`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.dtype`,
                value: DType.codec().decode(reader)
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.rows`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.hidden`,
                value: reader.uint32()
              }
              break
            }
            case 8: {
              yield * Voucher.codec().stream(reader, reader.uint32(), `${prefix}.payment`, {
                limits: opts.limits?.payment
              })

              break
            }
            case 15: {
              yield {
                field: `${prefix}.tensor`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ExpertRequestRequestIdFieldEvent {
    field: '$.requestId'
    value: bigint
  }

  export interface ExpertRequestModelIdFieldEvent {
    field: '$.modelId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertRequestLayerFieldEvent {
    field: '$.layer'
    value: number
  }

  export interface ExpertRequestExpertFieldEvent {
    field: '$.expert'
    value: number
  }

  export interface ExpertRequestDtypeFieldEvent {
    field: '$.dtype'
    value: DType
  }

  export interface ExpertRequestRowsFieldEvent {
    field: '$.rows'
    value: number
  }

  export interface ExpertRequestHiddenFieldEvent {
    field: '$.hidden'
    value: number
  }

  export interface ExpertRequestPaymentPayerFieldEvent {
    field: '$.payment.payer'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertRequestPaymentPayeeFieldEvent {
    field: '$.payment.payee'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertRequestPaymentCumulativeAmountFieldEvent {
    field: '$.payment.cumulativeAmount'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertRequestPaymentSignatureFieldEvent {
    field: '$.payment.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertRequestPaymentExtraFieldEvent {
    field: '$.payment.extra'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertRequestTensorFieldEvent {
    field: '$.tensor'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ExpertRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj as ExpertRequest, ExpertRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ExpertRequest>): ExpertRequest {
    return decodeMessage(buf, ExpertRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ExpertRequest>): Generator<ExpertRequestRequestIdFieldEvent | ExpertRequestModelIdFieldEvent | ExpertRequestLayerFieldEvent | ExpertRequestExpertFieldEvent | ExpertRequestDtypeFieldEvent | ExpertRequestRowsFieldEvent | ExpertRequestHiddenFieldEvent | ExpertRequestPaymentPayerFieldEvent | ExpertRequestPaymentPayeeFieldEvent | ExpertRequestPaymentCumulativeAmountFieldEvent | ExpertRequestPaymentSignatureFieldEvent | ExpertRequestPaymentExtraFieldEvent | ExpertRequestTensorFieldEvent> {
    return streamMessage(buf, ExpertRequest.codec(), opts)
  }
}

export interface ExpertResponse {
  requestId: bigint
  status: Status
  message: string
  dtype: DType
  rows: number
  hidden: number
  signature: Uint8Array<ArrayBuffer>
  modelId: Uint8Array<ArrayBuffer>
  layer: number
  expert: number
  tensor: Uint8Array<ArrayBuffer>
}

export namespace ExpertResponse {
  let _codec: Codec<ExpertResponse, ExpertResponse>

  export const codec = (): Codec<ExpertResponse, ExpertResponse> => {
    if (_codec == null) {
      _codec = message<ExpertResponse, ExpertResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.requestId != null && obj.requestId !== 0n)) {
          w.uint32(8)
          w.uint64(obj.requestId)
        }

        if (obj.status != null && __StatusValues[obj.status] !== 0) {
          w.uint32(16)
          Status.codec().encode(obj.status, w)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(26)
          w.string(obj.message)
        }

        if (obj.dtype != null && __DTypeValues[obj.dtype] !== 0) {
          w.uint32(32)
          DType.codec().encode(obj.dtype, w)
        }

        if ((obj.rows != null && obj.rows !== 0)) {
          w.uint32(40)
          w.uint32(obj.rows)
        }

        if ((obj.hidden != null && obj.hidden !== 0)) {
          w.uint32(48)
          w.uint32(obj.hidden)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.signature)
        }

        if ((obj.modelId != null && obj.modelId.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.modelId)
        }

        if ((obj.layer != null && obj.layer !== 0)) {
          w.uint32(72)
          w.uint32(obj.layer)
        }

        if ((obj.expert != null && obj.expert !== 0)) {
          w.uint32(80)
          w.uint32(obj.expert)
        }

        if ((obj.tensor != null && obj.tensor.byteLength > 0)) {
          w.uint32(122)
          w.bytes(obj.tensor)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          requestId: 0n,
          status: Status.OK,
          message: '',
          dtype: DType.DTYPE_UNSPECIFIED,
          rows: 0,
          hidden: 0,
          signature: uint8ArrayAlloc(0),
          modelId: uint8ArrayAlloc(0),
          layer: 0,
          expert: 0,
          tensor: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.requestId = reader.uint64()
              break
            }
            case 2: {
              obj.status = Status.codec().decode(reader)
              break
            }
            case 3: {
              obj.message = reader.string()
              break
            }
            case 4: {
              obj.dtype = DType.codec().decode(reader)
              break
            }
            case 5: {
              obj.rows = reader.uint32()
              break
            }
            case 6: {
              obj.hidden = reader.uint32()
              break
            }
            case 7: {
              obj.signature = reader.bytes()
              break
            }
            case 8: {
              obj.modelId = reader.bytes()
              break
            }
            case 9: {
              obj.layer = reader.uint32()
              break
            }
            case 10: {
              obj.expert = reader.uint32()
              break
            }
            case 15: {
              obj.tensor = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.requestId`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.status`,
                value: Status.codec().decode(reader)
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.dtype`,
                value: DType.codec().decode(reader)
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.rows`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.hidden`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.modelId`,
                value: reader.bytes()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.layer`,
                value: reader.uint32()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.expert`,
                value: reader.uint32()
              }
              break
            }
            case 15: {
              yield {
                field: `${prefix}.tensor`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ExpertResponseRequestIdFieldEvent {
    field: '$.requestId'
    value: bigint
  }

  export interface ExpertResponseStatusFieldEvent {
    field: '$.status'
    value: Status
  }

  export interface ExpertResponseMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface ExpertResponseDtypeFieldEvent {
    field: '$.dtype'
    value: DType
  }

  export interface ExpertResponseRowsFieldEvent {
    field: '$.rows'
    value: number
  }

  export interface ExpertResponseHiddenFieldEvent {
    field: '$.hidden'
    value: number
  }

  export interface ExpertResponseSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertResponseModelIdFieldEvent {
    field: '$.modelId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ExpertResponseLayerFieldEvent {
    field: '$.layer'
    value: number
  }

  export interface ExpertResponseExpertFieldEvent {
    field: '$.expert'
    value: number
  }

  export interface ExpertResponseTensorFieldEvent {
    field: '$.tensor'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ExpertResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj as ExpertResponse, ExpertResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ExpertResponse>): ExpertResponse {
    return decodeMessage(buf, ExpertResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ExpertResponse>): Generator<ExpertResponseRequestIdFieldEvent | ExpertResponseStatusFieldEvent | ExpertResponseMessageFieldEvent | ExpertResponseDtypeFieldEvent | ExpertResponseRowsFieldEvent | ExpertResponseHiddenFieldEvent | ExpertResponseSignatureFieldEvent | ExpertResponseModelIdFieldEvent | ExpertResponseLayerFieldEvent | ExpertResponseExpertFieldEvent | ExpertResponseTensorFieldEvent> {
    return streamMessage(buf, ExpertResponse.codec(), opts)
  }
}

export interface InfoRequest {}

export namespace InfoRequest {
  let _codec: Codec<InfoRequest, InfoRequest>

  export const codec = (): Codec<InfoRequest, InfoRequest> => {
    if (_codec == null) {
      _codec = message<InfoRequest, InfoRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export function encode (obj: Partial<InfoRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj as InfoRequest, InfoRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InfoRequest>): InfoRequest {
    return decodeMessage(buf, InfoRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InfoRequest>): Generator<{}> {
    return streamMessage(buf, InfoRequest.codec(), opts)
  }
}

export interface ServedModel {
  modelId: Uint8Array<ArrayBuffer>
  manifestHash: Uint8Array<ArrayBuffer>
  shards: number[]
  experts: number[]
  hidden: number
  numLayers: number
  numExperts: number
}

export namespace ServedModel {
  let _codec: Codec<ServedModel, ServedModel>

  export const codec = (): Codec<ServedModel, ServedModel> => {
    if (_codec == null) {
      _codec = message<ServedModel, ServedModel>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.modelId != null && obj.modelId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.modelId)
        }

        if ((obj.manifestHash != null && obj.manifestHash.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.manifestHash)
        }

        if (obj.shards != null && obj.shards.length > 0) {
          for (const value of obj.shards) {
            w.uint32(24)
            w.uint32(value)
          }
        }

        if (obj.experts != null && obj.experts.length > 0) {
          for (const value of obj.experts) {
            w.uint32(32)
            w.uint32(value)
          }
        }

        if ((obj.hidden != null && obj.hidden !== 0)) {
          w.uint32(40)
          w.uint32(obj.hidden)
        }

        if ((obj.numLayers != null && obj.numLayers !== 0)) {
          w.uint32(48)
          w.uint32(obj.numLayers)
        }

        if ((obj.numExperts != null && obj.numExperts !== 0)) {
          w.uint32(56)
          w.uint32(obj.numExperts)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          modelId: uint8ArrayAlloc(0),
          manifestHash: uint8ArrayAlloc(0),
          shards: [],
          experts: [],
          hidden: 0,
          numLayers: 0,
          numExperts: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.modelId = reader.bytes()
              break
            }
            case 2: {
              obj.manifestHash = reader.bytes()
              break
            }
            case 3: {
              if (opts.limits?.shards != null && obj.shards.length === opts.limits.shards) {
                throw new MaxLengthError('Decode error - repeated field "shards" had too many elements')
              }

              obj.shards.push(reader.uint32())
              break
            }
            case 4: {
              if (opts.limits?.experts != null && obj.experts.length === opts.limits.experts) {
                throw new MaxLengthError('Decode error - repeated field "experts" had too many elements')
              }

              obj.experts.push(reader.uint32())
              break
            }
            case 5: {
              obj.hidden = reader.uint32()
              break
            }
            case 6: {
              obj.numLayers = reader.uint32()
              break
            }
            case 7: {
              obj.numExperts = reader.uint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          shards: 0,
          experts: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.modelId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.manifestHash`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              if (opts.limits?.shards != null && obj.shards === opts.limits.shards) {
                throw new MaxLengthError('Streaming decode error - repeated field "shards" had too many elements')
              }

              yield {
                field: `${prefix}.shards[]`,
                index: obj.shards,
                value: reader.uint32()
              }

              obj.shards++

              break
            }
            case 4: {
              if (opts.limits?.experts != null && obj.experts === opts.limits.experts) {
                throw new MaxLengthError('Streaming decode error - repeated field "experts" had too many elements')
              }

              yield {
                field: `${prefix}.experts[]`,
                index: obj.experts,
                value: reader.uint32()
              }

              obj.experts++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.hidden`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.numLayers`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.numExperts`,
                value: reader.uint32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ServedModelModelIdFieldEvent {
    field: '$.modelId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ServedModelManifestHashFieldEvent {
    field: '$.manifestHash'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ServedModelShardsFieldEvent {
    field: '$.shards[]'
    index: number
    value: number
  }

  export interface ServedModelExpertsFieldEvent {
    field: '$.experts[]'
    index: number
    value: number
  }

  export interface ServedModelHiddenFieldEvent {
    field: '$.hidden'
    value: number
  }

  export interface ServedModelNumLayersFieldEvent {
    field: '$.numLayers'
    value: number
  }

  export interface ServedModelNumExpertsFieldEvent {
    field: '$.numExperts'
    value: number
  }

  export function encode (obj: Partial<ServedModel>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj as ServedModel, ServedModel.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ServedModel>): ServedModel {
    return decodeMessage(buf, ServedModel.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ServedModel>): Generator<ServedModelModelIdFieldEvent | ServedModelManifestHashFieldEvent | ServedModelShardsFieldEvent | ServedModelExpertsFieldEvent | ServedModelHiddenFieldEvent | ServedModelNumLayersFieldEvent | ServedModelNumExpertsFieldEvent> {
    return streamMessage(buf, ServedModel.codec(), opts)
  }
}

export interface InfoResponse {
  version: string
  models: ServedModel[]
  dtypes: DType[]
  maxFrameBytes: number
  maxRows: number
}

export namespace InfoResponse {
  let _codec: Codec<InfoResponse, InfoResponse>

  export const codec = (): Codec<InfoResponse, InfoResponse> => {
    if (_codec == null) {
      _codec = message<InfoResponse, InfoResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(10)
          w.string(obj.version)
        }

        if (obj.models != null && obj.models.length > 0) {
          for (const value of obj.models) {
            w.uint32(18)
            ServedModel.codec().encode(value, w)
          }
        }

        if (obj.dtypes != null && obj.dtypes.length > 0) {
          for (const value of obj.dtypes) {
            w.uint32(24)
            DType.codec().encode(value, w)
          }
        }

        if ((obj.maxFrameBytes != null && obj.maxFrameBytes !== 0)) {
          w.uint32(32)
          w.uint32(obj.maxFrameBytes)
        }

        if ((obj.maxRows != null && obj.maxRows !== 0)) {
          w.uint32(40)
          w.uint32(obj.maxRows)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: '',
          models: [],
          dtypes: [],
          maxFrameBytes: 0,
          maxRows: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.models != null && obj.models.length === opts.limits.models) {
                throw new MaxLengthError('Decode error - repeated field "models" had too many elements')
              }

              obj.models.push(ServedModel.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.models$
              }))
              break
            }
            case 3: {
              if (opts.limits?.dtypes != null && obj.dtypes.length === opts.limits.dtypes) {
                throw new MaxLengthError('Decode error - repeated field "dtypes" had too many elements')
              }

              obj.dtypes.push(DType.codec().decode(reader))
              break
            }
            case 4: {
              obj.maxFrameBytes = reader.uint32()
              break
            }
            case 5: {
              obj.maxRows = reader.uint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          models: 0,
          dtypes: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            case 2: {
              if (opts.limits?.models != null && obj.models === opts.limits.models) {
                throw new MaxLengthError('Streaming decode error - repeated field "models" had too many elements')
              }

              for (const evt of ServedModel.codec().stream(reader, reader.uint32(), `${prefix}.models[]`, {
                limits: opts.limits?.models$
              })) {
                yield {
                  ...evt,
                  index: obj.models
                }
              }

              obj.models++

              break
            }
            case 3: {
              if (opts.limits?.dtypes != null && obj.dtypes === opts.limits.dtypes) {
                throw new MaxLengthError('Streaming decode error - repeated field "dtypes" had too many elements')
              }

              DType.codec().stream(reader, undefined, `${prefix}.dtypes`)

              obj.dtypes++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.maxFrameBytes`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.maxRows`,
                value: reader.uint32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface InfoResponseVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export interface InfoResponseModelsModelIdFieldEvent {
    field: '$.models[].modelId'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface InfoResponseModelsManifestHashFieldEvent {
    field: '$.models[].manifestHash'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface InfoResponseModelsShardsFieldEvent {
    field: '$.models[].shards[]'
    index: number
    value: number
  }

  export interface InfoResponseModelsExpertsFieldEvent {
    field: '$.models[].experts[]'
    index: number
    value: number
  }

  export interface InfoResponseModelsHiddenFieldEvent {
    field: '$.models[].hidden'
    value: number
    index: number
  }

  export interface InfoResponseModelsNumLayersFieldEvent {
    field: '$.models[].numLayers'
    value: number
    index: number
  }

  export interface InfoResponseModelsNumExpertsFieldEvent {
    field: '$.models[].numExperts'
    value: number
    index: number
  }

  export interface InfoResponseDtypesFieldEvent {
    field: '$.dtypes[]'
    index: number
    value: DType
  }

  export interface InfoResponseMaxFrameBytesFieldEvent {
    field: '$.maxFrameBytes'
    value: number
  }

  export interface InfoResponseMaxRowsFieldEvent {
    field: '$.maxRows'
    value: number
  }

  export function encode (obj: Partial<InfoResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj as InfoResponse, InfoResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InfoResponse>): InfoResponse {
    return decodeMessage(buf, InfoResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InfoResponse>): Generator<InfoResponseVersionFieldEvent | InfoResponseModelsModelIdFieldEvent | InfoResponseModelsManifestHashFieldEvent | InfoResponseModelsShardsFieldEvent | InfoResponseModelsExpertsFieldEvent | InfoResponseModelsHiddenFieldEvent | InfoResponseModelsNumLayersFieldEvent | InfoResponseModelsNumExpertsFieldEvent | InfoResponseDtypesFieldEvent | InfoResponseMaxFrameBytesFieldEvent | InfoResponseMaxRowsFieldEvent> {
    return streamMessage(buf, InfoResponse.codec(), opts)
  }
}
