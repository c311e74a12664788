// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IPovToken — events and errors of the POV token beyond ERC-20/2612/5805.
interface IPovToken {
    /// @dev Governance switched the (off by default) mint path on or off.
    event MintingEnabledSet(bool oldValue, bool newValue);

    /// @dev `mint` was called while minting is disabled.
    error TokenMintingDisabled();
    /// @dev The initial treasury is the zero address.
    error TokenInvalidTreasury(address treasury);

    /// @notice Whether governance has enabled minting.
    function mintingEnabled() external view returns (bool);

    /// @notice Enables or disables minting.
    /// Requirements: caller is the owner (the timelock).
    /// Emits {MintingEnabledSet}.
    function setMintingEnabled(bool enabled) external;

    /// @notice Mints `amount` to `to`.
    /// Requirements: caller is the owner (the timelock); minting is enabled.
    /// Emits {IERC20-Transfer}.
    function mint(address to, uint256 amount) external;
}
