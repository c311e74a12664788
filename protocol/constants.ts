// Protocol ids and limits of the pov wire protocol. Spec: docs/protocol.md.

/** Expert calls: one long-lived stream carries many length-prefixed request/response frames. */
export const EXPERT_PROTOCOL = '/pov/expert/1.0.0'
/** Node info (served models, shards, manifest hash): one request, one response, then close. */
export const INFO_PROTOCOL = '/pov/info/1.0.0'

/**
 * Largest frame (the protobuf message after the varint length) either side accepts: 64 MiB
 * holds a prefill batch of 4096 rows × 4096 fp32 values (Mixtral d_model) with room for the
 * header. Checked before any buffer for the frame is allocated (docs/protocol.md#framing).
 */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024
/** Info frames are tiny; a 1 MiB cap leaves room for thousands of (layer, expert) pairs. */
export const MAX_INFO_FRAME_BYTES = 1024 * 1024
/**
 * Upper bound on rows in one request (a prefill chunk). A node may advertise less
 * (InfoResponse.maxRows); the router splits calls with more rows than that (router/routes.ts
 * maxRows, RemoteExpertExecutor).
 */
export const MAX_ROWS = 8192
/** Upper bound on the hidden size a request may claim (Mixtral 8x22B has 6144). */
export const MAX_HIDDEN = 16384
/** Requests a node processes at once on one stream (pipelining depth); more are refused. */
export const MAX_IN_FLIGHT_PER_STREAM = 256
/** Concurrent expert streams per connection, each direction (one per router is the norm). */
export const MAX_EXPERT_STREAMS = 32
/** Domain separator of the response signature, with its layout's version: bumped whenever the signed bytes change (docs/protocol.md#versions-and-required-protocols). */
export const SIGNATURE_DOMAIN = 'pov/expert-response/v2'
/** Model ids and manifest hashes are 32 bytes (sha256). */
export const MODEL_ID_BYTES = 32
