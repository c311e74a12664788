// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IPovToken} from "./interfaces/IPovToken.sol";

/// @title PovToken — the POV ERC-20 (permit + votes).
/// @notice The whole supply is minted to the treasury at deployment. The only other mint path
/// is `mint`, which stays disabled unless governance (the owner, i.e. the timelock) enables it.
contract PovToken is ERC20, ERC20Permit, ERC20Votes, Ownable, IPovToken {
    bool private _mintingEnabled;

    constructor(
        address treasury_,
        uint256 initialSupply,
        address owner_
    ) ERC20("POV", "POV") ERC20Permit("POV") Ownable(owner_) {
        if (treasury_ == address(0)) revert TokenInvalidTreasury(treasury_);
        _mint(treasury_, initialSupply);
    }

    /// @inheritdoc IPovToken
    function mintingEnabled() external view returns (bool) {
        return _mintingEnabled;
    }

    /// @inheritdoc IPovToken
    function setMintingEnabled(bool enabled) external onlyOwner {
        emit MintingEnabledSet(_mintingEnabled, enabled);
        _mintingEnabled = enabled;
    }

    /// @inheritdoc IPovToken
    function mint(address to, uint256 amount) external onlyOwner {
        if (!_mintingEnabled) revert TokenMintingDisabled();
        _mint(to, amount);
    }

    // The following overrides are required by Solidity (ERC20 + ERC20Votes, ERC20Permit + Nonces).

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
