// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IPovEscrow} from "./interfaces/IPovEscrow.sol";
import {Bounds} from "./utils/Bounds.sol";

/// @title PovEscrow — client deposits, per-payee lanes, cumulative EIP-712 vouchers, pull payments.
/// @notice A client (payer) deposits POV and allocates it to the nodes it will pay: each
/// (payer, payee) pair has a **lane** that only that payee's vouchers can draw from, and that the
/// payer can take back only through `unlock()` + an unlock period during which the payee still
/// redeems (and, seeing `UnlockStarted`, stops accepting new vouchers). So a node that accepts a
/// voucher covered by its lane knows it will be paid: neither a voucher the payer signs to itself
/// nor one it signs to another node can reach that lane. Vouchers are signed over a cumulative
/// amount per (payer, payee). Redemptions move no tokens: they credit the payee's earnings, which it
/// takes out with `withdrawEarnings()` (as TicketBroker credits fees and the orchestrator calls
/// `withdrawFees`) — a token transfer costs ~15k gas, paid once per withdrawal instead of once
/// per redemption. A protocol fee in basis points of every redemption accrues for the treasury
/// and `sweepFees()` (anyone may call it) sends it (a transfer to a vote-delegating treasury
/// writes a checkpoint, ~25k gas, so it is not paid per redemption either).
/// @dev A voucher worth more than its lane pays what is left; the difference stays owed (`paid`
/// advances only by what was actually paid), so the payee can redeem the same voucher again after
/// the payer tops the lane up. See docs/contracts.md ("lanes", "over-lane").
contract PovEscrow is EIP712, Ownable, IPovEscrow {
    using SafeERC20 for IERC20;

    /// @dev keccak256("Voucher(address payer,address payee,uint256 cumulativeAmount)")
    bytes32 private constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address payer,address payee,uint256 cumulativeAmount)"
    );
    uint16 public constant MAX_FEE_BPS = 2_000; // 20 %: a hard cap governance cannot exceed
    /// @dev Bounds of the unlock period: never 0 (a payer could empty its lanes at once), never so
    /// long that `block.timestamp + period` nears 2^64 (an `unlock()` that overflows freezes deposits).
    uint64 public constant MIN_UNLOCK_PERIOD = 1 hours;
    uint64 public constant MAX_UNLOCK_PERIOD = 90 days;
    uint16 private constant BPS = 10_000;

    /// @dev One slot per payer: the unallocated balance and the unlock end (0 when not unlocking).
    struct Account {
        uint128 balance;
        uint64 unlockAt;
    }

    /// @dev Both totals in one slot: a redemption updates them with one SSTORE.
    struct Totals {
        uint128 deposits;
        uint128 fees;
    }

    /// @dev One slot per (payer, payee): what is left allocated to the payee, and what its vouchers
    /// were paid so far (gross). A redemption reads and writes this slot only (plus the totals).
    struct Lane {
        uint128 balance;
        uint128 paid;
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
    mapping(address payer => mapping(address payee => Lane)) private _lanes;
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
    function allocate(address[] calldata payees, uint256[] calldata amounts) external {
        uint256 n = payees.length;
        if (n != amounts.length) revert EscrowLengthMismatch(n, amounts.length);
        Account storage acct = _accounts[msg.sender];
        uint256 free = acct.balance;
        for (uint256 i; i < n; ++i) {
            uint256 amount = amounts[i];
            if (amount == 0) revert EscrowZeroAmount();
            if (amount > free) revert EscrowInsufficientDeposit(msg.sender, amount, free);
            address payee = payees[i];
            if (payee == address(0)) revert EscrowInvalidPayee(payee);
            Lane storage lane = _lanes[msg.sender][payee];
            unchecked {
                free -= amount;
                // lane balances come out of the deposits total, which fits 128 bits
                uint128 balance = uint128(lane.balance + amount);
                lane.balance = balance;
                emit LaneFunded(msg.sender, payee, amount, balance);
            }
        }
        acct.balance = uint128(free);
    }

    /// @inheritdoc IPovEscrow
    function unlock() external {
        Account storage acct = _accounts[msg.sender];
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
    function withdraw(address[] calldata lanes) external {
        Account memory acct = _accounts[msg.sender];
        if (acct.unlockAt == 0) revert EscrowNotUnlocking(msg.sender);
        if (block.timestamp < acct.unlockAt)
            revert EscrowUnlockPending(msg.sender, acct.unlockAt, block.timestamp);
        uint256 amount = acct.balance;
        for (uint256 i; i < lanes.length; ++i) {
            Lane storage lane = _lanes[msg.sender][lanes[i]];
            uint256 left = lane.balance;
            if (left == 0) continue;
            lane.balance = 0; // `paid` stays: old vouchers remain stale
            amount += left;
            emit LaneReclaimed(msg.sender, lanes[i], left);
        }
        delete _accounts[msg.sender];
        _totals.deposits -= uint128(amount);
        emit Withdrawn(msg.sender, amount);
        if (amount != 0) _token.safeTransfer(msg.sender, amount);
    }

    // ───────────────────────────── payee ─────────────────────────────

    /// @inheritdoc IPovEscrow
    function redeem(SignedVoucher calldata voucher) external {
        (uint256 amount, uint256 fee) = _redeem(voucher, _feeBps, true);
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
            (uint256 amount, uint256 fee) = _redeem(vouchers[i], feeBps_, false);
            // amounts come out of deposits whose total fits 128 bits
            unchecked {
                total += amount;
                totalFee += fee;
                ++i;
            }
        }
        if (total != 0) _credit(total, totalFee);
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
        return _lanes[payer][payee].paid;
    }

    /// @inheritdoc IPovEscrow
    function laneOf(
        address payer,
        address payee
    ) external view returns (uint256 balance, uint256 paid_, uint64 unlockAt) {
        Lane memory lane = _lanes[payer][payee];
        return (lane.balance, lane.paid, _accounts[payer].unlockAt);
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
        Totals memory t = _totals;
        uint256 total = uint256(t.deposits) + amount;
        // fees only ever come out of deposits, so bounding their sum keeps both in 128 bits
        if (total + t.fees > type(uint128).max) revert EscrowAmountTooLarge(amount);
        acct.balance = uint128(balance); // ≤ total, fits
        _totals.deposits = uint128(total);
        emit Deposited(payer, amount, balance);
        _token.safeTransferFrom(payer, address(this), amount);
    }

    /// @dev Checks one voucher addressed to msg.sender, debits its lane and advances `paid`;
    /// returns (gross, fee). A voucher that cannot pay reverts when `strict`, and otherwise is
    /// skipped with a {VoucherSkipped} event (a batch pays the others).
    function _redeem(
        SignedVoucher calldata v,
        uint256 feeBps_,
        bool strict
    ) private returns (uint256 amount, uint256 fee) {
        address payer = v.payer;
        uint256 cumulative = v.cumulativeAmount;
        address recovered = _signer(payer, cumulative, v.r, v.vs);
        if (recovered != payer || recovered == address(0)) {
            if (strict) revert EscrowInvalidSignature(payer, recovered);
            emit VoucherSkipped(payer, msg.sender, cumulative, SkipReason.InvalidSignature);
            return (0, 0);
        }
        Lane storage lane = _lanes[payer][msg.sender];
        Lane memory current = lane;
        if (cumulative <= current.paid) {
            if (strict) revert EscrowStaleVoucher(payer, msg.sender, cumulative, current.paid);
            emit VoucherSkipped(payer, msg.sender, cumulative, SkipReason.Stale);
            return (0, 0);
        }
        uint256 balance = current.balance;
        uint256 shortfall;
        unchecked {
            uint256 owed = cumulative - current.paid;
            if (balance == 0) {
                if (strict) revert EscrowInsufficientDeposit(payer, owed, 0);
                emit VoucherSkipped(payer, msg.sender, cumulative, SkipReason.EmptyLane);
                return (0, 0);
            }
            // over-lane: pay what is left, the rest stays owed
            if (owed <= balance) {
                amount = owed;
            } else {
                amount = balance;
                shortfall = owed - balance;
            }
            // paid + amount ≤ cumulative, which fits 128 bits (SignedVoucher.cumulativeAmount)
            lane.balance = uint128(balance - amount);
            lane.paid = uint128(current.paid + amount);
            fee = (amount * feeBps_) / BPS;
        }
        emit VoucherRedeemed(payer, msg.sender, cumulative, amount, fee, shortfall);
    }

    /// @dev The signer of Voucher(payer, msg.sender, cumulative) given (r, vs); 0 when invalid.
    function _signer(
        address payer,
        uint256 cumulative,
        bytes32 r,
        bytes32 vs
    ) private view returns (address recovered) {
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
        (recovered, , ) = ECDSA.tryRecover(digest, r, vs);
    }

    /// @dev Moves `amount` out of the deposits total: `fee` to the accrued fees, the rest to the
    /// caller's earnings.
    function _credit(uint256 amount, uint256 fee) private {
        Totals memory t = _totals;
        // amount ≤ the lanes' balances ≤ t.deposits; fee ≤ amount; fees + deposits < 2^128 (_deposit)
        unchecked {
            _totals = Totals(uint128(t.deposits - amount), uint128(t.fees + fee));
        }
        Earnings memory e = _earnings[msg.sender];
        uint256 earned = uint256(e.earned) + (amount - fee);
        uint256 withdrawn = e.withdrawn;
        if (earned > type(uint120).max) {
            // the cumulative counters would pass 2^120: rebase them on what was withdrawn, so a
            // payee that keeps withdrawing is never blocked (pending is all that must fit)
            earned -= withdrawn;
            withdrawn = 0;
            if (earned > type(uint120).max) revert EscrowAmountTooLarge(amount - fee);
            emit EarningsRebased(msg.sender, e.withdrawn);
        }
        _earnings[msg.sender] = Earnings(uint120(earned), uint120(withdrawn), true);
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
        Bounds.check("unlockPeriod", period, MIN_UNLOCK_PERIOD, MAX_UNLOCK_PERIOD);
        emit UnlockPeriodSet(_unlockPeriod, period);
        _unlockPeriod = period;
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert EscrowInvalidTreasury(treasury_);
        emit TreasurySet(_treasury, treasury_);
        _treasury = treasury_;
    }
}
