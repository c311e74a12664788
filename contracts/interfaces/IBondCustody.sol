// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IBondCustody — a contract that holds POV posted to it (bonds, fees) until its rules pay
/// it back, on, or to a governance-set treasury: FaultReports and InferenceRequests.
/// @dev Each implementation keeps its own invalid-treasury error (`FaultsInvalidTreasury`,
/// `OracleInvalidTreasury`) and its own events saying who posted, got back or forfeited a bond.
interface IBondCustody {
    event TreasurySet(address oldValue, address newValue);

    /// @notice Sets where forfeited bonds go (and, in FaultReports, the network's part of a slash).
    /// Requirements: owner (the timelock); non-zero, not this contract. Emits {TreasurySet}.
    function setTreasury(address treasury) external;

    function treasury() external view returns (address);

    /// @notice The ERC-20 (POV) every bond and fee here is posted in.
    function token() external view returns (address);
}
