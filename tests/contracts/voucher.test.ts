import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet } from 'ethers'
import {
  VOUCHER_TYPES,
  isVoucherSignedByPayer,
  recoverVoucherSigner,
  signVoucher,
  voucherDigest,
  voucherDomain
} from '../../protocol/voucher.js'

const escrow = '0x5fc8d32690cc91d4c39d9d3abcbd16989f875707'

describe('protocol/voucher', () => {
  it('has exactly the agreed EIP-712 type and domain', () => {
    assert.deepEqual(
      VOUCHER_TYPES.Voucher.map((f) => `${f.type} ${f.name}`),
      ['address payer', 'address payee', 'uint256 cumulativeAmount']
    )
    assert.deepEqual(voucherDomain(escrow, 31337), {
      name: 'POV Escrow',
      version: '1',
      chainId: 31337n,
      verifyingContract: '0x5FC8d32690cc91D4c39d9d3abcBD16989F875707'
    })
  })
  it('signs and recovers; rejects tampering, another domain and garbage', async () => {
    const payer = Wallet.createRandom()
    const domain = voucherDomain(escrow, 31337)
    const v = {
      payer: payer.address,
      payee: Wallet.createRandom().address,
      cumulativeAmount: 10n ** 18n
    }
    const sig = await signVoucher(payer, domain, v)
    assert.equal(recoverVoucherSigner(domain, v, sig), payer.address)
    assert.equal(isVoucherSignedByPayer(domain, v, sig), true)
    assert.equal(
      isVoucherSignedByPayer(domain, { ...v, cumulativeAmount: 2n * 10n ** 18n }, sig),
      false
    )
    assert.equal(isVoucherSignedByPayer(voucherDomain(escrow, 1), v, sig), false)
    assert.equal(isVoucherSignedByPayer(domain, v, '0x1234'), false)
    assert.match(voucherDigest(domain, v), /^0x[0-9a-f]{64}$/)
  })
})
