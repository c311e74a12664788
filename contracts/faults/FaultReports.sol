// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IFaultReports, IWithdrawalFreeze} from "../interfaces/IFaultReports.sol";
import {IGovernancePath} from "../interfaces/IGovernancePath.sol";
import {BondCustody} from "../utils/BondCustody.sol";
import {Bounds} from "../utils/Bounds.sol";

/// @title FaultReports — committed, stake-bonded fault reports, frozen stake, governance verdicts.
/// @notice Wiring (one governance proposal): `ExpertRegistry.setFreezer(this)` so reports can
/// freeze withdrawals, and `ExpertRegistry.setTreasury(this)` so slashed stake arrives here to be
/// split with the reporter. See docs/trust.md ("Fault reports: cost of griefing"). Token, treasury
/// and transfers: {BondCustody}.
contract FaultReports is BondCustody, IFaultReports {
    /// @dev A report must stay open long enough for one governance round, and no longer than the
    /// registry lets a freeze last (ExpertRegistry.MAX_FREEZE).
    uint64 public constant MIN_DECISION_PERIOD = 1 hours;
    uint64 public constant MAX_DECISION_PERIOD = 30 days;
    /// @dev At most half of a slash goes to the reporter: reporting must not pay more than the
    /// network keeps, or a colluding operator could farm its own stake.
    uint16 public constant MAX_REPORTER_SHARE_BPS = 5000;
    /// @dev Floors that keep a freeze from ever being free: a flat bond of at least 1 POV and a
    /// stake-proportional bond of at least 0.1 % of the stake it freezes.
    uint256 public constant MIN_REPORT_BOND = 1e18;
    uint16 public constant MIN_BOND_BPS = 10;
    /// @dev The freeze outlasts the decision period by the governance path and half of it again.
    uint16 public constant PATH_MARGIN_BPS = 5000;
    bytes32 private constant COMMIT_TAG = keccak256("pov.fault-report.v2");

    IWithdrawalFreeze private immutable _registry;
    uint256 private _reportBond;
    uint16 private _bondBps;
    uint64 private _decisionPeriod;
    uint16 private _reporterShareBps;

    Report[] private _reports;
    mapping(bytes32 commitment => uint256 blockNumber) private _commits;
    /// @dev Per evidence file, the report with the earliest commitment (id + 1): the only one that
    /// can be upheld, so a copy of a revealed report can neither take its reward nor block it.
    mapping(bytes32 evidenceHash => uint256) private _firstReport;
    mapping(bytes32 evidenceHash => bool) private _upheld;
    mapping(address operator => uint256) private _pending;
    /// @dev The latest deadline among an operator's reports (a shorter period set later by
    /// governance must not shorten a freeze already running).
    mapping(address operator => uint64) private _frozenUntil;
    /// @dev Bonds of pending reports: every other token this contract holds is slashed stake.
    uint256 private _bondsHeld;

    constructor(
        IERC20 token_,
        IWithdrawalFreeze registry_,
        address treasury_,
        uint256 reportBond_,
        uint16 bondBps_,
        uint64 decisionPeriod_,
        uint16 reporterShareBps_,
        address owner_
    ) Ownable(owner_) BondCustody(token_, treasury_) {
        _registry = registry_;
        _setReportBond(reportBond_);
        _setBondBps(bondBps_);
        _setDecisionPeriod(decisionPeriod_);
        _setReporterShare(reporterShareBps_);
    }

    // ──────────────────────────── reporters ──────────────────────────

    /// @inheritdoc IFaultReports
    function commitReport(bytes32 commitment) external {
        if (_commits[commitment] != 0) revert FaultsAlreadyCommitted(commitment);
        _commits[commitment] = block.number;
        emit ReportCommitted(commitment, block.number);
    }

    /// @inheritdoc IFaultReports
    function reportFault(
        address operator,
        bytes32 evidenceHash,
        uint256 refund,
        bytes32 salt,
        string calldata uri
    ) external returns (uint256 reportId) {
        if (evidenceHash == bytes32(0)) revert FaultsZeroEvidence();
        if (_upheld[evidenceHash]) revert FaultsEvidenceUpheld(evidenceHash);
        if (operator == msg.sender) revert FaultsSelfReport(operator);
        bytes32 commitment = commitmentOf(msg.sender, operator, evidenceHash, refund, salt);
        uint256 committed = _commits[commitment];
        if (committed == 0) revert FaultsNotCommitted(commitment);
        if (committed >= block.number) revert FaultsRevealTooEarly(commitment, committed);
        delete _commits[commitment];

        uint256 bond = bondFor(operator);
        uint64 deadline = uint64(block.timestamp) + freezeWindow();
        reportId = _reports.length;
        _reports.push(
            Report({
                reporter: msg.sender,
                operator: operator,
                evidenceHash: evidenceHash,
                bond: bond,
                refund: refund,
                createdAt: uint64(block.timestamp),
                deadline: deadline,
                committedAt: uint64(committed),
                status: Status.Pending,
                slashed: 0,
                reward: 0,
                uri: uri
            })
        );
        uint256 first = _firstReport[evidenceHash];
        if (
            first == 0 ||
            committed < _reports[first - 1].committedAt ||
            _reports[first - 1].status == Status.Rejected
        ) _firstReport[evidenceHash] = reportId + 1;
        _pending[operator] += 1;
        _bondsHeld += bond;
        emit FaultReported(reportId, operator, msg.sender, evidenceHash, uri, bond, deadline);
        _pull(msg.sender, bond);
        if (deadline > _frozenUntil[operator]) {
            _frozenUntil[operator] = deadline;
            _registry.freezeWithdrawal(operator, deadline);
        }
    }

    /// @inheritdoc IFaultReports
    function expireFault(uint256 reportId) external {
        Report storage r = _report(reportId);
        if (r.status != Status.Pending) revert FaultsNotPending(reportId, r.status);
        if (block.timestamp < r.deadline)
            revert FaultsDeadlineNotReached(reportId, r.deadline, block.timestamp);
        r.status = Status.Expired;
        _close(r);
        emit FaultExpired(reportId, r.operator, r.reporter, r.bond);
        _pay(r.operator, r.bond);
    }

    /// @inheritdoc IFaultReports
    function sweep() external {
        uint256 amount = _unallocated();
        emit Swept(treasury(), amount);
        _payTreasury(amount);
    }

    // ─────────────────────────── governance ──────────────────────────

    /// @inheritdoc IFaultReports
    function upholdFault(uint256 reportId) external onlyOwner {
        Report storage r = _undecided(reportId);
        uint256 first = _firstReport[r.evidenceHash];
        if (first != reportId + 1 && _reports[first - 1].status != Status.Rejected)
            revert FaultsNotFirstReport(reportId, first - 1);
        bool pending = r.status == Status.Pending;
        uint256 slashed = _unallocated();
        uint256 left = slashed;
        // an expired report's bond went to the accused: the slash gives it back first
        uint256 bondBack = r.bond;
        if (!pending) {
            bondBack = _min(bondBack, left);
            left -= bondBack;
        }
        uint256 refund = _min(r.refund, left);
        left -= refund;
        uint256 reward = (left * _reporterShareBps) / 10_000;
        r.status = Status.Upheld;
        r.slashed = slashed;
        r.reward = reward;
        _upheld[r.evidenceHash] = true;
        if (pending) _close(r);
        emit FaultUpheld(reportId, r.operator, r.reporter, slashed, reward);
        emit FaultRefunded(reportId, r.reporter, refund);
        _pay(r.reporter, bondBack + refund + reward);
        _payTreasury(left - reward);
    }

    /// @inheritdoc IFaultReports
    function rejectFault(uint256 reportId) external onlyOwner {
        Report storage r = _undecided(reportId);
        bool pending = r.status == Status.Pending;
        r.status = Status.Rejected;
        if (!pending) {
            emit FaultRejected(reportId, r.operator, r.reporter, 0); // forfeited at expiry
            return;
        }
        _close(r);
        emit FaultRejected(reportId, r.operator, r.reporter, r.bond);
        _pay(r.operator, r.bond);
    }

    /// @inheritdoc IFaultReports
    function setReportBond(uint256 bond) external onlyOwner {
        _setReportBond(bond);
    }

    /// @inheritdoc IFaultReports
    function setBondBps(uint16 bps) external onlyOwner {
        _setBondBps(bps);
    }

    /// @inheritdoc IFaultReports
    function setDecisionPeriod(uint64 period) external onlyOwner {
        _setDecisionPeriod(period);
    }

    /// @inheritdoc IFaultReports
    function setReporterShare(uint16 bps) external onlyOwner {
        _setReporterShare(bps);
    }

    // ───────────────────────────── views ─────────────────────────────

    /// @inheritdoc IFaultReports
    function commitmentOf(
        address reporter,
        address operator,
        bytes32 evidenceHash,
        uint256 refund,
        bytes32 salt
    ) public view returns (bytes32) {
        return
            keccak256(
                abi.encode(
                    COMMIT_TAG,
                    block.chainid,
                    address(this),
                    reporter,
                    operator,
                    evidenceHash,
                    refund,
                    salt
                )
            );
    }

    /// @inheritdoc IFaultReports
    function bondFor(address operator) public view returns (uint256) {
        uint256 scaled = (_registry.stakeOf(operator) * _bondBps) / 10_000;
        return scaled > _reportBond ? scaled : _reportBond;
    }

    /// @inheritdoc IFaultReports
    function freezeWindow() public view returns (uint64) {
        uint256 path;
        address gov = _registry.governance();
        if (gov != address(0)) path = IGovernancePath(gov).governancePath();
        uint256 window = uint256(_decisionPeriod) + path + (path * PATH_MARGIN_BPS) / 10_000;
        return window > MAX_DECISION_PERIOD ? MAX_DECISION_PERIOD : uint64(window);
    }

    /// @inheritdoc IFaultReports
    function committedAt(bytes32 commitment) external view returns (uint256) {
        return _commits[commitment];
    }

    /// @inheritdoc IFaultReports
    function firstReportOf(bytes32 evidenceHash) external view returns (uint256) {
        return _firstReport[evidenceHash];
    }

    /// @inheritdoc IFaultReports
    function reportOf(uint256 reportId) external view returns (Report memory) {
        return _report(reportId);
    }

    /// @inheritdoc IFaultReports
    function reportCount() external view returns (uint256) {
        return _reports.length;
    }

    /// @inheritdoc IFaultReports
    function pendingReports(address operator) external view returns (uint256) {
        return _pending[operator];
    }

    /// @inheritdoc IFaultReports
    function reportBond() external view returns (uint256) {
        return _reportBond;
    }

    /// @inheritdoc IFaultReports
    function bondBps() external view returns (uint16) {
        return _bondBps;
    }

    /// @inheritdoc IFaultReports
    function decisionPeriod() external view returns (uint64) {
        return _decisionPeriod;
    }

    /// @inheritdoc IFaultReports
    function reporterShareBps() external view returns (uint16) {
        return _reporterShareBps;
    }

    /// @inheritdoc IFaultReports
    function registry() external view returns (address) {
        return address(_registry);
    }

    // ──────────────────────────── internal ───────────────────────────

    function _report(uint256 reportId) private view returns (Report storage r) {
        if (reportId >= _reports.length) revert FaultsUnknownReport(reportId);
        r = _reports[reportId];
    }

    /// @dev A report governance can still decide: pending, or expired without a verdict.
    function _undecided(uint256 reportId) private view returns (Report storage r) {
        r = _report(reportId);
        if (r.status != Status.Pending && r.status != Status.Expired)
            revert FaultsAlreadyDecided(reportId, r.status);
    }

    /// @dev Releases the report's bond from the held total and, when it was the operator's last
    /// pending report, lifts the freeze (the registry lets a freeze be lowered to 0).
    function _close(Report storage r) private {
        _bondsHeld -= r.bond;
        uint256 left = _pending[r.operator] - 1;
        _pending[r.operator] = left;
        if (left != 0) return;
        delete _frozenUntil[r.operator];
        // the operator may have withdrawn since (after the deadline): nothing left to lift
        try _registry.freezeWithdrawal(r.operator, 0) {} catch {}
    }

    function _unallocated() private view returns (uint256) {
        return _balance() - _bondsHeld;
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }

    function _setReportBond(uint256 bond) private {
        Bounds.check("reportBond", bond, MIN_REPORT_BOND, type(uint256).max);
        emit ReportBondSet(_reportBond, bond);
        _reportBond = bond;
    }

    function _setBondBps(uint16 bps) private {
        Bounds.check("bondBps", bps, MIN_BOND_BPS, 10_000);
        emit BondBpsSet(_bondBps, bps);
        _bondBps = bps;
    }

    function _setDecisionPeriod(uint64 period) private {
        Bounds.check("decisionPeriod", period, MIN_DECISION_PERIOD, MAX_DECISION_PERIOD);
        emit DecisionPeriodSet(_decisionPeriod, period);
        _decisionPeriod = period;
    }

    function _setReporterShare(uint16 bps) private {
        if (bps > MAX_REPORTER_SHARE_BPS) revert FaultsShareTooHigh(bps, MAX_REPORTER_SHARE_BPS);
        emit ReporterShareSet(_reporterShareBps, bps);
        _reporterShareBps = bps;
    }

    function _revertInvalidTreasury(address treasury_) internal pure override {
        revert FaultsInvalidTreasury(treasury_);
    }
}
