// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBondCustody} from "./IBondCustody.sol";

/// @title IInferenceRequests — contracts ask an approved model a question, the network answers.
/// @dev A requester posts a prompt and a POV fee; anyone fulfils it with a bond (the greedy
/// tokens, the top-1/top-2 logit margin of each, and the hash of the per-call evidence file);
/// a challenge window follows. Unchallenged, `finalize` pays the fee and the bond to the
/// fulfiller and calls the requester's callback with the tokens. A challenger posts a different
/// result with the same bond: the contract finds the first differing token and refuses the
/// challenge when both sides recorded a near-tie there (an honest fulfiller on other hardware
/// never loses its bond); otherwise governance decides by re-running the request (`pov oracle
/// check`), and an undecided dispute expires with every bond and the fee returned. Decoding is
/// always greedy (temperature 0): the only decoding a dispute can check. Request parameters are
/// kept as a hash: every later call passes the {Request} emitted by {RequestPosted}.
/// See docs/contracts.md ("Inference requests").
interface IInferenceRequests is IBondCustody {
    enum Status {
        None,
        Open, // waiting for a result until the deadline
        Fulfilled, // a result posted, challenge window running
        Disputed, // challenged: governance decides before the dispute deadline
        Decided, // dispute decided: the winning result is finalised by anyone
        Finalised, // fee paid, callback run
        Cancelled // deadline passed unfulfilled, or dispute undecided / both wrong: fee refunded
    }

    /// @dev A dispute's verdict. Tie: the first differing token is a near-tie on the reference
    /// run, both results are honest; the fulfiller's result stands, both bonds are returned.
    /// BothWrong: neither result matches the reference; both bonds go to the treasury and the
    /// fee back to the requester.
    enum Outcome {
        None,
        FulfillerRight,
        ChallengerRight,
        Tie,
        BothWrong
    }

    /// @dev Everything a request fixes, hashed into storage; `bond` and `challengeWindow` are the
    /// contract's parameters at request time (later governance changes do not touch it).
    struct Request {
        address requester;
        bytes32 modelId; // approved in ModelApprovals at request time
        bytes32 promptHash; // keccak256 of the prompt's UTF-8 bytes
        uint32 maxTokens;
        uint96 fee; // POV wei, paid to whoever's result is finalised
        uint96 bond; // POV wei a fulfiller (and a challenger) posts
        uint64 deadline; // a result must be posted by then
        uint32 challengeWindow; // seconds after a result during which it can be challenged
        address callback; // called on finalisation (address(0): none)
        bytes4 selector; // callback(uint256 requestId, uint32[] tokens)
        uint32 callbackGasLimit;
    }

    /// @dev A result: the greedy token ids, each token's top-1 minus top-2 logit in micro-logits
    /// (1e-6, saturating at 2^32 − 1), and the keccak256 of the evidence file (the signed
    /// expert calls, router/evidence.ts) at `uri` in the event.
    struct Result {
        uint32[] tokens;
        uint32[] margins;
        bytes32 evidenceHash;
    }

    /// @dev What a new request needs. `prompt` empty: `promptHash` and `promptUri` say where it is.
    struct NewRequest {
        bytes32 modelId;
        bytes prompt;
        bytes32 promptHash;
        string promptUri;
        uint32 maxTokens;
        uint96 fee;
        uint64 deadline;
        address callback;
        bytes4 selector;
        uint32 callbackGasLimit;
    }

    struct Record {
        bytes32 paramsHash; // keccak256(abi.encode(Request))
        Status status;
        address resultBy; // the fulfiller, or the challenger once it won
        uint40 fulfilledAt;
        bytes32 resultHash; // keccak256(abi.encode(Result)) of the result to deliver
    }

    struct Dispute {
        address challenger;
        uint40 deadline; // governance decides before this, or anyone expires the dispute
        uint32 position; // index of the first differing token
        Outcome outcome;
        bytes32 resultHash; // the challenger's result
    }

    event RequestPosted(
        uint256 indexed requestId,
        address indexed requester,
        Request request,
        bytes prompt,
        string promptUri
    );
    event ResultPosted(
        uint256 indexed requestId,
        address indexed fulfiller,
        Result result,
        string evidenceUri,
        uint64 challengeDeadline
    );
    event Challenged(
        uint256 indexed requestId,
        address indexed challenger,
        uint32 position,
        Result result,
        string evidenceUri,
        uint40 disputeDeadline
    );
    event DisputeResolved(
        uint256 indexed requestId,
        Outcome outcome,
        address fulfiller,
        address challenger,
        uint256 fulfillerPaid,
        uint256 challengerPaid
    );
    event DisputeExpired(uint256 indexed requestId, address fulfiller, address challenger);
    event Finalised(uint256 indexed requestId, address indexed paidTo, uint256 fee, uint256 bond);
    /// @dev The callback's outcome; `ok == false` changes nothing else (fee and result are final).
    event CallbackRun(uint256 indexed requestId, address callback, bool ok);
    event RequestCancelled(uint256 indexed requestId, address indexed requester, uint256 refund);
    event FulfilBondSet(uint96 oldValue, uint96 newValue);
    event ChallengeWindowSet(uint32 oldValue, uint32 newValue);
    event DisputePeriodSet(uint32 oldValue, uint32 newValue);
    event TieMarginSet(uint32 oldValue, uint32 newValue);

    error OracleModelNotApproved(bytes32 modelId);
    error OracleBadPrompt(uint256 promptBytes, bytes32 promptHash);
    error OracleBadMaxTokens(uint32 maxTokens, uint32 max);
    error OracleBadDeadline(uint64 deadline, uint256 timestamp, uint256 maxDeadline);
    error OracleBadCallback(address callback, uint32 gasLimit, uint32 maxGasLimit);
    error OracleUnknownRequest(uint256 requestId);
    error OracleParamsMismatch(uint256 requestId, bytes32 expected, bytes32 given);
    error OracleWrongStatus(uint256 requestId, Status status);
    error OracleDeadlinePassed(uint256 requestId, uint64 deadline, uint256 timestamp);
    error OracleDeadlineNotReached(uint256 requestId, uint256 deadline, uint256 timestamp);
    error OracleBadResult(uint256 tokens, uint256 margins, uint32 maxTokens);
    error OracleResultMismatch(uint256 requestId, bytes32 expected, bytes32 given);
    error OracleWindowClosed(uint256 requestId, uint256 windowEnd, uint256 timestamp);
    error OracleWindowOpen(uint256 requestId, uint256 windowEnd, uint256 timestamp);
    error OracleSameResult(uint256 requestId);
    /// @dev Both results recorded a margin below `tieMargin` at the first differing token: two
    /// honest runs on different hardware may split there, so the challenge is refused.
    error OracleNearTie(
        uint256 requestId,
        uint32 position,
        uint32 fulfillerMargin,
        uint32 challengerMargin
    );
    error OracleBadOutcome(Outcome outcome);
    /// @dev Fewer than the callback's gas limit (plus the 1/64 a call keeps back) is left.
    error OracleCallbackGasShort(uint256 gasLeft, uint256 needed);
    error OracleParamOutOfRange(uint256 value, uint256 min, uint256 max);
    error OracleInvalidTreasury(address treasury);

    /// @notice Posts a request, pulling `fee` POV from the caller (approve first).
    /// Requirements: model approved; `prompt` non-empty, or empty with non-zero `promptHash`
    /// and a `promptUri`; 1 ≤ maxTokens ≤ MAX_TOKENS; now < deadline ≤ now + MAX_DEADLINE;
    /// callback gas ≤ MAX_CALLBACK_GAS (and 0 without callback).
    /// Emits {RequestPosted}.
    function request(NewRequest calldata r) external returns (uint256 requestId);

    /// @notice Posts a result with the request's bond (pulled from the caller).
    /// Requirements: status Open; now ≤ deadline; 1 ≤ tokens ≤ maxTokens; one margin per token.
    /// Emits {ResultPosted}.
    function fulfil(
        uint256 requestId,
        Request calldata req,
        Result calldata result,
        string calldata evidenceUri
    ) external;

    /// @notice Challenges the posted result (`posted`) with another one, posting the same bond.
    /// Requirements: status Fulfilled; window open; `posted` is the posted result; `mine`
    /// differs from it and is well formed; not a near-tie at the first differing token.
    /// Emits {Challenged}.
    function challenge(
        uint256 requestId,
        Request calldata req,
        Result calldata posted,
        Result calldata mine,
        string calldata evidenceUri
    ) external;

    /// @notice Governance decides a dispute (after re-running the request). FulfillerRight /
    /// ChallengerRight: the winner gets both bonds, its result is delivered by {finalize}.
    /// Tie: both bonds returned, the fulfiller's result is delivered. BothWrong: both bonds to
    /// the treasury, the fee back to the requester, nothing delivered.
    /// Requirements: owner (the timelock); status Disputed; outcome not None. Emits {DisputeResolved}.
    function resolveDispute(uint256 requestId, Request calldata req, Outcome outcome) external;

    /// @notice Closes a dispute governance did not decide in time: both bonds and the fee are
    /// returned, nothing is delivered. Requirements: status Disputed; dispute deadline passed.
    /// Emits {DisputeExpired} and {RequestCancelled}.
    function expireDispute(uint256 requestId, Request calldata req) external;

    /// @notice Pays the fee (and an unchallenged fulfiller's bond) and runs the callback with
    /// `result.tokens`. A reverting or out-of-gas callback is recorded ({CallbackRun} ok=false)
    /// and changes nothing else. Anyone may call it.
    /// Requirements: status Fulfilled with the window over, or Decided; `result` is the one to
    /// deliver; enough gas left for the callback's limit. Emits {Finalised}, {CallbackRun}.
    function finalize(uint256 requestId, Request calldata req, Result calldata result) external;

    /// @notice Refunds the fee of a request nobody fulfilled by its deadline. Anyone may call it.
    /// Requirements: status Open; deadline passed. Emits {RequestCancelled}.
    function cancel(uint256 requestId, Request calldata req) external;

    /// @notice Requirements: owner. Emits {FulfilBondSet}.
    function setFulfilBond(uint96 bond) external;

    /// @notice Requirements: owner; within the bounds. Emits {ChallengeWindowSet}.
    function setChallengeWindow(uint32 window) external;

    /// @notice Requirements: owner; within the bounds. Emits {DisputePeriodSet}.
    function setDisputePeriod(uint32 period) external;

    /// @notice Requirements: owner; ≤ MAX_TIE_MARGIN. Emits {TieMarginSet}.
    function setTieMargin(uint32 microLogits) external;

    function recordOf(uint256 requestId) external view returns (Record memory);
    function disputeOf(uint256 requestId) external view returns (Dispute memory);
    function requestCount() external view returns (uint256);
    function fulfilBond() external view returns (uint96);
    function challengeWindow() external view returns (uint32);
    function disputePeriod() external view returns (uint32);
    /// @notice Margins below this (micro-logits) are near-ties.
    function tieMargin() external view returns (uint32);
    function models() external view returns (address);
    /// @notice keccak256(abi.encode(req)), the hash a request's record keeps.
    function hashRequest(Request calldata req) external pure returns (bytes32);
    /// @notice keccak256(abi.encode(result)), the hash a record keeps of a result.
    function hashResult(Result calldata result) external pure returns (bytes32);
}

/// @title IInferenceConsumer — what a requester's callback receives (any selector with this shape).
interface IInferenceConsumer {
    function onInferenceResult(uint256 requestId, uint32[] calldata tokens) external;
}
