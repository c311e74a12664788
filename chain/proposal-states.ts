// The states of an OpenZeppelin Governor proposal, in a module of its own: governance.ts,
// proposals.ts, gov-actions.ts and audit/report.ts all read them, and a leaf module keeps their
// imports from going round in a cycle.

/** The states of an OpenZeppelin Governor proposal, indexed by `state(id)`. */
export const PROPOSAL_STATES = [
  'Pending',
  'Active',
  'Canceled',
  'Defeated',
  'Succeeded',
  'Queued',
  'Expired',
  'Executed'
] as const
