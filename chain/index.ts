/** chain/ — the chain plane shared by the node, the router and the CLI. */
export * from './contracts.js'
export * from './deployment.js'
export * from './errors.js'
export * from './peer-binding.js'
export * from './provider.js'
export * from './vouchers.js'
export { loadArtifact, CONTRACT_SOURCES } from './artifacts.js'
export type { Artifact, ContractName } from './artifacts.js'
