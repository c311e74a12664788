// Chat messages → prompt text. A bundle whose tokenizer_config.json has a `chat_template` (the
// Hugging Face convention) is rendered with it (@huggingface/jinja, the same engine
// transformers.js uses); otherwise with PLAIN_TEMPLATE, documented in docs/client.md.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Template } from '@huggingface/jinja'
import type { ChatMessage } from './schemas.js'

export interface ChatPrompt {
  text: string
  /** Whether the tokenizer should add BOS itself (a HF template writes it into the text). */
  addSpecialTokens: boolean
  /** Stop sequences implied by the template (the plain one: the next "User:" turn). */
  stop: string[]
}

export interface ChatTemplate {
  readonly kind: 'bundle' | 'plain'
  render(messages: ChatMessage[]): ChatPrompt
}

/**
 * The plain template: one `Role: content` line per message (System, User, Assistant), then
 * `Assistant:` for the model to continue; generation stops at the next `\nUser:`.
 */
export const PLAIN_TEMPLATE: ChatTemplate = {
  kind: 'plain',
  render: (messages) => ({
    text: messages.map((m) => `${roleName(m.role)}: ${contentText(m)}`).join('\n') + '\nAssistant:',
    addSpecialTokens: true,
    stop: ['\nUser:']
  })
}

function roleName(role: ChatMessage['role']): string {
  return role === 'developer' || role === 'system'
    ? 'System'
    : role === 'user'
      ? 'User'
      : 'Assistant'
}

export function contentText(m: ChatMessage): string {
  if (m.content == null) return ''
  if (typeof m.content === 'string') return m.content
  return m.content.map((p) => p.text).join('')
}

/** The template of the bundle in `dir`: its tokenizer_config.json chat_template, else PLAIN_TEMPLATE. */
export async function loadChatTemplate(dir: string): Promise<ChatTemplate> {
  let cfg: Record<string, unknown>
  try {
    cfg = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<
      string,
      unknown
    >
  } catch {
    return PLAIN_TEMPLATE
  }
  return templateFromConfig(cfg)
}

export function templateFromConfig(cfg: Record<string, unknown>): ChatTemplate {
  let source = cfg.chat_template
  // the list form: [{ name: 'default', template }, …]
  if (Array.isArray(source))
    source = (source as Array<{ name?: string; template?: string }>).find(
      (t) => t.name === 'default'
    )?.template
  if (typeof source !== 'string' || source.trim() === '') return PLAIN_TEMPLATE
  const template = new Template(source)
  const token = (k: string): string => {
    const v = cfg[k]
    if (typeof v === 'string') return v
    if (
      v != null &&
      typeof v === 'object' &&
      typeof (v as { content?: unknown }).content === 'string'
    )
      return (v as { content: string }).content
    return ''
  }
  const bos = token('bos_token')
  return {
    kind: 'bundle',
    render: (messages) => {
      const text = template.render({
        messages: messages.map((m) => ({
          role: m.role === 'developer' ? 'system' : m.role,
          content: contentText(m)
        })),
        bos_token: bos,
        eos_token: token('eos_token'),
        add_generation_prompt: true
      })
      // a template that writes BOS itself must not get a second one from the tokenizer
      return { text, addSpecialTokens: bos === '' || !text.startsWith(bos), stop: [] }
    }
  }
}
