// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev The few Foundry-compatible cheatcodes the POV Solidity tests use (forge-std is not
/// installed here). Hardhat 3's EDR serves them at the standard cheatcode address.
interface Vm {
    function warp(uint256 newTimestamp) external;
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function assume(bool condition) external pure;
    function addr(uint256 privateKey) external pure returns (address);
    function sign(
        uint256 privateKey,
        bytes32 digest
    ) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
}

/// @dev Minimal test base: the cheatcode handle, assertions, bounded fuzz inputs, and the
/// target-selection hook of invariant testing (as forge-std's StdInvariant names it).
abstract contract TestBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    error AssertionFailed(string what, uint256 left, uint256 right);

    address[] private _targets;

    function targetContracts() public view returns (address[] memory) {
        return _targets;
    }

    function _targetContract(address target) internal {
        _targets.push(target);
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert AssertionFailed(what, a, b);
    }

    function assertLe(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) revert AssertionFailed(what, a, b);
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (max <= min) return min;
        return min + (x % (max - min + 1));
    }
}
