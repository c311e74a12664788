// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IBondCustody} from "../interfaces/IBondCustody.sol";

/// @title BondCustody — the token, the treasury and every token movement of a bond-holding
/// contract (FaultReports, InferenceRequests).
/// @dev Posting pulls a bond (or fee) in with `transferFrom` ({_pull}); releasing pays it to
/// someone ({_pay}); forfeiting pays it to the treasury ({_payTreasury}). When and to whom stays
/// with the contract that inherits this one, and so does the event saying so: it carries that
/// contract's facts (report, request) and comes right after the state change it records, before
/// the transfer. A zero amount moves nothing (InferenceRequests allows a zero fee and bond).
/// The inheriting contract constructs {Ownable} and supplies {_revertInvalidTreasury}, so its
/// ABI keeps its own error.
abstract contract BondCustody is Ownable, IBondCustody {
    using SafeERC20 for IERC20;

    IERC20 private immutable _token;
    address private _treasury;

    constructor(IERC20 token_, address treasury_) {
        _token = token_;
        _setTreasury(treasury_);
    }

    /// @inheritdoc IBondCustody
    function setTreasury(address treasury_) external onlyOwner {
        _setTreasury(treasury_);
    }

    /// @inheritdoc IBondCustody
    function treasury() public view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IBondCustody
    function token() public view returns (address) {
        return address(_token);
    }

    /// @dev Pulls `amount` from `from` (who approved it); nothing when 0.
    function _pull(address from, uint256 amount) internal {
        if (amount != 0) _token.safeTransferFrom(from, address(this), amount);
    }

    /// @dev Pays `amount` to `to`; nothing when 0.
    function _pay(address to, uint256 amount) internal {
        if (amount != 0) _token.safeTransfer(to, amount);
    }

    /// @dev Pays `amount` to the treasury; nothing when 0.
    function _payTreasury(uint256 amount) internal {
        _pay(_treasury, amount);
    }

    /// @dev Every token this contract holds (bonds, fees, and whatever else was sent to it).
    function _balance() internal view returns (uint256) {
        return _token.balanceOf(address(this));
    }

    /// @dev Must revert with the inheriting contract's invalid-treasury error naming `treasury_`.
    function _revertInvalidTreasury(address treasury_) internal pure virtual;

    /// @dev The treasury cannot be 0 (burned bonds) nor this contract (forfeits would stay here).
    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0) || treasury_ == address(this))
            _revertInvalidTreasury(treasury_);
        emit TreasurySet(_treasury, treasury_);
        _treasury = treasury_;
    }
}
