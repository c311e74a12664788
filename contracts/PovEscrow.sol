// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IPovEscrow} from "./interfaces/IPovEscrow.sol";

/// @title PovEscrow — client deposits, cumulative EIP-712 vouchers, pull payments, unlock-then-withdraw.
/// @notice Settlement in the style of Livepeer's TicketBroker: a client (payer) deposits POV,
/// pays nodes off-chain with vouchers signed over a cumulative amount per (payer, payee), and
/// can only take its deposit back through `unlock()` + an unlock period during which payees
/// can still redeem. Redemptions move no tokens: they credit the payee's earnings, which it
/// takes out with `withdrawEarnings()` (as TicketBroker credits fees and the orchestrator calls
/// `withdrawFees`) — a token transfer costs ~15k gas, paid once per withdrawal instead of once
/// per redemption. A protocol fee in basis points of every redemption accrues for the treasury
/// and `sweepFees()` (anyone may call it) sends it (a transfer to a vote-delegating treasury
/// writes a checkpoint, ~25k gas, so it is not paid per redemption either).
/// @dev A voucher worth more than the remaining deposit pays what is left; the difference
/// stays owed (`paid` advances only by what was actually paid), so the payee can redeem the same
/// voucher again after the payer tops up. See docs/contracts.md ("over-deposit").
contract PovEscrow is EIP712, Ownable, IPovEscrow {
    using SafeERC20 for IERC20;

    /// @dev keccak256("Voucher(address payer,address payee,uint256 cumulativeAmount)")
    bytes32 private constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address payer,address payee,uint256 cumulativeAmount)"
    );
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

    /// @dev What a payee was paid from a payer's vouchers (gross), as a struct so that a
    /// redemption computes the slot once for its read and its write.
    struct Paid {
        uint256 amount;
    }

    /// @dev One slot per payee, cumulative counters: pending = earned − withdrawn. `open` is set
    /// by the first credit (or by `openEarningsAccount`) and never cleared, so after it the slot
    /// is never zero again and later credits pay a non-zero → non-zero SSTORE (2.9k), not a
    /// zero → non-zero one (20k). 120 bits per counter leave room for the flag and hold 1.3e18 POV.
    struct Earnings {
        uint120 earned;
        uint120 withdrawn;
        bool open;
    }

    IERC20 private immutable _token;
    mapping(address payer => Account) private _accounts;
    mapping(address payer => mapping(address payee => Paid)) private _paid;
    Totals private _totals;
    mapping(address payee => Earnings) private _earnings;
    address private _treasury;
    uint64 private _unlockPeriod;
    uint16 private _feeBps;

    constructor(
        IERC20 token_,
        address treasury_,
        uint16 feeBps_,
        uint64 unlockPeriod_,
        address owner_
    ) EIP712("POV Escrow", "1") Ownable(owner_) {
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
    function depositWithPermit(
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        // A front-run permit (same signature used by someone else) must not block the deposit.
        try
            IERC20Permit(address(_token)).permit(
                msg.sender,
                address(this),
                amount,
                deadline,
                v,
                r,
                s
            )
        {} catch {}
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
        if (block.timestamp < acct.unlockAt)
            revert EscrowUnlockPending(msg.sender, acct.unlockAt, block.timestamp);
        delete _accounts[msg.sender];
        _totals.deposits -= acct.balance;
        emit Withdrawn(msg.sender, acct.balance);
        _token.safeTransfer(msg.sender, acct.balance);
    }

    // ───────────────────────────── payee ─────────────────────────────

    /// @inheritdoc IPovEscrow
    function redeem(SignedVoucher calldata voucher) external {
        (uint256 amount, uint256 fee) = _redeem(voucher, _feeBps);
        _credit(amount, fee);
    }

    /// @inheritdoc IPovEscrow
    function redeemBatch(SignedVoucher[] calldata vouchers) external {
        uint256 n = vouchers.length;
        if (n == 0) revert EscrowEmptyBatch();
        uint256 feeBps_ = _feeBps; // one storage read per batch
        uint256 total;
        uint256 totalFee;
        for (uint256 i; i < n;) {
            (uint256 amount, uint256 fee) = _redeem(vouchers[i], feeBps_);
            // amounts come out of deposits whose total fits 128 bits
            unchecked {
                total += amount;
                totalFee += fee;
                ++i;
            }
        }
        _credit(total, totalFee);
    }

    /// @inheritdoc IPovEscrow
    function withdrawEarnings() external {
        Earnings memory e = _earnings[msg.sender];
        uint256 pending = e.earned - e.withdrawn;
        if (pending == 0) revert EscrowNothingToWithdraw(msg.sender);
        _earnings[msg.sender] = Earnings(e.earned, e.earned, true);
        emit EarningsWithdrawn(msg.sender, pending);
        _token.safeTransfer(msg.sender, pending);
    }

    /// @inheritdoc IPovEscrow
    function openEarningsAccount() external {
        Earnings storage e = _earnings[msg.sender];
        if (e.open) return;
        e.open = true;
        emit EarningsAccountOpened(msg.sender);
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
        return
            _hashTypedDataV4(
                keccak256(
                    abi.encode(
                        VOUCHER_TYPEHASH,
                        voucher.payer,
                        voucher.payee,
                        voucher.cumulativeAmount
                    )
                )
            );
    }

    /// @inheritdoc IPovEscrow
    function depositOf(address payer) external view returns (uint256 balance, uint64 unlockAt) {
        Account memory acct = _accounts[payer];
        return (acct.balance, acct.unlockAt);
    }

    /// @inheritdoc IPovEscrow
    function paid(address payer, address payee) external view returns (uint256) {
        return _paid[payer][payee].amount;
    }

    /// @inheritdoc IPovEscrow
    function earningsOf(
        address payee
    ) external view returns (uint256 earned, uint256 withdrawn, bool open) {
        Earnings memory e = _earnings[payee];
        return (e.earned, e.withdrawn, e.open);
    }

    /// @inheritdoc IPovEscrow
    function pendingEarnings(address payee) external view returns (uint256) {
        Earnings memory e = _earnings[payee];
        return e.earned - e.withdrawn;
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

    /// @dev Checks one voucher addressed to msg.sender, debits the payer and advances `paid`;
    /// returns (gross, fee).
    function _redeem(
        SignedVoucher calldata v,
        uint256 feeBps_
    ) private returns (uint256 amount, uint256 fee) {
        address payer = v.payer;
        uint256 cumulative = v.cumulativeAmount;
        _checkSigner(payer, cumulative, v.r, v.vs);

        Paid storage paidSlot = _paid[payer][msg.sender];
        uint256 alreadyPaid = paidSlot.amount;
        if (cumulative <= alreadyPaid)
            revert EscrowStaleVoucher(payer, msg.sender, cumulative, alreadyPaid);
        Account storage acct = _accounts[payer];
        uint256 balance = acct.balance;
        uint256 shortfall;
        unchecked {
            uint256 owed = cumulative - alreadyPaid;
            if (balance == 0) revert EscrowInsufficientDeposit(payer, owed, 0);
            // over-deposit: pay what is left, the rest stays owed
            if (owed <= balance) {
                amount = owed;
            } else {
                amount = balance;
                shortfall = owed - balance;
            }
            acct.balance = uint128(balance - amount);
            paidSlot.amount = alreadyPaid + amount;
            fee = (amount * feeBps_) / BPS;
        }
        emit VoucherRedeemed(payer, msg.sender, cumulative, amount, fee, shortfall);
    }

    /// @dev Reverts unless (r, vs) is `payer`'s signature of Voucher(payer, msg.sender, cumulative).
    function _checkSigner(address payer, uint256 cumulative, bytes32 r, bytes32 vs) private view {
        // = _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, payer, msg.sender, cumulative))),
        // hashed in scratch memory (no allocation per voucher); voucherDigest() is the reference.
        bytes32 domainSeparator = _domainSeparatorV4();
        bytes32 typeHash = VOUCHER_TYPEHASH;
        bytes32 digest;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), payer)
            mstore(add(ptr, 0x40), caller())
            mstore(add(ptr, 0x60), cumulative)
            let structHash := keccak256(ptr, 0x80)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
        (address recovered, , ) = ECDSA.tryRecover(digest, r, vs);
        if (recovered != payer || recovered == address(0))
            revert EscrowInvalidSignature(payer, recovered);
    }

    /// @dev Moves `amount` out of the deposits total: `fee` to the accrued fees, the rest to the
    /// caller's earnings.
    function _credit(uint256 amount, uint256 fee) private {
        Totals memory t = _totals;
        // amount ≤ the payers' balances ≤ t.deposits; fee ≤ amount; fees + deposits ≤ supply
        unchecked {
            _totals = Totals(uint128(t.deposits - amount), uint128(t.fees + fee));
        }
        Earnings memory e = _earnings[msg.sender];
        uint256 earned = uint256(e.earned) + (amount - fee);
        if (earned > type(uint120).max) revert EscrowAmountTooLarge(amount - fee);
        _earnings[msg.sender] = Earnings(uint120(earned), e.withdrawn, true);
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
