// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev Every governance setting that has a range reverts with this one error, naming the setting.
error SettingOutOfRange(string setting, uint256 value, uint256 min, uint256 max);

/// @title Bounds — the one shape of a bounded setter (registry, escrow, fault reports).
/// @dev The bounded setters that predate it keep the error their ABI names (InferenceRequests'
/// `OracleParamOutOfRange`, PovEscrow's `EscrowFeeTooHigh`, FaultReports' `FaultsShareTooHigh`,
/// the governor's `GovernorSettingOutOfRange`, the timelock's `TimelockDelayOutOfRange`): moving
/// them here would change those ABIs and the clients decoding them.
library Bounds {
    /// @dev Reverts with {SettingOutOfRange} unless min ≤ value ≤ max.
    function check(string memory setting, uint256 value, uint256 min, uint256 max) internal pure {
        if (value < min || value > max) revert SettingOutOfRange(setting, value, min, max);
    }
}
