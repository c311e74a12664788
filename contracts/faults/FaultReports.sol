// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IFaultReports, IWithdrawalFreeze} from "../interfaces/IFaultReports.sol";

/// @title FaultReports — bonded fault reports, frozen stake, governance verdicts.
/// @notice Wiring (one governance proposal): `ExpertRegistry.setFreezer(this)` so reports can
/// freeze withdrawals, and `ExpertRegistry.setTreasury(this)` so slashed stake arrives here to be
/// split with the reporter. See docs/trust.md.
contract FaultReports is Ownable, IFaultReports {
    using SafeERC20 for IERC20;

    /// @dev A report must stay open long enough for one governance round (delay + voting +
    /// timelock), and no longer than the registry lets a freeze last (ExpertRegistry.MAX_FREEZE).
    uint64 public constant MIN_DECISION_PERIOD = 1 hours;
    uint64 public constant MAX_DECISION_PERIOD = 30 days;
    /// @dev At most half of a slash goes to the reporter: reporting must not pay more than the
    /// network keeps, or a colluding operator could farm its own stake.
    uint16 public constant MAX_REPORTER_SHARE_BPS = 5000;

    IERC20 private immutable _token;
    IWithdrawalFreeze private immutable _registry;
    address private _treasury;
    uint256 private _reportBond;
    uint64 private _decisionPeriod;
    uint16 private _reporterShareBps;

    Report[] private _reports;
    mapping(bytes32 evidenceHash => uint256) private _reportByEvidence; // id + 1
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
        uint64 decisionPeriod_,
        uint16 reporterShareBps_,
        address owner_
    ) Ownable(owner_) {
        _token = token_;
        _registry = registry_;
        _setTreasury(treasury_);
        _setReportBond(reportBond_);
        _setDecisionPeriod(decisionPeriod_);
        _setReporterShare(reporterShareBps_);
    }

    // ──────────────────────────── reporters ──────────────────────────

    /// @inheritdoc IFaultReports
    function reportFault(
        address operator,
        bytes32 evidenceHash,
        string calldata uri
    ) external returns (uint256 reportId) {
        if (evidenceHash == bytes32(0)) revert FaultsZeroEvidence();
        uint256 prior = _reportByEvidence[evidenceHash];
        if (prior != 0) revert FaultsDuplicateEvidence(evidenceHash, prior - 1);
        if (operator == msg.sender) revert FaultsSelfReport(operator);
        uint256 bond = _reportBond;
        uint64 deadline = uint64(block.timestamp) + _decisionPeriod;
        reportId = _reports.length;
        _reports.push(
            Report({
                reporter: msg.sender,
                operator: operator,
                evidenceHash: evidenceHash,
                bond: bond,
                createdAt: uint64(block.timestamp),
                deadline: deadline,
                status: Status.Pending,
                slashed: 0,
                reward: 0,
                uri: uri
            })
        );
        _reportByEvidence[evidenceHash] = reportId + 1;
        _pending[operator] += 1;
        _bondsHeld += bond;
        emit FaultReported(reportId, operator, msg.sender, evidenceHash, uri, bond, deadline);
        if (bond != 0) _token.safeTransferFrom(msg.sender, address(this), bond);
        if (deadline > _frozenUntil[operator]) {
            _frozenUntil[operator] = deadline;
            _registry.freezeWithdrawal(operator, deadline);
        }
    }

    /// @inheritdoc IFaultReports
    function expireFault(uint256 reportId) external {
        Report storage r = _pendingReport(reportId);
        if (block.timestamp < r.deadline)
            revert FaultsDeadlineNotReached(reportId, r.deadline, block.timestamp);
        r.status = Status.Expired;
        _close(r);
        emit FaultExpired(reportId, r.operator, r.reporter);
        if (r.bond != 0) _token.safeTransfer(r.reporter, r.bond);
    }

    /// @inheritdoc IFaultReports
    function sweep() external {
        uint256 amount = _unallocated();
        emit Swept(_treasury, amount);
        if (amount != 0) _token.safeTransfer(_treasury, amount);
    }

    // ─────────────────────────── governance ──────────────────────────

    /// @inheritdoc IFaultReports
    function upholdFault(uint256 reportId) external onlyOwner {
        Report storage r = _pendingReport(reportId);
        uint256 slashed = _unallocated();
        uint256 reward = (slashed * _reporterShareBps) / 10_000;
        r.status = Status.Upheld;
        r.slashed = slashed;
        r.reward = reward;
        _close(r);
        emit FaultUpheld(reportId, r.operator, r.reporter, slashed, reward);
        if (r.bond + reward != 0) _token.safeTransfer(r.reporter, r.bond + reward);
        if (slashed > reward) _token.safeTransfer(_treasury, slashed - reward);
    }

    /// @inheritdoc IFaultReports
    function rejectFault(uint256 reportId) external onlyOwner {
        Report storage r = _pendingReport(reportId);
        r.status = Status.Rejected;
        _close(r);
        emit FaultRejected(reportId, r.operator, r.reporter, r.bond);
        if (r.bond != 0) _token.safeTransfer(_treasury, r.bond);
    }

    /// @inheritdoc IFaultReports
    function setReportBond(uint256 bond) external onlyOwner {
        _setReportBond(bond);
    }

    /// @inheritdoc IFaultReports
    function setDecisionPeriod(uint64 period) external onlyOwner {
        _setDecisionPeriod(period);
    }

    /// @inheritdoc IFaultReports
    function setReporterShare(uint16 bps) external onlyOwner {
        _setReporterShare(bps);
    }

    /// @inheritdoc IFaultReports
    function setTreasury(address treasury_) external onlyOwner {
        _setTreasury(treasury_);
    }

    // ───────────────────────────── views ─────────────────────────────

    /// @inheritdoc IFaultReports
    function reportOf(uint256 reportId) external view returns (Report memory) {
        if (reportId >= _reports.length) revert FaultsUnknownReport(reportId);
        return _reports[reportId];
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
    function decisionPeriod() external view returns (uint64) {
        return _decisionPeriod;
    }

    /// @inheritdoc IFaultReports
    function reporterShareBps() external view returns (uint16) {
        return _reporterShareBps;
    }

    /// @inheritdoc IFaultReports
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IFaultReports
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IFaultReports
    function registry() external view returns (address) {
        return address(_registry);
    }

    // ──────────────────────────── internal ───────────────────────────

    function _pendingReport(uint256 reportId) private view returns (Report storage r) {
        if (reportId >= _reports.length) revert FaultsUnknownReport(reportId);
        r = _reports[reportId];
        if (r.status != Status.Pending) revert FaultsNotPending(reportId, r.status);
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
        return _token.balanceOf(address(this)) - _bondsHeld;
    }

    function _setReportBond(uint256 bond) private {
        emit ReportBondSet(_reportBond, bond);
        _reportBond = bond;
    }

    function _setDecisionPeriod(uint64 period) private {
        if (period < MIN_DECISION_PERIOD || period > MAX_DECISION_PERIOD)
            revert FaultsPeriodOutOfRange(period, MIN_DECISION_PERIOD, MAX_DECISION_PERIOD);
        emit DecisionPeriodSet(_decisionPeriod, period);
        _decisionPeriod = period;
    }

    function _setReporterShare(uint16 bps) private {
        if (bps > MAX_REPORTER_SHARE_BPS) revert FaultsShareTooHigh(bps, MAX_REPORTER_SHARE_BPS);
        emit ReporterShareSet(_reporterShareBps, bps);
        _reporterShareBps = bps;
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0) || treasury_ == address(this))
            revert FaultsInvalidTreasury(treasury_);
        emit TreasurySet(_treasury, treasury_);
        _treasury = treasury_;
    }
}
