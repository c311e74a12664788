// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {
    IGovernancePath,
    IGovernancePathGuard,
    IUnbondingPeriod
} from "../interfaces/IGovernancePath.sol";

/// @title PovGovernor — a plain OpenZeppelin Governor over POV votes, executing via the timelock.
/// @dev Composition (settings, simple counting, votes with the token's ERC-6372 clock in block
/// numbers, quorum fraction, timelock control) plus bounds on every setting, so that no proposal
/// can set one that freezes governance (a voting period of 2^32−1 blocks) or opens it to anyone
/// (a quorum or proposal threshold of 0). Standard events and states.
/// Its path (voting delay + period, at the deployment's seconds per block, + the timelock delay)
/// stays below the registry's unbonding period with UNBONDING_MARGIN_BPS to spare, in both
/// directions: the registry refuses a shorter unbonding period, this governor a longer path, and
/// the timelock (through {checkTimelockDelay}) a longer delay.
contract PovGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl,
    IGovernancePath,
    IGovernancePathGuard
{
    /// @dev ~46 days at 4 s blocks, ~5 months at 12 s: longer would stall governance.
    uint48 public constant MAX_VOTING_DELAY = 1_000_000;
    uint32 public constant MAX_VOTING_PERIOD = 1_000_000;
    uint256 public constant MIN_QUORUM_PERCENT = 1;
    /// @dev Same margin as ExpertRegistry.UNBONDING_MARGIN_BPS: path × 1.5 ≤ unbonding period.
    uint256 public constant UNBONDING_MARGIN_BPS = 5000;

    /// @notice Seconds per block assumed to turn the block-numbered voting path into seconds.
    uint256 public immutable SECONDS_PER_BLOCK;
    /// @dev The deployer, allowed to bind the registry once (the registry is deployed after this).
    address private immutable _binder;
    IUnbondingPeriod private _registry;

    error GovernorSettingOutOfRange(string setting, uint256 value, uint256 min, uint256 max);
    /// @dev The governance path with its margin would reach the registry's unbonding period.
    error GovernorPathOutlastsUnbonding(uint256 pathWithMargin, uint256 unbondingPeriod);
    error GovernorRegistryBound(address caller);

    constructor(
        IVotes token_,
        TimelockController timelock_,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumPercent_,
        uint256 secondsPerBlock_
    )
        Governor("POV Governor")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token_)
        GovernorVotesQuorumFraction(quorumPercent_)
        GovernorTimelockControl(timelock_)
    {
        if (secondsPerBlock_ == 0 || secondsPerBlock_ > 3600)
            revert GovernorSettingOutOfRange("secondsPerBlock", secondsPerBlock_, 1, 3600);
        SECONDS_PER_BLOCK = secondsPerBlock_;
        _binder = msg.sender;
    }

    /// @notice Binds the registry whose unbonding period this governor's path must stay below;
    /// once, by the deployer (the registry needs this governor's address to be deployed).
    function bindRegistry(IUnbondingPeriod registry_) external {
        if (msg.sender != _binder || address(_registry) != address(0))
            revert GovernorRegistryBound(msg.sender);
        _registry = registry_;
        _checkPath(_timelockDelay());
    }

    /// @notice The registry bound by {bindRegistry}; 0 before.
    function registry() external view returns (address) {
        return address(_registry);
    }

    /// @inheritdoc IGovernancePath
    function governancePath() public view returns (uint256) {
        return _path(_timelockDelay());
    }

    /// @inheritdoc IGovernancePathGuard
    function checkTimelockDelay(uint256 delay) external view {
        _checkPath(delay);
    }

    function _timelockDelay() private view returns (uint256) {
        return TimelockController(payable(timelock())).getMinDelay();
    }

    function _path(uint256 timelockDelay) private view returns (uint256) {
        return (uint256(votingDelay()) + votingPeriod()) * SECONDS_PER_BLOCK + timelockDelay;
    }

    /// @dev Also runs while GovernorSettings is constructed, before the timelock is known.
    function _checkCurrentPath() private view {
        if (address(_registry) != address(0)) _checkPath(_timelockDelay());
    }

    function _checkPath(uint256 timelockDelay) private view {
        if (address(_registry) == address(0)) return;
        uint256 path = _path(timelockDelay);
        uint256 withMargin = path + (path * UNBONDING_MARGIN_BPS) / 10_000;
        uint256 unbonding = _registry.unbondingPeriod();
        if (withMargin > unbonding) revert GovernorPathOutlastsUnbonding(withMargin, unbonding);
    }

    function _setVotingDelay(uint48 newVotingDelay) internal override {
        if (newVotingDelay > MAX_VOTING_DELAY)
            revert GovernorSettingOutOfRange("votingDelay", newVotingDelay, 0, MAX_VOTING_DELAY);
        super._setVotingDelay(newVotingDelay);
        _checkCurrentPath();
    }

    function _setVotingPeriod(uint32 newVotingPeriod) internal override {
        if (newVotingPeriod == 0 || newVotingPeriod > MAX_VOTING_PERIOD)
            revert GovernorSettingOutOfRange("votingPeriod", newVotingPeriod, 1, MAX_VOTING_PERIOD);
        super._setVotingPeriod(newVotingPeriod);
        _checkCurrentPath();
    }

    function _setProposalThreshold(uint256 newProposalThreshold) internal override {
        if (newProposalThreshold == 0)
            revert GovernorSettingOutOfRange("proposalThreshold", 0, 1, type(uint256).max);
        super._setProposalThreshold(newProposalThreshold);
    }

    function _updateQuorumNumerator(uint256 newQuorumNumerator) internal override {
        if (newQuorumNumerator < MIN_QUORUM_PERCENT || newQuorumNumerator > 100)
            revert GovernorSettingOutOfRange(
                "quorumPercent",
                newQuorumNumerator,
                MIN_QUORUM_PERCENT,
                100
            );
        super._updateQuorumNumerator(newQuorumNumerator);
    }

    // The following overrides are required by Solidity.

    function state(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (bool) {
        return super.proposalNeedsQueuing(proposalId);
    }

    function proposalThreshold()
        public
        view
        override(Governor, GovernorSettings)
        returns (uint256)
    {
        return super.proposalThreshold();
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor()
        internal
        view
        override(Governor, GovernorTimelockControl)
        returns (address)
    {
        return super._executor();
    }
}
