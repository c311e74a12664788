// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IInferenceRequests, IInferenceConsumer} from "../interfaces/IInferenceRequests.sol";

/// @title OracleConsumerMock — a callback target for the InferenceRequests tests (not deployed).
/// @dev Behaves as `mode` says: records the tokens, reverts, burns all its gas, returns a huge
/// blob, re-enters `finalize`, or posts a follow-up request from inside the callback.
contract OracleConsumerMock is IInferenceConsumer {
    enum Mode {
        Record,
        Revert,
        BurnGas,
        ReturnBomb,
        Reenter,
        FollowUp
    }

    error MockRejected(uint256 requestId);

    IInferenceRequests public immutable oracle;
    Mode public mode;
    uint256 public calls;
    uint256 public lastRequestId;
    uint32[] private _lastTokens;
    bool public reentryFailed;
    uint256 public followUpId;

    // what Reenter replays and FollowUp posts
    IInferenceRequests.Request private _replayReq;
    IInferenceRequests.Result private _replayResult;
    IInferenceRequests.NewRequest private _followUp;

    constructor(IInferenceRequests oracle_) {
        oracle = oracle_;
    }

    function setMode(Mode m) external {
        mode = m;
    }

    function setReplay(
        IInferenceRequests.Request calldata req,
        IInferenceRequests.Result calldata result
    ) external {
        _replayReq = req;
        _replayResult = result;
    }

    function setFollowUp(IInferenceRequests.NewRequest calldata r) external {
        _followUp = r;
        IERC20(oracle.token()).approve(address(oracle), type(uint256).max);
    }

    /// @notice Posts a request as this contract (it is then the requester).
    function ask(IInferenceRequests.NewRequest calldata r) external returns (uint256) {
        IERC20(oracle.token()).approve(address(oracle), type(uint256).max);
        return oracle.request(r);
    }

    function lastTokens() external view returns (uint32[] memory) {
        return _lastTokens;
    }

    function onInferenceResult(uint256 requestId, uint32[] calldata tokens) external {
        if (mode == Mode.Revert) revert MockRejected(requestId);
        if (mode == Mode.BurnGas) {
            for (;;) calls += 1;
        }
        if (mode == Mode.ReturnBomb) {
            assembly {
                return(0, 1000000)
            }
        }
        if (mode == Mode.Reenter) {
            // finalize again from inside the callback: must fail and pay nothing twice
            try oracle.finalize(requestId, _replayReq, _replayResult) {} catch {
                reentryFailed = true;
            }
        }
        if (mode == Mode.FollowUp) followUpId = oracle.request(_followUp);
        calls += 1;
        lastRequestId = requestId;
        _lastTokens = tokens;
    }
}
