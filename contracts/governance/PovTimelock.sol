// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title PovTimelock — the TimelockController that owns every protocol parameter.
/// @dev An OpenZeppelin TimelockController (the Governor is its proposer and canceller) whose
/// delay stays within [MIN_DELAY, MAX_DELAY]: 0 would let a passed proposal act before anyone can
/// react, and a huge delay would freeze every parameter change.
contract PovTimelock is TimelockController {
    uint256 public constant MIN_DELAY = 1;
    uint256 public constant MAX_DELAY = 30 days;

    error TimelockDelayOutOfRange(uint256 delay, uint256 min, uint256 max);

    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin
    ) TimelockController(minDelay, proposers, executors, admin) {
        _checkDelay(minDelay);
    }

    function updateDelay(uint256 newDelay) public override {
        _checkDelay(newDelay);
        super.updateDelay(newDelay);
    }

    function _checkDelay(uint256 delay) private pure {
        if (delay < MIN_DELAY || delay > MAX_DELAY)
            revert TimelockDelayOutOfRange(delay, MIN_DELAY, MAX_DELAY);
    }
}
