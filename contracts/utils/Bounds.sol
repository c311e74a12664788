// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev Every governance setting that has a range reverts with this one error, naming the setting.
error SettingOutOfRange(string setting, uint256 value, uint256 min, uint256 max);

/// @title Bounds — the one shape of a bounded setter (registry, escrow, fault reports, governance).
library Bounds {
    /// @dev Reverts with {SettingOutOfRange} unless min ≤ value ≤ max.
    function check(string memory setting, uint256 value, uint256 min, uint256 max) internal pure {
        if (value < min || value > max) revert SettingOutOfRange(setting, value, min, max);
    }
}
