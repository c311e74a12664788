// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IGovernancePathGuard} from "../interfaces/IGovernancePath.sol";

/// @title PovTimelock — the TimelockController that owns every protocol parameter.
/// @dev An OpenZeppelin TimelockController (the Governor is its proposer and canceller) whose
/// delay stays within [MIN_DELAY, MAX_DELAY]: 0 would let a passed proposal act before anyone can
/// react, and a huge delay would freeze every parameter change. A new delay is also checked by the
/// governor (its path must stay below the registry's unbonding period, PovGovernor).
contract PovTimelock is TimelockController {
    uint256 public constant MIN_DELAY = 1;
    uint256 public constant MAX_DELAY = 30 days;

    IGovernancePathGuard private _guard;

    error TimelockDelayOutOfRange(uint256 delay, uint256 min, uint256 max);
    error TimelockGuardBound(address guard);

    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin
    ) TimelockController(minDelay, proposers, executors, admin) {
        _checkDelay(minDelay);
    }

    /// @notice Binds the path guard (the governor) that checks every later delay; once, by the
    /// admin (the deployer, before it renounces the role).
    function bindGuard(IGovernancePathGuard guard_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(_guard) != address(0)) revert TimelockGuardBound(address(_guard));
        _guard = guard_;
    }

    function guard() external view returns (address) {
        return address(_guard);
    }

    function updateDelay(uint256 newDelay) public override {
        _checkDelay(newDelay);
        if (address(_guard) != address(0)) _guard.checkTimelockDelay(newDelay);
        super.updateDelay(newDelay);
    }

    function _checkDelay(uint256 delay) private pure {
        if (delay < MIN_DELAY || delay > MAX_DELAY)
            revert TimelockDelayOutOfRange(delay, MIN_DELAY, MAX_DELAY);
    }
}
