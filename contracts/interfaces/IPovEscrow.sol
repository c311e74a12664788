// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IPovEscrow — client deposits and cumulative EIP-712 vouchers.
/// @dev EIP-712 domain: name "POV Escrow", version "1", chainId, verifyingContract = escrow.
/// Type: Voucher(address payer,address payee,uint256 cumulativeAmount). Cumulative per
/// (payer, payee): redeeming pays `cumulativeAmount - paid(payer, payee)`.
interface IPovEscrow {
    struct Voucher {
        address payer;
        address payee;
        uint256 cumulativeAmount;
    }

    event Deposited(address indexed payer, uint256 amount, uint256 balance);
    event UnlockStarted(address indexed payer, uint64 unlockAt);
    event UnlockCancelled(address indexed payer);
    event Withdrawn(address indexed payer, uint256 amount);
    /// @dev `amount` left the payer's deposit: `amount - fee` to the payee, `fee` accrued for the
    /// treasury. `shortfall` > 0 when the deposit could not cover the voucher (still owed).
    event VoucherRedeemed(
        address indexed payer,
        address indexed payee,
        uint256 cumulativeAmount,
        uint256 amount,
        uint256 fee,
        uint256 shortfall
    );
    /// @dev Accrued protocol fees were sent to the treasury.
    event FeesSwept(address indexed treasury, uint256 amount);
    event FeeBpsSet(uint16 oldValue, uint16 newValue);
    event UnlockPeriodSet(uint64 oldValue, uint64 newValue);
    event TreasurySet(address oldValue, address newValue);

    error EscrowZeroAmount();
    error EscrowInvalidSignature(address payer, address recovered);
    error EscrowNotPayee(address payee, address caller);
    error EscrowStaleVoucher(address payer, address payee, uint256 cumulativeAmount, uint256 alreadyPaid);
    error EscrowInsufficientDeposit(address payer, uint256 owed, uint256 deposit);
    error EscrowNotUnlocking(address payer);
    error EscrowAlreadyUnlocking(address payer, uint64 unlockAt);
    error EscrowUnlockPending(address payer, uint64 unlockAt, uint256 timestamp);
    error EscrowFeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    error EscrowInvalidTreasury(address treasury);
    error EscrowLengthMismatch(uint256 vouchers, uint256 signatures);
    error EscrowEmptyBatch();
    error EscrowAmountTooLarge(uint256 amount);

    /// @notice Deposits `amount` POV (pulled with transferFrom) for the caller.
    /// Requirements: `amount` > 0. Emits {Deposited}.
    function deposit(uint256 amount) external;

    /// @notice Same as {deposit}, approving with an ERC-2612 permit first. Emits {Deposited}.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Starts the unlock period; payees can still redeem until the caller withdraws.
    /// Requirements: a non-zero deposit; not already unlocking. Emits {UnlockStarted}.
    function unlock() external;

    /// @notice Cancels a pending unlock. Requirements: unlocking. Emits {UnlockCancelled}.
    function cancelUnlock() external;

    /// @notice Withdraws the caller's whole deposit.
    /// Requirements: unlocking and the unlock period is over. Emits {Withdrawn}.
    function withdraw() external;

    /// @notice Redeems one voucher: pays the caller `cumulativeAmount - paid` (less the fee),
    /// capped by the payer's deposit (the rest stays owed, see docs/contracts.md).
    /// Requirements: caller is the voucher's payee; signature by the payer; cumulative above
    /// what was already paid; a non-zero deposit. Emits {VoucherRedeemed}.
    function redeem(Voucher calldata voucher, bytes calldata signature) external;

    /// @notice Redeems many vouchers atomically (any invalid voucher reverts the batch).
    /// Requirements: as {redeem} for each; equal, non-zero lengths. Emits {VoucherRedeemed} per voucher.
    function redeemBatch(Voucher[] calldata vouchers, bytes[] calldata signatures) external;

    /// @notice Sends the accrued protocol fees to the treasury. Anyone may call it.
    /// Emits {FeesSwept} when there was something to send.
    function sweepFees() external;

    /// @notice Sets the protocol fee in basis points. Requirements: owner; ≤ MAX_FEE_BPS. Emits {FeeBpsSet}.
    function setFeeBps(uint16 feeBps) external;

    /// @notice Sets the unlock period in seconds. Requirements: owner. Emits {UnlockPeriodSet}.
    function setUnlockPeriod(uint64 period) external;

    /// @notice Sets the fee recipient, first sweeping the fees accrued for the outgoing one.
    /// Requirements: owner; non-zero. Emits {FeesSwept} (when fees accrued), {TreasurySet}.
    function setTreasury(address treasury) external;

    /// @notice The EIP-712 digest of `voucher` (what the payer signs).
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32);

    /// @notice Deposit of `payer` and when its unlock ends (0 when not unlocking).
    function depositOf(address payer) external view returns (uint256 balance, uint64 unlockAt);

    /// @notice What `payee` has already been paid (gross, fee included) from `payer`'s vouchers.
    function paid(address payer, address payee) external view returns (uint256);

    function token() external view returns (address);
    function feeBps() external view returns (uint16);
    function unlockPeriod() external view returns (uint64);
    function treasury() external view returns (address);
    /// @notice Sum of all deposits. The escrow's POV balance = totalDeposits + accruedFees.
    function totalDeposits() external view returns (uint256);
    /// @notice Protocol fees taken and not yet swept to the treasury.
    function accruedFees() external view returns (uint256);
}
