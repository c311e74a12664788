// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IWithdrawalFreeze — the registry hook a fault report uses to hold an accused
/// operator's stake (ExpertRegistry.freezeWithdrawal; this contract must be its freezer).
interface IWithdrawalFreeze {
    function freezeWithdrawal(address operator, uint64 until) external;
}

/// @title IFaultReports — bonded reports that a node signed a wrong expert output.
/// @dev A reporter posts a bond and the hash of an evidence file (router/evidence.ts) that anyone
/// can check offline (`pov audit verify-fault`). The accused operator's stake withdrawal is frozen
/// until governance decides or the decision deadline passes. Upheld: governance slashes the
/// operator in the same proposal (the registry pays slashed stake to this contract, its
/// treasury), the reporter gets its bond back plus a share of the slash, the rest goes on to the
/// treasury. Rejected: the reporter's bond goes to the treasury. Undecided by the deadline: the
/// bond is returned. See docs/trust.md.
interface IFaultReports {
    enum Status {
        None,
        Pending,
        Upheld,
        Rejected,
        Expired
    }

    struct Report {
        address reporter;
        address operator;
        bytes32 evidenceHash; // keccak256 of the evidence file's bytes
        uint256 bond;
        uint64 createdAt;
        uint64 deadline; // governance decides before this, or anyone may expire the report
        Status status;
        uint256 slashed; // stake received for this report when upheld
        uint256 reward; // the reporter's share of it
        string uri; // where the evidence file can be fetched
    }

    event FaultReported(
        uint256 indexed reportId,
        address indexed operator,
        address indexed reporter,
        bytes32 evidenceHash,
        string uri,
        uint256 bond,
        uint64 deadline
    );
    event FaultUpheld(
        uint256 indexed reportId,
        address indexed operator,
        address indexed reporter,
        uint256 slashed,
        uint256 reward
    );
    event FaultRejected(
        uint256 indexed reportId,
        address indexed operator,
        address indexed reporter,
        uint256 bondForfeited
    );
    event FaultExpired(
        uint256 indexed reportId,
        address indexed operator,
        address indexed reporter
    );
    /// @dev Stake slashed outside any report, forwarded to the treasury.
    event Swept(address treasury, uint256 amount);
    event ReportBondSet(uint256 oldValue, uint256 newValue);
    event DecisionPeriodSet(uint64 oldValue, uint64 newValue);
    event ReporterShareSet(uint16 oldBps, uint16 newBps);
    event TreasurySet(address oldValue, address newValue);

    error FaultsZeroEvidence();
    error FaultsDuplicateEvidence(bytes32 evidenceHash, uint256 reportId);
    error FaultsSelfReport(address operator);
    error FaultsUnknownReport(uint256 reportId);
    error FaultsNotPending(uint256 reportId, Status status);
    error FaultsDeadlineNotReached(uint256 reportId, uint64 deadline, uint256 timestamp);
    error FaultsShareTooHigh(uint16 bps, uint16 max);
    error FaultsPeriodOutOfRange(uint64 period, uint64 min, uint64 max);
    error FaultsInvalidTreasury(address treasury);

    /// @notice Reports that `operator`'s node signed a wrong output, posting the report bond
    /// (pulled with transferFrom) and freezing the operator's stake withdrawal until the deadline.
    /// Requirements: non-zero `evidenceHash` never reported before; the caller is not `operator`;
    /// `operator` is registered (else the registry's freeze reverts); bond approved.
    /// Emits {FaultReported} (and the registry's {WithdrawalFrozen}).
    function reportFault(
        address operator,
        bytes32 evidenceHash,
        string calldata uri
    ) external returns (uint256 reportId);

    /// @notice Governance upholds a pending report. The same proposal slashes the operator first
    /// (ExpertRegistry.slash: the stake arrives here); the reporter gets its bond plus
    /// `reporterShareBps` of what arrived, the treasury the rest; the freeze is lifted when no
    /// other report on the operator is pending.
    /// Requirements: owner (the timelock); report pending. Emits {FaultUpheld}.
    function upholdFault(uint256 reportId) external;

    /// @notice Governance rejects a pending report: the bond goes to the treasury, the freeze is
    /// lifted when no other report on the operator is pending.
    /// Requirements: owner; report pending. Emits {FaultRejected}.
    function rejectFault(uint256 reportId) external;

    /// @notice Closes a report governance did not decide in time; the bond goes back to the reporter.
    /// Requirements: report pending; deadline passed. Emits {FaultExpired}.
    function expireFault(uint256 reportId) external;

    /// @notice Forwards stake slashed outside any report to the treasury. Emits {Swept}.
    function sweep() external;

    /// @notice Requirements: owner. Emits {ReportBondSet}.
    function setReportBond(uint256 bond) external;

    /// @notice Requirements: owner; MIN_DECISION_PERIOD ≤ period ≤ MAX_DECISION_PERIOD. Emits {DecisionPeriodSet}.
    function setDecisionPeriod(uint64 period) external;

    /// @notice Requirements: owner; bps ≤ MAX_REPORTER_SHARE_BPS. Emits {ReporterShareSet}.
    function setReporterShare(uint16 bps) external;

    /// @notice Requirements: owner; non-zero and not this contract. Emits {TreasurySet}.
    function setTreasury(address treasury) external;

    function reportOf(uint256 reportId) external view returns (Report memory);
    function reportCount() external view returns (uint256);
    /// @notice Reports on `operator` still pending.
    function pendingReports(address operator) external view returns (uint256);
    function reportBond() external view returns (uint256);
    function decisionPeriod() external view returns (uint64);
    function reporterShareBps() external view returns (uint16);
    function treasury() external view returns (address);
    function token() external view returns (address);
    function registry() external view returns (address);
}
