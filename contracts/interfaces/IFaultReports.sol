// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBondCustody} from "./IBondCustody.sol";

/// @title IWithdrawalFreeze — the registry hooks a fault report uses: holding an accused
/// operator's stake (ExpertRegistry.freezeWithdrawal; this contract must be its freezer), sizing
/// the bond to that stake, and reading the governance path the freeze must outlast.
interface IWithdrawalFreeze {
    function freezeWithdrawal(address operator, uint64 until) external;
    function stakeOf(address operator) external view returns (uint256);
    /// @dev The governance-path source (IGovernancePath); 0 when none.
    function governance() external view returns (address);
}

/// @title IFaultReports — bonded reports that a node signed a wrong expert output.
/// @dev A reporter first commits to its report (`commitReport`, a hash over its own address, the
/// accused, the evidence hash, the refund it claims and a salt), then reveals it one block later
/// or more (`reportFault`): a copier who sees the reveal commits later, so among reports of one
/// evidence file the earliest commitment is the only one governance can uphold. The bond scales
/// with the accused's stake (max(reportBond, stake × bondBps)); it is lost to the accused when the
/// report is rejected or expires, so each freeze window costs the reporter that bond. The freeze
/// lasts the decision period plus the governance path with its margin (read live), so a verdict
/// proposed within the decision period executes while the stake is still held. Upheld: the
/// reporter gets its bond back, the refund it claimed (the price of the convicted calls) out of
/// the slash, then `reporterShareBps` of the rest; the treasury the remainder. A verdict reaching
/// an expired report does not revert (a queued proposal keeps its slash). See docs/trust.md.
interface IFaultReports is IBondCustody {
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
        uint256 refund; // the price of the convicted calls, repaid out of the slash when upheld
        uint64 createdAt;
        uint64 deadline; // the freeze ends here; anyone may then expire the report
        uint64 committedAt; // block number of the reporter's commitment
        Status status;
        uint256 slashed; // stake received for this report when upheld
        uint256 reward; // the reporter's share of it (refund and bond not included)
        string uri; // where the evidence file can be fetched
    }

    event ReportCommitted(bytes32 indexed commitment, uint256 blockNumber);
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
    /// @dev The claimed refund paid to the reporter out of the slash (≤ what arrived).
    event FaultRefunded(uint256 indexed reportId, address indexed reporter, uint256 amount);
    event FaultRejected(
        uint256 indexed reportId,
        address indexed operator,
        address indexed reporter,
        uint256 bondForfeited
    );
    event FaultExpired(
        uint256 indexed reportId,
        address indexed operator,
        address indexed reporter,
        uint256 bondForfeited
    );
    /// @dev Stake slashed outside any report, forwarded to the treasury.
    event Swept(address treasury, uint256 amount);
    event ReportBondSet(uint256 oldValue, uint256 newValue);
    event BondBpsSet(uint16 oldBps, uint16 newBps);
    event DecisionPeriodSet(uint64 oldValue, uint64 newValue);
    event ReporterShareSet(uint16 oldBps, uint16 newBps);

    error FaultsZeroEvidence();
    error FaultsEvidenceUpheld(bytes32 evidenceHash);
    error FaultsSelfReport(address operator);
    error FaultsUnknownReport(uint256 reportId);
    error FaultsNotPending(uint256 reportId, Status status);
    error FaultsAlreadyDecided(uint256 reportId, Status status);
    error FaultsDeadlineNotReached(uint256 reportId, uint64 deadline, uint256 timestamp);
    error FaultsShareTooHigh(uint16 bps, uint16 max);
    error FaultsInvalidTreasury(address treasury);
    error FaultsAlreadyCommitted(bytes32 commitment);
    error FaultsNotCommitted(bytes32 commitment);
    /// @dev The reveal must come in a later block than the commitment.
    error FaultsRevealTooEarly(bytes32 commitment, uint256 committedAt);
    /// @dev Another report of the same evidence was committed earlier: only it can be upheld.
    error FaultsNotFirstReport(uint256 reportId, uint256 firstReportId);

    /// @notice Records a commitment to a report (see {commitmentOf}); reveal it with
    /// {reportFault} in a later block. Emits {ReportCommitted}.
    function commitReport(bytes32 commitment) external;

    /// @notice The commitment `reporter` posts for a report: keccak256 over a tag, the chain,
    /// this contract, the reporter, the accused, the evidence hash, the refund and a secret salt.
    function commitmentOf(
        address reporter,
        address operator,
        bytes32 evidenceHash,
        uint256 refund,
        bytes32 salt
    ) external view returns (bytes32);

    /// @notice Reveals a committed report that `operator`'s node signed a wrong output, posting
    /// the bond ({bondFor}, pulled with transferFrom) and freezing the operator's withdrawal until
    /// the deadline (now + {freezeWindow}). Requirements: a commitment by the caller over exactly
    /// these values in an earlier block; non-zero evidence not already upheld; the caller is not
    /// `operator`; `operator` is registered (else the registry's freeze reverts); bond approved.
    /// Emits {FaultReported} (and the registry's {WithdrawalFrozen}).
    function reportFault(
        address operator,
        bytes32 evidenceHash,
        uint256 refund,
        bytes32 salt,
        string calldata uri
    ) external returns (uint256 reportId);

    /// @notice Governance upholds a report, pending or expired (a late verdict is still carried
    /// out). The same proposal slashes the operator first (ExpertRegistry.slash: the stake arrives
    /// here); the reporter gets its bond (out of the slash when the report had expired), its
    /// refund and `reporterShareBps` of the rest, the treasury the remainder.
    /// Requirements: owner (the timelock); not already upheld or rejected; the earliest-committed
    /// report of its evidence still open. Emits {FaultUpheld}, {FaultRefunded}.
    function upholdFault(uint256 reportId) external;

    /// @notice Governance rejects a report, pending or expired: a pending report's bond goes to
    /// the accused operator; the freeze is lifted when no other report on it is pending.
    /// Requirements: owner; not already upheld or rejected. Emits {FaultRejected}.
    function rejectFault(uint256 reportId) external;

    /// @notice Closes a report not decided by its deadline; its bond goes to the accused operator
    /// (a report not upheld costs its reporter the bond). Governance may still decide it later.
    /// Requirements: report pending; deadline passed. Emits {FaultExpired}.
    function expireFault(uint256 reportId) external;

    /// @notice Forwards stake slashed outside any report to the treasury. Emits {Swept}.
    function sweep() external;

    /// @notice Requirements: owner; ≥ MIN_REPORT_BOND. Emits {ReportBondSet}.
    function setReportBond(uint256 bond) external;

    /// @notice Requirements: owner; MIN_BOND_BPS ≤ bps ≤ 10000. Emits {BondBpsSet}.
    function setBondBps(uint16 bps) external;

    /// @notice Requirements: owner; MIN_DECISION_PERIOD ≤ period ≤ MAX_DECISION_PERIOD. Emits {DecisionPeriodSet}.
    function setDecisionPeriod(uint64 period) external;

    /// @notice Requirements: owner; bps ≤ MAX_REPORTER_SHARE_BPS. Emits {ReporterShareSet}.
    function setReporterShare(uint16 bps) external;

    function reportOf(uint256 reportId) external view returns (Report memory);
    function reportCount() external view returns (uint256);
    /// @notice Reports on `operator` still pending.
    function pendingReports(address operator) external view returns (uint256);
    /// @notice The bond a report on `operator` costs now: max(reportBond, stake × bondBps / 10000).
    function bondFor(address operator) external view returns (uint256);
    /// @notice How long a report filed now freezes the accused: the decision period plus the
    /// governance path with half of it again, at most MAX_DECISION_PERIOD.
    function freezeWindow() external view returns (uint64);
    /// @notice The block of `commitment` (0 when none).
    function committedAt(bytes32 commitment) external view returns (uint256);
    /// @notice The report of `evidenceHash` that governance may uphold (id + 1; 0 when none).
    function firstReportOf(bytes32 evidenceHash) external view returns (uint256);
    function reportBond() external view returns (uint256);
    function bondBps() external view returns (uint16);
    function decisionPeriod() external view returns (uint64);
    function reporterShareBps() external view returns (uint16);
    function registry() external view returns (address);
}
