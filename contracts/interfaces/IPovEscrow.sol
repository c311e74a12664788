// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IPovEscrow — client deposits, per-payee lanes, cumulative EIP-712 vouchers, pull payments.
/// @dev EIP-712 domain: name "POV Escrow", version "1", chainId, verifyingContract = escrow.
/// Type: Voucher(address payer,address payee,uint256 cumulativeAmount). Cumulative per
/// (payer, payee): redeeming credits `cumulativeAmount - paid(payer, payee)`, drawn only from the
/// lane the payer allocated to that payee ({allocate}); a lane comes back to the payer only
/// through {unlock} and the unlock period ({withdraw}). Redemptions move no
/// tokens: they credit the payee's earnings (net of the protocol fee), which the payee takes out
/// with {withdrawEarnings} (pull payments, as Livepeer's TicketBroker credits fees and the
/// orchestrator withdraws them).
interface IPovEscrow {
    /// @dev What the payer signs (EIP-712 struct `Voucher`); used by {voucherDigest}.
    struct Voucher {
        address payer;
        address payee;
        uint256 cumulativeAmount;
    }

    /// @dev A voucher as its payee submits it: the payee is the caller (`msg.sender` goes into the
    /// EIP-712 digest), the payer's signature is in ERC-2098 compact form (`r`, `vs` = s with the
    /// y-parity in its top bit; ethers: `Signature.from(sig).r` / `.yParityAndS`).
    struct SignedVoucher {
        address payer;
        uint128 cumulativeAmount;
        bytes32 r;
        bytes32 vs;
    }

    /// @dev Why {redeemBatch} skipped a voucher (see {VoucherSkipped}).
    enum SkipReason {
        None,
        InvalidSignature,
        Stale,
        EmptyLane
    }

    event Deposited(address indexed payer, uint256 amount, uint256 balance);
    /// @dev `amount` of `payer`'s deposit moved into its lane to `payee`, which now holds `balance`.
    event LaneFunded(address indexed payer, address indexed payee, uint256 amount, uint256 balance);
    /// @dev {withdraw} took back the `amount` left in the lane of (`payer`, `payee`).
    event LaneReclaimed(address indexed payer, address indexed payee, uint256 amount);
    /// @dev {redeemBatch} could not pay this voucher and went on with the others.
    event VoucherSkipped(
        address indexed payer,
        address indexed payee,
        uint256 cumulativeAmount,
        SkipReason reason
    );
    /// @dev `payee`'s earnings counters were rebased (earned −= withdrawn, withdrawn = 0) so that
    /// they fit 120 bits; `withdrawn` is what was subtracted from both.
    event EarningsRebased(address indexed payee, uint256 withdrawn);
    event UnlockStarted(address indexed payer, uint64 unlockAt);
    event UnlockCancelled(address indexed payer);
    event Withdrawn(address indexed payer, uint256 amount);
    /// @dev `amount` left the payer's deposit: `amount - fee` credited to the payee's earnings
    /// (see {earningsOf}), `fee` accrued for the treasury. `shortfall` > 0 when the deposit could
    /// not cover the voucher (still owed).
    event VoucherRedeemed(
        address indexed payer,
        address indexed payee,
        uint256 cumulativeAmount,
        uint256 amount,
        uint256 fee,
        uint256 shortfall
    );
    /// @dev `payee` took `amount` of its credited earnings out of the escrow.
    event EarningsWithdrawn(address indexed payee, uint256 amount);
    /// @dev `payee` created its earnings record ahead of its first redemption (see {openEarningsAccount}).
    event EarningsAccountOpened(address indexed payee);
    /// @dev Accrued protocol fees were sent to the treasury.
    event FeesSwept(address indexed treasury, uint256 amount);
    event FeeBpsSet(uint16 oldValue, uint16 newValue);
    event UnlockPeriodSet(uint64 oldValue, uint64 newValue);
    event TreasurySet(address oldValue, address newValue);

    error EscrowZeroAmount();
    error EscrowInvalidSignature(address payer, address recovered);
    error EscrowStaleVoucher(
        address payer,
        address payee,
        uint256 cumulativeAmount,
        uint256 alreadyPaid
    );
    error EscrowInsufficientDeposit(address payer, uint256 owed, uint256 deposit);
    error EscrowNotUnlocking(address payer);
    error EscrowAlreadyUnlocking(address payer, uint64 unlockAt);
    error EscrowUnlockPending(address payer, uint64 unlockAt, uint256 timestamp);
    error EscrowFeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    error EscrowInvalidTreasury(address treasury);
    error EscrowEmptyBatch();
    error EscrowAmountTooLarge(uint256 amount);
    error EscrowNothingToWithdraw(address payee);
    error EscrowLengthMismatch(uint256 payees, uint256 amounts);
    error EscrowInvalidPayee(address payee);

    /// @notice Deposits `amount` POV (pulled with transferFrom) for the caller.
    /// Requirements: `amount` > 0. Emits {Deposited}.
    function deposit(uint256 amount) external;

    /// @notice Same as {deposit}, approving with an ERC-2612 permit first. Emits {Deposited}.
    function depositWithPermit(
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Moves `amounts[i]` of the caller's unallocated deposit into its lane to `payees[i]`.
    /// Only that payee's vouchers draw from a lane, and the caller takes it back only through
    /// {unlock} + the unlock period, so a payee can count on its lane when it accepts a voucher.
    /// Requirements: equal lengths; each amount > 0 and covered; payees non-zero. Emits {LaneFunded}.
    function allocate(address[] calldata payees, uint256[] calldata amounts) external;

    /// @notice Starts the unlock period of the caller's deposit and all its lanes; payees can
    /// still redeem until the caller withdraws (and stop accepting new vouchers when they see it).
    /// Requirements: not already unlocking. Emits {UnlockStarted}.
    function unlock() external;

    /// @notice Cancels a pending unlock. Requirements: unlocking. Emits {UnlockCancelled}.
    function cancelUnlock() external;

    /// @notice Withdraws the caller's unallocated deposit and what is left in its lanes to
    /// `lanes` (the lanes' `paid` stays, so old vouchers remain stale); ends the unlock.
    /// Requirements: unlocking and the unlock period is over.
    /// Emits {LaneReclaimed} per non-empty lane, {Withdrawn}.
    function withdraw(address[] calldata lanes) external;

    /// @notice Redeems one voucher addressed to the caller: debits the payer's lane to the caller
    /// by `cumulativeAmount - paid` (capped by the lane; the rest stays owed, see
    /// docs/contracts.md) and credits the caller's earnings with that amount less the protocol
    /// fee. No tokens move: take them out with {withdrawEarnings}.
    /// Requirements: the payer's signature over Voucher(payer, msg.sender, cumulativeAmount) (a
    /// voucher signed for another payee fails as {EscrowInvalidSignature}); cumulative above
    /// what was already paid; a non-empty lane ({EscrowInsufficientDeposit}). Emits {VoucherRedeemed}.
    function redeem(SignedVoucher calldata voucher) external;

    /// @notice Redeems many vouchers addressed to the caller. A voucher that cannot pay (bad
    /// signature, stale, empty lane) is skipped with {VoucherSkipped}; the others are paid.
    /// Requirements: non-empty. Emits {VoucherRedeemed} or {VoucherSkipped} per voucher.
    function redeemBatch(SignedVoucher[] calldata vouchers) external;

    /// @notice Sends the caller everything credited to it and not yet withdrawn.
    /// Requirements: something is owed ({EscrowNothingToWithdraw}). Emits {EarningsWithdrawn}.
    function withdrawEarnings() external;

    /// @notice Creates the caller's earnings record now (one storage slot, zero balance), so that
    /// its first redemption does not pay for it. Optional, one-time and idempotent: a no-op
    /// once the record exists (opened before, or credited by a redemption).
    /// Emits {EarningsAccountOpened} when it opens the record.
    function openEarningsAccount() external;

    /// @notice Sends the accrued protocol fees to the treasury. Anyone may call it.
    /// Emits {FeesSwept} when there was something to send.
    function sweepFees() external;

    /// @notice Sets the protocol fee in basis points. Requirements: owner; ≤ MAX_FEE_BPS. Emits {FeeBpsSet}.
    function setFeeBps(uint16 feeBps) external;

    /// @notice Sets the unlock period in seconds.
    /// Requirements: owner; MIN_UNLOCK_PERIOD ≤ period ≤ MAX_UNLOCK_PERIOD. Emits {UnlockPeriodSet}.
    function setUnlockPeriod(uint64 period) external;

    /// @notice Sets the fee recipient, first sweeping the fees accrued for the outgoing one.
    /// Requirements: owner; non-zero. Emits {FeesSwept} (when fees accrued), {TreasurySet}.
    function setTreasury(address treasury) external;

    /// @notice The EIP-712 digest of `voucher` (what the payer signs).
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32);

    /// @notice Unallocated deposit of `payer` and when its unlock ends (0 when not unlocking).
    function depositOf(address payer) external view returns (uint256 balance, uint64 unlockAt);

    /// @notice What `payee` has already been paid (gross, fee included) from `payer`'s vouchers.
    function paid(address payer, address payee) external view returns (uint256);

    /// @notice The lane of (`payer`, `payee`): what is left in it, what was paid from it, and when
    /// the payer's unlock ends (0 when not unlocking) — everything a payee checks, in one call.
    function laneOf(
        address payer,
        address payee
    ) external view returns (uint256 balance, uint256 paid, uint64 unlockAt);

    /// @notice `payee`'s earnings: total credited by redemptions (net of fee), total withdrawn,
    /// and whether its earnings record exists (opened or ever credited).
    function earningsOf(
        address payee
    ) external view returns (uint256 earned, uint256 withdrawn, bool open);

    /// @notice What {withdrawEarnings} would send `payee` now: earned − withdrawn.
    function pendingEarnings(address payee) external view returns (uint256);

    function token() external view returns (address);
    function feeBps() external view returns (uint16);
    function unlockPeriod() external view returns (uint64);
    function treasury() external view returns (address);
    /// @notice Sum of all deposits, lanes included. The escrow's POV balance = totalDeposits + accruedFees + the
    /// payees' pending earnings.
    function totalDeposits() external view returns (uint256);
    /// @notice Protocol fees taken and not yet swept to the treasury.
    function accruedFees() external view returns (uint256);
}
