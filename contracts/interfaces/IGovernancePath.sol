// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IGovernancePath — how long governance takes from a proposal to its execution.
/// @dev The registry keeps its unbonding period above this path (with a margin), and fault reports
/// keep an accused operator's stake frozen for at least as long, whatever governance sets later.
interface IGovernancePath {
    /// @notice (voting delay + voting period) × seconds per block + timelock delay, in seconds.
    function governancePath() external view returns (uint256);
}

/// @title IUnbondingPeriod — the registry view the governor keeps its path below.
interface IUnbondingPeriod {
    function unbondingPeriod() external view returns (uint64);
}

/// @title IGovernancePathGuard — the check the timelock asks before changing its delay.
interface IGovernancePathGuard {
    /// @notice Reverts when a timelock delay of `delay` would make the governance path (with its
    /// margin) reach the registry's unbonding period.
    function checkTimelockDelay(uint256 delay) external view;
}
