// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IInferenceRequests} from "../interfaces/IInferenceRequests.sol";
import {IModelApprovals} from "../interfaces/IModelApprovals.sol";
import {BondCustody} from "../utils/BondCustody.sol";

/// @title InferenceRequests — on-chain requests answered by the network, challengeable, with a callback.
/// @notice See IInferenceRequests and docs/contracts.md ("Inference requests").
/// @dev Storage keeps hashes (request parameters, results); the data travels in calldata and
/// events, which keeps a request to ~2 new slots and a result to ~2. Token, treasury and
/// transfers (fees and bonds): {BondCustody}.
contract InferenceRequests is BondCustody, ReentrancyGuard, IInferenceRequests {
    /// @dev Bounds a challenge's scan and the event sizes.
    uint32 public constant MAX_TOKENS = 1024;
    uint64 public constant MAX_DEADLINE = 30 days;
    uint32 public constant MAX_CALLBACK_GAS = 2_000_000;
    /// @dev A result must be watchable by a checker for at least a minute; at most a week of waiting.
    uint32 public constant MIN_CHALLENGE_WINDOW = 60;
    uint32 public constant MAX_CHALLENGE_WINDOW = 7 days;
    /// @dev A dispute must outlast one governance round (deploy/ checks it against the path).
    uint32 public constant MIN_DISPUTE_PERIOD = 1 hours;
    uint32 public constant MAX_DISPUTE_PERIOD = 30 days;
    /// @dev 10 logits: a larger "near-tie" would void challenges against plainly wrong tokens.
    uint32 public constant MAX_TIE_MARGIN = 10_000_000;
    /// @dev Gas kept for the {CallbackRun} event after the callback returns.
    uint256 private constant CALLBACK_RESERVE = 10_000;

    IModelApprovals private immutable _models;
    uint96 private _fulfilBond;
    uint32 private _challengeWindow;
    uint32 private _disputePeriod;
    uint32 private _tieMargin;

    uint256 private _count;
    mapping(uint256 requestId => Record) private _records;
    mapping(uint256 requestId => Dispute) private _disputes;

    constructor(
        IERC20 token_,
        IModelApprovals models_,
        address treasury_,
        uint96 fulfilBond_,
        uint32 challengeWindow_,
        uint32 disputePeriod_,
        uint32 tieMargin_,
        address owner_
    ) Ownable(owner_) BondCustody(token_, treasury_) {
        _models = models_;
        _setFulfilBond(fulfilBond_);
        _setChallengeWindow(challengeWindow_);
        _setDisputePeriod(disputePeriod_);
        _setTieMargin(tieMargin_);
    }

    // ──────────────────────────── requesters ─────────────────────────

    /// @inheritdoc IInferenceRequests
    /// @dev Not nonReentrant: a consumer's callback may post its next request.
    function request(NewRequest calldata r) external returns (uint256 requestId) {
        if (!_models.isApproved(r.modelId)) revert OracleModelNotApproved(r.modelId);
        bytes32 promptHash = r.promptHash;
        if (r.prompt.length != 0) {
            promptHash = keccak256(r.prompt);
            if (r.promptHash != bytes32(0) && r.promptHash != promptHash)
                revert OracleBadPrompt(r.prompt.length, r.promptHash);
        } else if (promptHash == bytes32(0) || bytes(r.promptUri).length == 0) {
            revert OracleBadPrompt(0, promptHash);
        }
        if (r.maxTokens == 0 || r.maxTokens > MAX_TOKENS)
            revert OracleBadMaxTokens(r.maxTokens, MAX_TOKENS);
        if (r.deadline <= block.timestamp || r.deadline > block.timestamp + MAX_DEADLINE)
            revert OracleBadDeadline(r.deadline, block.timestamp, block.timestamp + MAX_DEADLINE);
        // a callback into the token (or here) would spend this contract's POV: transfer(requestId, 64)
        if (
            r.callbackGasLimit > MAX_CALLBACK_GAS ||
            (r.callback == address(0) && r.callbackGasLimit != 0) ||
            r.callback == token() ||
            r.callback == address(this)
        ) revert OracleBadCallback(r.callback, r.callbackGasLimit, MAX_CALLBACK_GAS);
        Request memory req = Request({
            requester: msg.sender,
            modelId: r.modelId,
            promptHash: promptHash,
            maxTokens: r.maxTokens,
            fee: r.fee,
            bond: _fulfilBond,
            deadline: r.deadline,
            challengeWindow: _challengeWindow,
            callback: r.callback,
            selector: r.selector,
            callbackGasLimit: r.callbackGasLimit
        });
        requestId = _count++;
        // only the two non-zero fields: writing the zero ones would cost a cold access each
        Record storage rec = _records[requestId];
        rec.paramsHash = keccak256(abi.encode(req));
        rec.status = Status.Open;
        emit RequestPosted(requestId, msg.sender, req, r.prompt, r.promptUri);
        _pull(msg.sender, r.fee);
    }

    /// @inheritdoc IInferenceRequests
    function cancel(uint256 requestId, Request calldata req) external nonReentrant {
        Record storage rec = _record(requestId, req, Status.Open);
        if (block.timestamp <= req.deadline)
            revert OracleDeadlineNotReached(requestId, req.deadline, block.timestamp);
        rec.status = Status.Cancelled;
        emit RequestCancelled(requestId, req.requester, req.fee);
        _pay(req.requester, req.fee);
    }

    // ──────────────────────────── fulfillers ─────────────────────────

    /// @inheritdoc IInferenceRequests
    function fulfil(
        uint256 requestId,
        Request calldata req,
        Result calldata result,
        string calldata evidenceUri
    ) external nonReentrant {
        Record storage rec = _record(requestId, req, Status.Open);
        if (block.timestamp > req.deadline)
            revert OracleDeadlinePassed(requestId, req.deadline, block.timestamp);
        _checkShape(result, req.maxTokens);
        rec.status = Status.Fulfilled;
        rec.resultBy = msg.sender;
        rec.fulfilledAt = uint40(block.timestamp);
        rec.resultHash = keccak256(abi.encode(result));
        emit ResultPosted(
            requestId,
            msg.sender,
            result,
            evidenceUri,
            uint64(block.timestamp) + req.challengeWindow
        );
        _pull(msg.sender, req.bond);
    }

    /// @inheritdoc IInferenceRequests
    function challenge(
        uint256 requestId,
        Request calldata req,
        Result calldata posted,
        Result calldata mine,
        string calldata evidenceUri
    ) external nonReentrant {
        Record storage rec = _record(requestId, req, Status.Fulfilled);
        uint256 windowEnd = uint256(rec.fulfilledAt) + req.challengeWindow;
        if (block.timestamp > windowEnd)
            revert OracleWindowClosed(requestId, windowEnd, block.timestamp);
        bytes32 postedHash = keccak256(abi.encode(posted));
        if (postedHash != rec.resultHash)
            revert OracleResultMismatch(requestId, rec.resultHash, postedHash);
        _checkShape(mine, req.maxTokens);
        uint32 position = _firstDifference(requestId, posted, mine);
        uint40 deadline = uint40(block.timestamp) + _disputePeriod;
        rec.status = Status.Disputed;
        _disputes[requestId] = Dispute({
            challenger: msg.sender,
            deadline: deadline,
            position: position,
            outcome: Outcome.None,
            resultHash: keccak256(abi.encode(mine))
        });
        emit Challenged(requestId, msg.sender, position, mine, evidenceUri, deadline);
        _pull(msg.sender, req.bond);
    }

    /// @inheritdoc IInferenceRequests
    function expireDispute(uint256 requestId, Request calldata req) external nonReentrant {
        Record storage rec = _record(requestId, req, Status.Disputed);
        Dispute storage d = _disputes[requestId];
        if (block.timestamp < d.deadline)
            revert OracleDeadlineNotReached(requestId, d.deadline, block.timestamp);
        rec.status = Status.Cancelled;
        address fulfiller = rec.resultBy;
        address challenger = d.challenger;
        emit DisputeExpired(requestId, fulfiller, challenger);
        emit RequestCancelled(requestId, req.requester, req.fee);
        _pay(fulfiller, req.bond);
        _pay(challenger, req.bond);
        _pay(req.requester, req.fee);
    }

    /// @inheritdoc IInferenceRequests
    function finalize(
        uint256 requestId,
        Request calldata req,
        Result calldata result
    ) external nonReentrant {
        Record storage rec = _recordOf(requestId, req);
        Status status = rec.status;
        uint256 bondBack;
        if (status == Status.Fulfilled) {
            uint256 windowEnd = uint256(rec.fulfilledAt) + req.challengeWindow;
            if (block.timestamp <= windowEnd)
                revert OracleWindowOpen(requestId, windowEnd, block.timestamp);
            bondBack = req.bond;
        } else if (status != Status.Decided) {
            revert OracleWrongStatus(requestId, status);
        }
        bytes32 given = keccak256(abi.encode(result));
        if (given != rec.resultHash) revert OracleResultMismatch(requestId, rec.resultHash, given);
        rec.status = Status.Finalised;
        address paidTo = rec.resultBy;
        emit Finalised(requestId, paidTo, req.fee, bondBack);
        _pay(paidTo, req.fee + bondBack);
        if (req.callback != address(0)) _runCallback(requestId, req, result.tokens);
    }

    // ─────────────────────────── governance ──────────────────────────

    /// @inheritdoc IInferenceRequests
    function resolveDispute(
        uint256 requestId,
        Request calldata req,
        Outcome outcome
    ) external onlyOwner nonReentrant {
        Record storage rec = _record(requestId, req, Status.Disputed);
        Dispute storage d = _disputes[requestId];
        address fulfiller = rec.resultBy;
        address challenger = d.challenger;
        uint256 bond = req.bond;
        uint256 toFulfiller;
        uint256 toChallenger;
        d.outcome = outcome;
        if (outcome == Outcome.FulfillerRight) {
            toFulfiller = 2 * bond;
            rec.status = Status.Decided;
        } else if (outcome == Outcome.ChallengerRight) {
            toChallenger = 2 * bond;
            rec.status = Status.Decided;
            rec.resultBy = challenger;
            rec.resultHash = d.resultHash;
        } else if (outcome == Outcome.Tie) {
            toFulfiller = bond;
            toChallenger = bond;
            rec.status = Status.Decided;
        } else if (outcome == Outcome.BothWrong) {
            rec.status = Status.Cancelled;
        } else {
            revert OracleBadOutcome(outcome);
        }
        emit DisputeResolved(requestId, outcome, fulfiller, challenger, toFulfiller, toChallenger);
        _pay(fulfiller, toFulfiller);
        _pay(challenger, toChallenger);
        if (outcome == Outcome.BothWrong) {
            emit RequestCancelled(requestId, req.requester, req.fee);
            _payTreasury(2 * bond);
            _pay(req.requester, req.fee);
        }
    }

    /// @inheritdoc IInferenceRequests
    function setFulfilBond(uint96 bond) external onlyOwner {
        _setFulfilBond(bond);
    }

    /// @inheritdoc IInferenceRequests
    function setChallengeWindow(uint32 window) external onlyOwner {
        _setChallengeWindow(window);
    }

    /// @inheritdoc IInferenceRequests
    function setDisputePeriod(uint32 period) external onlyOwner {
        _setDisputePeriod(period);
    }

    /// @inheritdoc IInferenceRequests
    function setTieMargin(uint32 microLogits) external onlyOwner {
        _setTieMargin(microLogits);
    }

    // ───────────────────────────── views ─────────────────────────────

    /// @inheritdoc IInferenceRequests
    function recordOf(uint256 requestId) external view returns (Record memory) {
        if (requestId >= _count) revert OracleUnknownRequest(requestId);
        return _records[requestId];
    }

    /// @inheritdoc IInferenceRequests
    function disputeOf(uint256 requestId) external view returns (Dispute memory) {
        if (requestId >= _count) revert OracleUnknownRequest(requestId);
        return _disputes[requestId];
    }

    /// @inheritdoc IInferenceRequests
    function requestCount() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc IInferenceRequests
    function fulfilBond() external view returns (uint96) {
        return _fulfilBond;
    }

    /// @inheritdoc IInferenceRequests
    function challengeWindow() external view returns (uint32) {
        return _challengeWindow;
    }

    /// @inheritdoc IInferenceRequests
    function disputePeriod() external view returns (uint32) {
        return _disputePeriod;
    }

    /// @inheritdoc IInferenceRequests
    function tieMargin() external view returns (uint32) {
        return _tieMargin;
    }

    /// @inheritdoc IInferenceRequests
    function models() external view returns (address) {
        return address(_models);
    }

    /// @inheritdoc IInferenceRequests
    function hashRequest(Request calldata req) external pure returns (bytes32) {
        return keccak256(abi.encode(req));
    }

    /// @inheritdoc IInferenceRequests
    function hashResult(Result calldata result) external pure returns (bytes32) {
        return keccak256(abi.encode(result));
    }

    // ──────────────────────────── internal ───────────────────────────

    function _recordOf(
        uint256 requestId,
        Request calldata req
    ) private view returns (Record storage rec) {
        if (requestId >= _count) revert OracleUnknownRequest(requestId);
        rec = _records[requestId];
        bytes32 given = keccak256(abi.encode(req));
        if (given != rec.paramsHash) revert OracleParamsMismatch(requestId, rec.paramsHash, given);
    }

    function _record(
        uint256 requestId,
        Request calldata req,
        Status want
    ) private view returns (Record storage rec) {
        rec = _recordOf(requestId, req);
        if (rec.status != want) revert OracleWrongStatus(requestId, rec.status);
    }

    function _checkShape(Result calldata r, uint32 maxTokens) private pure {
        uint256 n = r.tokens.length;
        if (n == 0 || n > maxTokens || r.margins.length != n)
            revert OracleBadResult(n, r.margins.length, maxTokens);
    }

    /// @dev Index of the first token where `a` and `b` differ (a missing token differs from any).
    /// Reverts when they are the same, or when both recorded a near-tie there.
    function _firstDifference(
        uint256 requestId,
        Result calldata a,
        Result calldata b
    ) private view returns (uint32) {
        uint256 na = a.tokens.length;
        uint256 nb = b.tokens.length;
        uint256 n = na < nb ? na : nb;
        uint256 i;
        while (i < n && a.tokens[i] == b.tokens[i]) ++i;
        if (i == n) {
            // same tokens: a challenge must disagree on a token, not on margins or evidence
            if (na == nb) revert OracleSameResult(requestId);
            return uint32(i);
        }
        uint32 ma = a.margins[i];
        uint32 mb = b.margins[i];
        uint32 tie = _tieMargin;
        if (ma < tie && mb < tie) revert OracleNearTie(requestId, uint32(i), ma, mb);
        return uint32(i);
    }

    /// @dev Calls the callback with at most its gas limit, copying no return data (a huge
    /// return cannot make finalisation run out of gas). The caller must leave enough gas for
    /// the limit: otherwise a finaliser could starve the callback on purpose.
    function _runCallback(
        uint256 requestId,
        Request calldata req,
        uint32[] calldata tokens
    ) private {
        uint256 limit = req.callbackGasLimit;
        uint256 needed = limit + limit / 63 + CALLBACK_RESERVE;
        if (gasleft() < needed) revert OracleCallbackGasShort(gasleft(), needed);
        bytes memory data = abi.encodeWithSelector(req.selector, requestId, tokens);
        address target = req.callback;
        bool ok;
        assembly ("memory-safe") {
            ok := call(limit, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
        // a call to an address without code "succeeds": that is not a delivered callback
        if (ok && target.code.length == 0) ok = false;
        emit CallbackRun(requestId, target, ok);
    }

    function _setFulfilBond(uint96 bond) private {
        emit FulfilBondSet(_fulfilBond, bond);
        _fulfilBond = bond;
    }

    function _setChallengeWindow(uint32 window) private {
        if (window < MIN_CHALLENGE_WINDOW || window > MAX_CHALLENGE_WINDOW)
            revert OracleParamOutOfRange(window, MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW);
        emit ChallengeWindowSet(_challengeWindow, window);
        _challengeWindow = window;
    }

    function _setDisputePeriod(uint32 period) private {
        if (period < MIN_DISPUTE_PERIOD || period > MAX_DISPUTE_PERIOD)
            revert OracleParamOutOfRange(period, MIN_DISPUTE_PERIOD, MAX_DISPUTE_PERIOD);
        emit DisputePeriodSet(_disputePeriod, period);
        _disputePeriod = period;
    }

    function _setTieMargin(uint32 microLogits) private {
        if (microLogits > MAX_TIE_MARGIN)
            revert OracleParamOutOfRange(microLogits, 0, MAX_TIE_MARGIN);
        emit TieMarginSet(_tieMargin, microLogits);
        _tieMargin = microLogits;
    }

    function _revertInvalidTreasury(address treasury_) internal pure override {
        revert OracleInvalidTreasury(treasury_);
    }
}
