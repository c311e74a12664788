/**
 * A payer's lanes (PovEscrow: what it allocated to each payee), found from its `LaneFunded`
 * events and read back with `laneOf`. Used to reclaim them on withdrawal and to show them.
 */
import { getAddress } from 'ethers'
import type { PovEscrowContract } from './abi/types.js'

export interface LaneState {
  payee: string
  balance: bigint
  paid: bigint
}

/** Every payee `payer` ever funded a lane to since `fromBlock`, with its lane now. */
export async function lanesOf(
  escrow: PovEscrowContract,
  payer: string,
  fromBlock = 0
): Promise<LaneState[]> {
  const logs = await escrow.queryFilter(escrow.filters.LaneFunded(payer), fromBlock)
  const payees = [
    ...new Set(logs.map((l) => getAddress(String((l as { args?: unknown[] }).args?.[1]))))
  ]
  return await Promise.all(
    payees.map(async (payee) => {
      const [balance, paid] = await escrow.laneOf(payer, payee)
      return { payee, balance: BigInt(balance), paid: BigInt(paid) }
    })
  )
}
