// Request bodies of the OpenAI-compatible endpoints as JSON schemas: fastify validates them (ajv)
// before a handler runs, so a malformed request is refused with 400 and nothing is generated.
// Every field is either honoured or refused: a body with a field not listed here is a 400 that
// names it (`additionalProperties: false`; server.ts words the message, UNSUPPORTED says why for
// the OpenAI fields pov does not implement).

const samplingProperties = {
  model: { type: 'string', minLength: 1, maxLength: 200 },
  max_tokens: { type: ['integer', 'null'], minimum: 1 },
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
  top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
  seed: { type: ['integer', 'null'], minimum: 0, maximum: 4294967295 },
  stop: {
    anyOf: [
      { type: 'null' },
      { type: 'string', minLength: 1, maxLength: 200 },
      {
        type: 'array',
        maxItems: 4,
        items: { type: 'string', minLength: 1, maxLength: 200 }
      }
    ]
  },
  stream: { type: ['boolean', 'null'] },
  stream_options: {
    anyOf: [
      { type: 'null' },
      {
        type: 'object',
        additionalProperties: false,
        properties: { include_usage: { type: 'boolean' } }
      }
    ]
  },
  n: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
  presence_penalty: { type: ['number', 'null'], minimum: -2, maximum: 2 },
  frequency_penalty: { type: ['number', 'null'], minimum: -2, maximum: 2 },
  response_format: {
    anyOf: [
      { type: 'null' },
      {
        type: 'object',
        required: ['type'],
        additionalProperties: false,
        properties: { type: { enum: ['text', 'json_object'] } }
      },
      {
        type: 'object',
        required: ['type', 'json_schema'],
        additionalProperties: false,
        properties: {
          type: { const: 'json_schema' },
          json_schema: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 64 },
              description: { type: 'string' },
              schema: { type: 'object' },
              strict: { type: ['boolean', 'null'] }
            }
          }
        }
      }
    ]
  },
  /** Recorded in the gateway's request log (as OpenAI uses it: to tell end users apart). */
  user: { type: 'string', maxLength: 256 },
  // vLLM's extension: generate max_tokens tokens even past the end-of-sequence token
  ignore_eos: { type: ['boolean', 'null'] }
} as const

/** Most text a request may carry, in characters (bodyLimit bounds the bytes). */
export const MAX_TEXT_CHARS = 200_000
/** Most alternatives per position `top_logprobs` / completions' `logprobs` may ask for. */
export const MAX_TOP_LOGPROBS = 20

/**
 * OpenAI request fields pov does not implement, and why: a request carrying one (with a value
 * other than its no-op default) is refused with 400 naming it, rather than answered as if it
 * had been honoured.
 */
export const UNSUPPORTED: Record<string, string> = {
  tools: 'function calling is not implemented by pov serve (the model has no tool-call format)',
  tool_choice: 'function calling is not implemented by pov serve',
  parallel_tool_calls: 'function calling is not implemented by pov serve',
  functions: 'function calling is not implemented by pov serve',
  function_call: 'function calling is not implemented by pov serve',
  logit_bias: 'per-token logit bias is not implemented by pov serve',
  n: 'pov serve returns one choice per request (n must be 1)',
  best_of: 'pov serve returns one choice per request (best_of must be 1)',
  echo: 'echoing the prompt is not implemented by pov serve',
  suffix: 'insertion (suffix) is not implemented by pov serve',
  audio: 'audio output is not implemented by pov serve',
  modalities: 'only text output is implemented by pov serve',
  prediction: 'predicted outputs are not implemented by pov serve',
  web_search_options: 'web search is not implemented by pov serve',
  reasoning_effort: 'the models pov serves have no reasoning mode',
  verbosity: 'the models pov serves have no verbosity control',
  service_tier: 'pov serve has one service tier',
  store: 'pov serve stores no completions',
  metadata: 'pov serve stores no completions (metadata has nowhere to go)',
  prompt_cache_key: 'pov serve has no prompt cache',
  safety_identifier: 'pov serve runs no safety system to pass the identifier to',
  top_k: 'top_k sampling is not implemented by pov serve (use top_p)',
  min_p: 'min_p sampling is not implemented by pov serve (use top_p)',
  repetition_penalty: 'use presence_penalty / frequency_penalty'
}

export const completionBodySchema = {
  type: 'object',
  required: ['model', 'prompt'],
  additionalProperties: false,
  properties: {
    ...samplingProperties,
    prompt: {
      anyOf: [
        { type: 'string', maxLength: MAX_TEXT_CHARS },
        // the official client sends `prompt: [text]` too; one prompt per request
        {
          type: 'array',
          minItems: 1,
          maxItems: 1,
          items: { type: 'string', maxLength: MAX_TEXT_CHARS }
        },
        // token ids
        { type: 'array', minItems: 1, maxItems: 100_000, items: { type: 'integer', minimum: 0 } }
      ]
    },
    // completions: the number of alternatives per position (0: the chosen token's only)
    logprobs: { type: ['integer', 'null'], minimum: 0, maximum: MAX_TOP_LOGPROBS },
    best_of: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
    echo: { type: ['boolean', 'null'], enum: [null, false] }
  }
} as const

const contentSchema = {
  anyOf: [
    { type: 'null' },
    { type: 'string', maxLength: MAX_TEXT_CHARS },
    {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        required: ['type', 'text'],
        additionalProperties: false,
        properties: {
          type: { const: 'text' },
          text: { type: 'string', maxLength: MAX_TEXT_CHARS }
        }
      }
    }
  ]
} as const

export const chatBodySchema = {
  type: 'object',
  required: ['model', 'messages'],
  additionalProperties: false,
  properties: {
    ...samplingProperties,
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    logprobs: { type: ['boolean', 'null'] },
    top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: MAX_TOP_LOGPROBS },
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['role'],
        additionalProperties: false,
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant'] },
          content: contentSchema,
          name: { type: 'string', maxLength: 64 },
          // the reply a client echoes back from a previous turn
          refusal: { type: 'null' }
        }
      }
    }
  }
} as const

/** How the anyOf fields may look, for an error message a person can act on. */
export const FIELD_FORMS: Record<string, string> = {
  stop: 'a string, an array of up to 4 non-empty strings, or null',
  stream_options: 'an object {include_usage: boolean} or null',
  response_format:
    "{type: 'text'}, {type: 'json_object'}, {type: 'json_schema', json_schema: {name, schema, strict?}} or null",
  prompt: 'a string, an array of one string, or an array of token ids',
  content: "a string, an array of {type: 'text', text} parts, or null"
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema'
      json_schema: { name: string; description?: string; schema?: object; strict?: boolean | null }
    }

export interface SamplingBody {
  model: string
  max_tokens?: number | null
  temperature?: number | null
  top_p?: number | null
  seed?: number | null
  stop?: string | string[] | null
  stream?: boolean | null
  stream_options?: { include_usage?: boolean } | null
  presence_penalty?: number | null
  frequency_penalty?: number | null
  response_format?: ResponseFormat | null
  user?: string
  ignore_eos?: boolean | null
}

export interface CompletionBody extends SamplingBody {
  prompt: string | [string] | number[]
  logprobs?: number | null
}

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant'
  content?: string | Array<{ type: 'text'; text: string }> | null
  name?: string
}

export interface ChatBody extends SamplingBody {
  messages: ChatMessage[]
  max_completion_tokens?: number | null
  logprobs?: boolean | null
  top_logprobs?: number | null
}
