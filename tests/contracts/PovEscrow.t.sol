// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase, Vm} from "./utils/Vm.sol";
import {PovToken} from "../../contracts/PovToken.sol";
import {PovEscrow} from "../../contracts/PovEscrow.sol";
import {IPovEscrow} from "../../contracts/interfaces/IPovEscrow.sol";

/// @dev The payer's signature of `v` in the escrow's compact form (ERC-2098: y-parity in the top bit of s).
function signCompact(
    Vm vm_,
    uint256 key,
    PovEscrow escrow,
    IPovEscrow.Voucher memory v
) view returns (IPovEscrow.SignedVoucher memory) {
    (uint8 sv, bytes32 r, bytes32 s) = vm_.sign(key, escrow.voucherDigest(v));
    bytes32 vs = bytes32(uint256(s) | (uint256(sv - 27) << 255));
    return IPovEscrow.SignedVoucher(v.payer, uint128(v.cumulativeAmount), r, vs);
}

/// @dev Drives the escrow with random deposits, vouchers, redemptions, earnings withdrawals,
/// unlocks and withdrawals, and keeps ghost totals for the invariants.
contract EscrowHandler is TestBase {
    PovToken public immutable token;
    PovEscrow public immutable escrow;
    uint256[3] internal payerKeys = [uint256(0xA11CE), 0xB0B, 0xCA7];
    address[3] public payees = [address(0x1001), address(0x1002), address(0x1003)];

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostRedeemed; // gross (fee included)
    uint256 public ghostPaidToPayees; // withdrawn by payees (net of fee)
    uint256 public ghostSwept;
    /// @dev Protocol fees taken out of each payee's redemptions.
    mapping(address => uint256) public ghostFeesOf;
    /// @dev Checks made inside handler calls (a reverting handler call is only skipped by the
    /// invariant runner, so they count here and an invariant asserts the count is zero).
    uint256 public violations;

    function _check(bool ok) private {
        if (!ok) ++violations;
    }
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

    /// @dev Deposits and allocates the deposit to one payee's lane.
    function deposit(uint256 who, uint256 to, uint256 amount) external {
        amount = bound(amount, 1, 1e24);
        vm.startPrank(payer(who));
        escrow.deposit(amount);
        try escrow.allocate(_one(payees[to % 3]), _one(amount)) {} catch {
            _check(false); // a fresh deposit always covers its allocation
        }
        vm.stopPrank();
        ghostDeposited += amount;
    }

    function redeem(uint256 who, uint256 to, uint256 increment, bool replay) external {
        address p = payer(who);
        address payee = payees[to % 3];
        uint256 cumulative = highestVoucher[p][payee];
        if (!replay) cumulative += bound(increment, 1, 1e24);
        highestVoucher[p][payee] = cumulative;
        IPovEscrow.SignedVoucher memory sv = signCompact(
            vm,
            payerKeys[who % 3],
            escrow,
            IPovEscrow.Voucher(p, payee, cumulative)
        );
        uint256 before = escrow.totalDeposits();
        uint256 feesBefore = escrow.accruedFees();
        uint256 payeeBefore = token.balanceOf(payee);
        vm.prank(payee);
        try escrow.redeem(sv) {
            ghostRedeemed += before - escrow.totalDeposits();
            ghostFeesOf[payee] += escrow.accruedFees() - feesBefore;
            _check(token.balanceOf(payee) == payeeBefore); // a redemption moves no tokens
        } catch {}
    }

    /// @dev A payee submits another payee's voucher: it must never pay.
    function redeemForeign(uint256 who, uint256 to, uint256 increment) external {
        address p = payer(who);
        address payee = payees[to % 3];
        address thief = payees[(to + 1) % 3];
        uint256 cumulative = highestVoucher[p][payee] + bound(increment, 1, 1e24);
        IPovEscrow.SignedVoucher memory sv = signCompact(
            vm,
            payerKeys[who % 3],
            escrow,
            IPovEscrow.Voucher(p, payee, cumulative)
        );
        vm.prank(thief);
        try escrow.redeem(sv) {
            _check(false); // a foreign voucher paid
        } catch {}
    }

    function withdrawEarnings(uint256 to) external {
        address payee = payees[to % 3];
        uint256 pending = escrow.pendingEarnings(payee);
        uint256 payeeBefore = token.balanceOf(payee);
        vm.prank(payee);
        try escrow.withdrawEarnings() {
            _check(token.balanceOf(payee) - payeeBefore == pending); // pays exactly what is pending
            _check(escrow.pendingEarnings(payee) == 0);
            ghostPaidToPayees += pending;
        } catch {
            _check(pending == 0); // reverts only when nothing is owed
        }
    }

    function openAccount(uint256 to) external {
        vm.prank(payees[to % 3]);
        escrow.openEarningsAccount();
    }

    function pendingTotal() external view returns (uint256 total) {
        for (uint256 j; j < 3; ++j) total += escrow.pendingEarnings(payees[j]);
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
        (uint256 balance, ) = escrow.depositOf(p);
        address[] memory lanes = new address[](3);
        for (uint256 j; j < 3; ++j) {
            lanes[j] = payees[j];
            (uint256 left, , ) = escrow.laneOf(p, payees[j]);
            balance += left;
        }
        vm.prank(p);
        try escrow.withdraw(lanes) {
            ghostWithdrawn += balance;
        } catch {}
    }

    function _one(address a) private pure returns (address[] memory xs) {
        xs = new address[](1);
        xs[0] = a;
    }

    function _one(uint256 a) private pure returns (uint256[] memory xs) {
        xs = new uint256[](1);
        xs[0] = a;
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

    /// The escrow's token balance always equals deposits minus payouts (withdrawals, earnings
    /// withdrawn by payees, fees swept to the treasury); what it holds is the deposits plus unswept
    /// fees plus the payees' pending earnings.
    function invariant_balanceIsDepositsMinusPayouts() public view {
        uint256 balance = token.balanceOf(address(escrow));
        assertEq(
            balance,
            handler.ghostDeposited() -
                handler.ghostWithdrawn() -
                handler.ghostPaidToPayees() -
                handler.ghostSwept(),
            "escrow balance = deposits - payouts"
        );
        assertEq(
            escrow.totalDeposits(),
            handler.ghostDeposited() - handler.ghostWithdrawn() - handler.ghostRedeemed(),
            "totalDeposits"
        );
        assertEq(
            balance,
            escrow.totalDeposits() + escrow.accruedFees() + handler.pendingTotal(),
            "balance = deposits + accrued fees + pending earnings"
        );
    }

    /// The checks made inside handler calls all held.
    function invariant_handlerChecks() public view {
        assertEq(handler.violations(), 0, "handler checks");
    }

    /// No payee is ever paid more than its highest voucher, and what it is credited is exactly
    /// what its payers were debited less the fee.
    function invariant_noPayeeOverpaid() public view {
        for (uint256 j; j < 3; ++j) {
            address payee = handler.payees(j);
            uint256 paidTotal;
            uint256 highestTotal;
            for (uint256 i; i < 3; ++i) {
                address p = handler.payer(i);
                uint256 paid = escrow.paid(p, payee);
                assertLe(paid, handler.highestVoucher(p, payee), "paid > highest voucher");
                paidTotal += paid;
                highestTotal += handler.highestVoucher(p, payee);
            }
            (uint256 earned, uint256 withdrawn, ) = escrow.earningsOf(payee);
            assertEq(earned, paidTotal - handler.ghostFeesOf(payee), "earned = paid - fees");
            assertLe(earned, highestTotal, "credited > highest vouchers");
            assertLe(withdrawn, earned, "withdrawn > earned");
        }
    }

    // ── fuzz: a voucher sequence against one deposit ──

    uint256 internal constant PAYER_KEY = 0xDEAD;
    address internal constant PAYEE = address(0xBEEF);
    uint256 internal fzDeposited;
    uint256 internal fzCumulative;
    uint256 internal fzReceived;
    uint256 internal fzFees;

    function testFuzz_cumulativeVouchers(
        uint96 depositAmount,
        uint96[4] memory increments,
        uint16 feeBps
    ) public {
        feeBps = uint16(bound(feeBps, 0, escrow.MAX_FEE_BPS()));
        escrow.setFeeBps(feeBps);
        address payer = vm.addr(PAYER_KEY);
        fzDeposited = uint256(depositAmount) + 1;
        token.transfer(payer, fzDeposited);
        vm.startPrank(payer);
        token.approve(address(escrow), type(uint256).max);
        escrow.deposit(fzDeposited);
        escrow.allocate(_addrs(PAYEE), _amounts(fzDeposited));
        vm.stopPrank();
        for (uint256 i; i < increments.length; ++i) {
            _redeemStep(payer, increments[i], feeBps, i);
        }
    }

    function _redeemStep(address payer, uint256 increment, uint16 feeBps, uint256 step) private {
        fzCumulative += increment;
        IPovEscrow.SignedVoucher memory sv = signCompact(
            vm,
            PAYER_KEY,
            escrow,
            IPovEscrow.Voucher(payer, PAYEE, fzCumulative)
        );
        uint256 feesBefore = escrow.accruedFees();
        vm.prank(PAYEE);
        try escrow.redeem(sv) {
            fzFees += escrow.accruedFees() - feesBefore;
        } catch {}
        if (step % 2 == 1) {
            // withdraw every other step: pending and withdrawn move, earned does not
            uint256 pending = escrow.pendingEarnings(PAYEE);
            vm.prank(PAYEE);
            try escrow.withdrawEarnings() {
                fzReceived += pending;
            } catch {
                assertEq(pending, 0, "withdrawEarnings reverted with something pending");
            }
        }
        uint256 paid = escrow.paid(payer, PAYEE);
        (uint256 earned, uint256 withdrawn, ) = escrow.earningsOf(PAYEE);
        // over-lane rule: a payee is paid min(highest voucher, its lane), never more
        assertEq(
            paid,
            fzCumulative < fzDeposited ? fzCumulative : fzDeposited,
            "paid = min(cumulative, deposit)"
        );
        assertEq(earned + fzFees, paid, "credited + fee = paid");
        assertEq(withdrawn, fzReceived, "withdrawn = received");
        assertEq(token.balanceOf(PAYEE), fzReceived, "payee balance = withdrawn");
        // per-redemption rounding down: the fee never exceeds feeBps of the total
        assertLe(fzFees, (paid * feeBps) / 10_000, "fee bound");
        assertLe((paid * feeBps) / 10_000, fzFees + step + 1, "fee rounding");
        assertEq(token.balanceOf(address(escrow)), fzDeposited - fzReceived, "escrow balance");
        assertEq(escrow.totalDeposits(), fzDeposited - paid, "deposits left");
    }

    function _addrs(address a) private pure returns (address[] memory xs) {
        xs = new address[](1);
        xs[0] = a;
    }

    function _amounts(uint256 a) private pure returns (uint256[] memory xs) {
        xs = new uint256[](1);
        xs[0] = a;
    }

    function testFuzz_forgedSignatureNeverPays(uint256 attackerKey, uint96 amount) public {
        attackerKey = bound(attackerKey, 1, 2 ** 128);
        vm.assume(amount > 0);
        address payer = handler.payer(0);
        vm.startPrank(payer);
        escrow.deposit(amount);
        escrow.allocate(_addrs(address(0xBEEF)), _amounts(amount));
        vm.stopPrank();
        IPovEscrow.SignedVoucher memory sv = signCompact(
            vm,
            attackerKey,
            escrow,
            IPovEscrow.Voucher(payer, address(0xBEEF), amount)
        );
        vm.assume(vm.addr(attackerKey) != payer);
        vm.prank(address(0xBEEF));
        vm.expectRevert(
            abi.encodeWithSelector(
                IPovEscrow.EscrowInvalidSignature.selector,
                payer,
                vm.addr(attackerKey)
            )
        );
        escrow.redeem(sv);
    }

    /// A voucher signed for one payee, submitted by another, recovers to some other address.
    function testFuzz_foreignVoucherNeverPays(address thief, uint96 amount) public {
        vm.assume(amount > 0 && thief != address(0xBEEF));
        address payer = handler.payer(0);
        vm.startPrank(payer);
        escrow.deposit(uint256(amount) + 1);
        escrow.allocate(_addrs(address(0xBEEF)), _amounts(amount));
        // the thief has a lane too: still, only its own vouchers draw from it
        escrow.allocate(_addrs(thief == address(0) ? address(1) : thief), _amounts(1));
        vm.stopPrank();
        IPovEscrow.SignedVoucher memory sv = signCompact(
            vm,
            0xA11CE,
            escrow,
            IPovEscrow.Voucher(payer, address(0xBEEF), amount)
        );
        vm.prank(thief);
        try escrow.redeem(sv) {
            revert AssertionFailed("a foreign voucher paid", amount, 0);
        } catch (bytes memory reason) {
            assertEq(
                uint32(bytes4(reason)),
                uint32(IPovEscrow.EscrowInvalidSignature.selector),
                "reverts EscrowInvalidSignature"
            );
        }
        assertEq(escrow.paid(payer, thief), 0, "thief not paid");
    }
}
