import { createRequire } from 'node:module'
import { defineConfig } from 'hardhat/config'
import hardhatEthers from '@nomicfoundation/hardhat-ethers'
import hardhatEthersChaiMatchers from '@nomicfoundation/hardhat-ethers-chai-matchers'
import hardhatNetworkHelpers from '@nomicfoundation/hardhat-network-helpers'
import hardhatNodeTestRunner from '@nomicfoundation/hardhat-node-test-runner'

// Compile with the pinned `solc` npm package, so no compiler download is needed (machines without
// internet access cannot make one; docs/toolchain.md). The version is read from solc's own package.json so
// that `version` and `path` can never disagree.
const require = createRequire(import.meta.url)
const solcVersion: string = require('solc/package.json').version
const soljsonPath: string = require.resolve('solc/soljson.js')

export default defineConfig({
  plugins: [hardhatEthers, hardhatEthersChaiMatchers, hardhatNetworkHelpers, hardhatNodeTestRunner],
  solidity: {
    version: solcVersion,
    path: soljsonPath,
    settings: {
      optimizer: { enabled: true, runs: 10_000 },
      evmVersion: 'cancun'
    }
  },
  paths: {
    sources: './contracts',
    tests: {
      solidity: './tests/contracts',
      nodejs: './tests/contracts'
    }
  },
  test: {
    solidity: {
      fuzz: { runs: 256 },
      invariant: { runs: 32, depth: 24 }
    }
  },
  networks: {
    localhost: {
      type: 'http',
      chainType: 'l1',
      url: 'http://127.0.0.1:8545'
    }
  }
})
