// The top-level commands and the module that registers each. `pov X` loads only the module of X,
// so a command pays for the libraries it uses (libp2p, onnxruntime, ethers…) and no others;
// `pov --help` loads none and lists the commands from this table. The summaries are the
// descriptions the modules register (tests/unit/cli/commands.test.ts keeps them equal).
import type { Command } from 'commander'

export interface CommandGroup {
  /** [name, summary] of each top-level command the module registers. */
  commands: Array<[name: string, summary: string]>
  load: () => Promise<{ register: (program: Command) => void }>
}

export const COMMAND_GROUPS: CommandGroup[] = [
  {
    commands: [['model', 'model checkpoints and bundles']],
    load: async () => await import('./model/index.js')
  },
  {
    commands: [
      ['generate', 'generate text with a model bundle (--local: every expert in this process)']
    ],
    load: async () => await import('./generate/index.js')
  },
  {
    commands: [['node', 'run an operator node that serves expert shards']],
    load: async () => await import('./node/index.js')
  },
  {
    commands: [
      ['key', 'encrypted keystores'],
      ['deposit', 'deposit POV into the escrow that pays nodes (permit: one transaction)'],
      ['unlock', 'start the unlock period before a withdrawal (nodes can still redeem meanwhile)'],
      [
        'withdraw',
        'withdraw the escrow balance and what is left in its lanes to nodes once the unlock period is over'
      ],
      ['balance', 'ETH and POV balances, escrow deposit and unlock state'],
      ['transfer', 'send POV to an address'],
      [
        'cancel-unlock',
        'stop an unlock in progress: the deposit stays in escrow and can pay nodes again'
      ],
      [
        'infer',
        'paid generation: nodes from the on-chain registry, a voucher on every expert call, a cost summary per node'
      ]
    ],
    load: async () => await import('./client/index.js')
  },
  {
    commands: [
      [
        'audit',
        'read the on-chain governance, registry and settlement history and check the served models'
      ]
    ],
    load: async () => await import('./audit/index.js')
  },
  {
    commands: [
      [
        'oracle',
        'on-chain inference requests: request, serve (fulfil and check), check, challenge, finalize'
      ]
    ],
    load: async () => await import('./oracle/index.js')
  },
  {
    commands: [['gov', 'governance: propose, vote, queue, execute; list proposals and parameters']],
    load: async () => await import('./gov/index.js')
  },
  {
    commands: [
      ['dev', 'local development chain only: fund addresses, fast-forward blocks and time']
    ],
    load: async () => await import('./dev/index.js')
  },
  {
    commands: [
      ['eval', 'perplexity of a model bundle over a text file (experts --local or on --peers)']
    ],
    load: async () => await import('./eval/index.js')
  },
  {
    commands: [
      [
        'serve',
        'OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions) and a web page, paid from your escrow deposit'
      ]
    ],
    load: async () => await import('./serve/index.js')
  }
]

/** Global options that take a value (their value is not a command name). */
const GLOBAL_WITH_VALUE = new Set(['--log-level', '--log-format', '--config'])

/** The command an argument list runs (`help X` counts as X), or undefined. */
export function commandName(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (GLOBAL_WITH_VALUE.has(a)) {
      i++
      continue
    }
    if (a.startsWith('-')) continue
    if (a === 'help') return commandName(args.slice(i + 1))
    return a
  }
  return undefined
}

/** Registers what `args` needs: the module of its command, or every command's summary. */
export async function registerCommands(program: Command, args: string[]): Promise<void> {
  const name = commandName(args)
  const group = COMMAND_GROUPS.find((g) => g.commands.some(([n]) => n === name))
  if (group != null) {
    ;(await group.load()).register(program)
    return
  }
  for (const g of COMMAND_GROUPS)
    for (const [n, summary] of g.commands) program.command(n).description(summary)
}
