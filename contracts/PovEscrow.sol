// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IPovEscrow} from "./interfaces/IPovEscrow.sol";

/// @title PovEscrow — client deposits, cumulative EIP-712 vouchers, unlock-then-withdraw.
/// @notice Settlement in the style of Livepeer's TicketBroker: a client (payer) deposits POV,
/// pays nodes off-chain with vouchers signed over a cumulative amount per (payer, payee), and
/// can only take its deposit back through `unlock()` + an unlock period during which payees
/// can still redeem. A protocol fee in basis points of every payout goes to the treasury: it
/// accrues in the escrow and `sweepFees()` (anyone may call it) sends it, so a redemption pays
/// one token transfer, not two (a transfer to a vote-delegating treasury writes a checkpoint,
/// ~25k gas more per redemption).
/// @dev A voucher worth more than the remaining deposit pays what is left; the difference
/// stays owed (`paid` advances only by what was actually paid), so the payee can redeem the same
/// voucher again after the payer tops up. See docs/contracts.md ("over-deposit").
contract PovEscrow is EIP712, Ownable, IPovEscrow {
    using SafeERC20 for IERC20;

    /// @dev keccak256("Voucher(address payer,address payee,uint256 cumulativeAmount)")
    bytes32 private constant VOUCHER_TYPEHASH =
        keccak256("Voucher(address payer,address payee,uint256 cumulativeAmount)");
    uint16 public constant MAX_FEE_BPS = 2_000; // 20 %: a hard cap governance cannot exceed
    uint16 private constant BPS = 10_000;

    /// @dev One slot per payer: balance and unlock end (0 when not unlocking).
    struct Account {
        uint128 balance;
        uint64 unlockAt;
    }

    /// @dev Both totals in one slot: a redemption updates them with one SSTORE.
    struct Totals {
        uint128 deposits;
        uint128 fees;
    }

    IERC20 private immutable _token;
    mapping(address payer => Account) private _accounts;
    mapping(address payer => mapping(address payee => uint256)) private _paid;
    Totals private _totals;
    address private _treasury;
    uint64 private _unlockPeriod;
    uint16 private _feeBps;

    constructor(IERC20 token_, address treasury_, uint16 feeBps_, uint64 unlockPeriod_, address owner_)
        EIP712("POV Escrow", "1")
        Ownable(owner_)
    {
        _token = token_;
        _setTreasury(treasury_);
        _setFeeBps(feeBps_);
        _setUnlockPeriod(unlockPeriod_);
    }

    // ───────────────────────────── payer ─────────────────────────────

    /// @inheritdoc IPovEscrow
    function deposit(uint256 amount) external {
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IPovEscrow
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external {
        // A front-run permit (same signature used by someone else) must not block the deposit.
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IPovEscrow
    function unlock() external {
        Account storage acct = _accounts[msg.sender];
        if (acct.balance == 0) revert EscrowInsufficientDeposit(msg.sender, 0, 0);
        if (acct.unlockAt != 0) revert EscrowAlreadyUnlocking(msg.sender, acct.unlockAt);
        uint64 unlockAt = uint64(block.timestamp) + _unlockPeriod;
        acct.unlockAt = unlockAt;
        emit UnlockStarted(msg.sender, unlockAt);
    }

    /// @inheritdoc IPovEscrow
    function cancelUnlock() external {
        Account storage acct = _accounts[msg.sender];
        if (acct.unlockAt == 0) revert EscrowNotUnlocking(msg.sender);
        acct.unlockAt = 0;
        emit UnlockCancelled(msg.sender);
    }

    /// @inheritdoc IPovEscrow
    function withdraw() external {
        Account memory acct = _accounts[msg.sender];
        if (acct.unlockAt == 0) revert EscrowNotUnlocking(msg.sender);
        if (block.timestamp < acct.unlockAt) revert EscrowUnlockPending(msg.sender, acct.unlockAt, block.timestamp);
        delete _accounts[msg.sender];
        _totals.deposits -= acct.balance;
        emit Withdrawn(msg.sender, acct.balance);
        _token.safeTransfer(msg.sender, acct.balance);
    }

    // ───────────────────────────── payee ─────────────────────────────

    /// @inheritdoc IPovEscrow
    function redeem(Voucher calldata voucher, bytes calldata signature) external {
        (uint256 amount, uint256 fee) = _redeem(voucher, signature);
        _payout(amount, fee);
    }

    /// @inheritdoc IPovEscrow
    function redeemBatch(Voucher[] calldata vouchers, bytes[] calldata signatures) external {
        uint256 n = vouchers.length;
        if (n == 0) revert EscrowEmptyBatch();
        if (n != signatures.length) revert EscrowLengthMismatch(n, signatures.length);
        uint256 total;
        uint256 totalFee;
        for (uint256 i; i < n; ++i) {
            (uint256 amount, uint256 fee) = _redeem(vouchers[i], signatures[i]);
            total += amount;
            totalFee += fee;
        }
        _payout(total, totalFee);
    }

    // ─────────────────────────── governance ──────────────────────────

    /// @inheritdoc IPovEscrow
    function setFeeBps(uint16 feeBps_) external onlyOwner {
        _setFeeBps(feeBps_);
    }

    /// @inheritdoc IPovEscrow
    function setUnlockPeriod(uint64 period) external onlyOwner {
        _setUnlockPeriod(period);
    }

    /// @inheritdoc IPovEscrow
    function setTreasury(address treasury_) external onlyOwner {
        _sweepFees(); // fees accrued so far belong to the outgoing treasury
        _setTreasury(treasury_);
    }

    /// @inheritdoc IPovEscrow
    function sweepFees() external {
        _sweepFees();
    }

    // ───────────────────────────── views ─────────────────────────────

    /// @inheritdoc IPovEscrow
    function voucherDigest(Voucher calldata voucher) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(VOUCHER_TYPEHASH, voucher.payer, voucher.payee, voucher.cumulativeAmount))
        );
    }

    /// @inheritdoc IPovEscrow
    function depositOf(address payer) external view returns (uint256 balance, uint64 unlockAt) {
        Account memory acct = _accounts[payer];
        return (acct.balance, acct.unlockAt);
    }

    /// @inheritdoc IPovEscrow
    function paid(address payer, address payee) external view returns (uint256) {
        return _paid[payer][payee];
    }

    /// @inheritdoc IPovEscrow
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IPovEscrow
    function feeBps() external view returns (uint16) {
        return _feeBps;
    }

    /// @inheritdoc IPovEscrow
    function unlockPeriod() external view returns (uint64) {
        return _unlockPeriod;
    }

    /// @inheritdoc IPovEscrow
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IPovEscrow
    function totalDeposits() external view returns (uint256) {
        return _totals.deposits;
    }

    /// @inheritdoc IPovEscrow
    function accruedFees() external view returns (uint256) {
        return _totals.fees;
    }

    // ──────────────────────────── internal ───────────────────────────

    function _deposit(address payer, uint256 amount) private {
        if (amount == 0) revert EscrowZeroAmount();
        Account storage acct = _accounts[payer];
        uint256 balance = uint256(acct.balance) + amount;
        uint256 total = uint256(_totals.deposits) + amount;
        if (total > type(uint128).max) revert EscrowAmountTooLarge(amount);
        acct.balance = uint128(balance); // ≤ total, fits
        _totals.deposits = uint128(total);
        emit Deposited(payer, amount, balance);
        _token.safeTransferFrom(payer, address(this), amount);
    }

    /// @dev Checks one voucher, debits the payer and credits `paid`; returns (gross, fee).
    function _redeem(Voucher calldata v, bytes calldata signature) private returns (uint256 amount, uint256 fee) {
        if (v.payee != msg.sender) revert EscrowNotPayee(v.payee, msg.sender);
        bytes32 digest = voucherDigest(v);
        (address recovered,,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (recovered != v.payer || recovered == address(0)) revert EscrowInvalidSignature(v.payer, recovered);

        uint256 alreadyPaid = _paid[v.payer][msg.sender];
        if (v.cumulativeAmount <= alreadyPaid) {
            revert EscrowStaleVoucher(v.payer, msg.sender, v.cumulativeAmount, alreadyPaid);
        }
        uint256 owed = v.cumulativeAmount - alreadyPaid;
        Account storage acct = _accounts[v.payer];
        uint256 balance = acct.balance;
        if (balance == 0) revert EscrowInsufficientDeposit(v.payer, owed, 0);
        amount = owed <= balance ? owed : balance; // over-deposit: pay what is left, the rest stays owed
        unchecked {
            acct.balance = uint128(balance - amount);
            _paid[v.payer][msg.sender] = alreadyPaid + amount;
            fee = amount * _feeBps / BPS;
        }
        emit VoucherRedeemed(v.payer, msg.sender, v.cumulativeAmount, amount, fee, owed - amount);
    }

    function _payout(uint256 amount, uint256 fee) private {
        Totals memory t = _totals;
        // amount ≤ the payers' balances ≤ t.deposits; fee ≤ amount; fees + deposits ≤ supply
        unchecked {
            _totals = Totals(uint128(t.deposits - amount), uint128(t.fees + fee));
        }
        _token.safeTransfer(msg.sender, amount - fee);
    }

    function _sweepFees() private {
        uint256 fees = _totals.fees;
        if (fees == 0) return;
        _totals.fees = 0;
        emit FeesSwept(_treasury, fees);
        _token.safeTransfer(_treasury, fees);
    }

    function _setFeeBps(uint16 feeBps_) private {
        if (feeBps_ > MAX_FEE_BPS) revert EscrowFeeTooHigh(feeBps_, MAX_FEE_BPS);
        emit FeeBpsSet(_feeBps, feeBps_);
        _feeBps = feeBps_;
    }

    function _setUnlockPeriod(uint64 period) private {
        emit UnlockPeriodSet(_unlockPeriod, period);
        _unlockPeriod = period;
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert EscrowInvalidTreasury(treasury_);
        emit TreasurySet(_treasury, treasury_);
        _treasury = treasury_;
    }
}
