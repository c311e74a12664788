// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/Vm.sol";
import {PovToken} from "../../contracts/PovToken.sol";
import {PovEscrow} from "../../contracts/PovEscrow.sol";
import {IPovEscrow} from "../../contracts/interfaces/IPovEscrow.sol";

/// @dev Drives the escrow with random deposits, vouchers, redemptions, unlocks and withdrawals,
/// and keeps ghost totals for the invariants.
contract EscrowHandler is TestBase {
    PovToken public immutable token;
    PovEscrow public immutable escrow;
    uint256[3] internal payerKeys = [uint256(0xA11CE), 0xB0B, 0xCA7];
    address[3] public payees = [address(0x1001), address(0x1002), address(0x1003)];

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostRedeemed; // gross (fee included)
    uint256 public ghostPaidToPayees; // net of fee
    uint256 public ghostSwept;
    /// @dev Highest cumulative amount ever signed per (payer, payee).
    mapping(address => mapping(address => uint256)) public highestVoucher;

    constructor(PovToken token_, PovEscrow escrow_) {
        token = token_;
        escrow = escrow_;
    }

    /// @dev Funds the payers from this handler's balance (the test transfers it first).
    function fundPayers() external {
        for (uint256 i; i < 3; ++i) {
            address p = vm.addr(payerKeys[i]);
            token.transfer(p, 1e30);
            vm.prank(p);
            token.approve(address(escrow), type(uint256).max);
        }
    }

    function payer(uint256 i) public view returns (address) {
        return vm.addr(payerKeys[i % 3]);
    }

    function deposit(uint256 who, uint256 amount) external {
        amount = bound(amount, 1, 1e24);
        vm.prank(payer(who));
        escrow.deposit(amount);
        ghostDeposited += amount;
    }

    function redeem(uint256 who, uint256 to, uint256 increment, bool replay) external {
        address p = payer(who);
        address payee = payees[to % 3];
        uint256 cumulative = highestVoucher[p][payee];
        if (!replay) cumulative += bound(increment, 1, 1e24);
        highestVoucher[p][payee] = cumulative;
        IPovEscrow.Voucher memory v = IPovEscrow.Voucher(p, payee, cumulative);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(payerKeys[who % 3], escrow.voucherDigest(v));
        uint256 before = escrow.totalDeposits();
        uint256 payeeBefore = token.balanceOf(payee);
        vm.prank(payee);
        try escrow.redeem(v, abi.encodePacked(r, s, sv)) {
            ghostRedeemed += before - escrow.totalDeposits();
            ghostPaidToPayees += token.balanceOf(payee) - payeeBefore;
        } catch {}
    }

    function sweep() external {
        uint256 fees = escrow.accruedFees();
        escrow.sweepFees();
        ghostSwept += fees;
    }

    function unlockWithdraw(uint256 who, uint256 wait) external {
        address p = payer(who);
        vm.prank(p);
        try escrow.unlock() {} catch {}
        vm.warp(block.timestamp + bound(wait, 0, 2 * escrow.unlockPeriod()));
        (uint256 balance,) = escrow.depositOf(p);
        vm.prank(p);
        try escrow.withdraw() {
            ghostWithdrawn += balance;
        } catch {}
    }
}

contract PovEscrowFuzzTest is TestBase {
    PovToken internal token;
    PovEscrow internal escrow;
    EscrowHandler internal handler;
    address internal constant TREASURY = address(0x7EA5);

    function setUp() public {
        token = new PovToken(address(this), 1e32, address(this));
        escrow = new PovEscrow(token, TREASURY, 250, 1 hours, address(this));
        handler = new EscrowHandler(token, escrow);
        token.transfer(address(handler), 1e31);
        handler.fundPayers();
        _targetContract(address(handler));
    }

    // ── invariants (random call sequences on the handler) ──

    /// The escrow's token balance always equals deposits minus payouts (withdrawals, payments to
    /// payees, fees swept to the treasury); what it holds is the deposits plus unswept fees.
    function invariant_balanceIsDepositsMinusPayouts() public view {
        uint256 balance = token.balanceOf(address(escrow));
        assertEq(
            balance,
            handler.ghostDeposited() - handler.ghostWithdrawn() - handler.ghostPaidToPayees() - handler.ghostSwept(),
            "escrow balance = deposits - payouts"
        );
        assertEq(escrow.totalDeposits(), handler.ghostDeposited() - handler.ghostWithdrawn() - handler.ghostRedeemed(), "totalDeposits");
        assertEq(balance, escrow.totalDeposits() + escrow.accruedFees(), "balance = deposits + accrued fees");
    }

    /// No payee is ever paid more than its highest voucher.
    function invariant_noPayeeOverpaid() public view {
        for (uint256 i; i < 3; ++i) {
            for (uint256 j; j < 3; ++j) {
                address p = handler.payer(i);
                address payee = handler.payees(j);
                assertLe(escrow.paid(p, payee), handler.highestVoucher(p, payee), "paid > highest voucher");
            }
        }
    }

    // ── fuzz: a voucher sequence against one deposit ──

    uint256 internal constant PAYER_KEY = 0xDEAD;
    address internal constant PAYEE = address(0xBEEF);
    uint256 internal fzDeposited;
    uint256 internal fzCumulative;
    uint256 internal fzReceived;
    uint256 internal fzFees;

    function testFuzz_cumulativeVouchers(uint96 depositAmount, uint96[4] memory increments, uint16 feeBps) public {
        feeBps = uint16(bound(feeBps, 0, escrow.MAX_FEE_BPS()));
        escrow.setFeeBps(feeBps);
        address payer = vm.addr(PAYER_KEY);
        fzDeposited = uint256(depositAmount) + 1;
        token.transfer(payer, fzDeposited);
        vm.startPrank(payer);
        token.approve(address(escrow), type(uint256).max);
        escrow.deposit(fzDeposited);
        vm.stopPrank();
        for (uint256 i; i < increments.length; ++i) {
            _redeemStep(payer, increments[i], feeBps, i);
        }
    }

    function _redeemStep(address payer, uint256 increment, uint16 feeBps, uint256 step) private {
        fzCumulative += increment;
        IPovEscrow.Voucher memory v = IPovEscrow.Voucher(payer, PAYEE, fzCumulative);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(PAYER_KEY, escrow.voucherDigest(v));
        uint256 payeeBefore = token.balanceOf(PAYEE);
        uint256 feesBefore = escrow.accruedFees();
        vm.prank(PAYEE);
        try escrow.redeem(v, abi.encodePacked(r, s, sv)) {
            fzReceived += token.balanceOf(PAYEE) - payeeBefore;
            fzFees += escrow.accruedFees() - feesBefore;
        } catch {}
        uint256 paid = escrow.paid(payer, PAYEE);
        // over-deposit rule: a payee is paid min(highest voucher, deposit), never more
        assertEq(paid, fzCumulative < fzDeposited ? fzCumulative : fzDeposited, "paid = min(cumulative, deposit)");
        assertEq(fzReceived + fzFees, paid, "payee + fee = paid");
        // per-redemption rounding down: the fee never exceeds feeBps of the total
        assertLe(fzFees, paid * feeBps / 10_000, "fee bound");
        assertLe(paid * feeBps / 10_000, fzFees + step + 1, "fee rounding");
        assertEq(token.balanceOf(address(escrow)), fzDeposited - fzReceived, "escrow balance");
        assertEq(escrow.totalDeposits(), fzDeposited - paid, "deposits left");
    }

    function testFuzz_forgedSignatureNeverPays(uint256 attackerKey, uint96 amount) public {
        attackerKey = bound(attackerKey, 1, 2 ** 128);
        vm.assume(amount > 0);
        address payer = handler.payer(0);
        vm.prank(payer);
        escrow.deposit(amount);
        IPovEscrow.Voucher memory v = IPovEscrow.Voucher(payer, address(0xBEEF), amount);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(attackerKey, escrow.voucherDigest(v));
        vm.assume(vm.addr(attackerKey) != payer);
        vm.prank(address(0xBEEF));
        vm.expectRevert(
            abi.encodeWithSelector(IPovEscrow.EscrowInvalidSignature.selector, payer, vm.addr(attackerKey))
        );
        escrow.redeem(v, abi.encodePacked(r, s, sv));
    }
}
