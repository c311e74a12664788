// Request bodies of the OpenAI-compatible endpoints as JSON schemas: fastify validates them (ajv)
// before a handler runs, so a malformed request is refused with 400 and nothing is generated.
// Fields that OpenAI clients send but pov does not implement are accepted and ignored unless a
// non-default value would change the answer (`n`, `logprobs`, `echo`, `best_of`): those are 400.

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
      { type: 'object', properties: { include_usage: { type: 'boolean' } } }
    ]
  },
  n: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
  best_of: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
  logprobs: { type: ['null', 'boolean', 'integer'], enum: [null, false, 0] },
  user: { type: 'string', maxLength: 256 },
  // vLLM's extension: generate max_tokens tokens even past the end-of-sequence token
  ignore_eos: { type: ['boolean', 'null'] }
} as const

/** Most text a request may carry, in characters (bodyLimit bounds the bytes). */
export const MAX_TEXT_CHARS = 200_000

export const completionBodySchema = {
  type: 'object',
  required: ['model', 'prompt'],
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
  properties: {
    ...samplingProperties,
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant'] },
          content: contentSchema,
          name: { type: 'string', maxLength: 64 }
        }
      }
    }
  }
} as const

export interface SamplingBody {
  model: string
  max_tokens?: number | null
  temperature?: number | null
  top_p?: number | null
  seed?: number | null
  stop?: string | string[] | null
  stream?: boolean | null
  stream_options?: { include_usage?: boolean } | null
  user?: string
  ignore_eos?: boolean | null
}

export interface CompletionBody extends SamplingBody {
  prompt: string | [string] | number[]
}

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant'
  content?: string | Array<{ type: 'text'; text: string }> | null
  name?: string
}

export interface ChatBody extends SamplingBody {
  messages: ChatMessage[]
  max_completion_tokens?: number | null
}
