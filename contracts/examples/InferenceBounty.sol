// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IInferenceRequests, IInferenceConsumer} from "../interfaces/IInferenceRequests.sol";

/// @title InferenceBounty — a bounty judged by an approved model (an example consumer).
/// @notice A sponsor escrows a POV reward for a question. Anyone claims it with an answer and
/// pays the oracle fee; the contract asks the model, through InferenceRequests, the prompt
/// `question ‖ "\nAnswer: " ‖ answer ‖ "\nCorrect? "`, and when the model's first token is
/// `acceptToken` (say, the id of " yes") the reward goes to the claimant; any other answer
/// rejects the claim and the bounty stays open. Anyone may add to the reward. One claim at a time. See docs/oracle-guide.md.
contract InferenceBounty is IInferenceConsumer {
    using SafeERC20 for IERC20;

    enum State {
        Open,
        Judging,
        Paid
    }

    event Funded(address indexed sponsor, uint256 amount, uint256 reward);
    event Claimed(address indexed claimant, uint256 indexed requestId, string answer);
    event ClaimRejected(address indexed claimant, uint256 indexed requestId, uint32 firstToken);
    event BountyPaid(address indexed claimant, uint256 indexed requestId, uint256 reward);

    error BountyNotOpen(State state);
    error BountyNotOracle(address caller);
    error BountyUnknownRequest(uint256 requestId, uint256 judging);

    IInferenceRequests public immutable oracle;
    IERC20 public immutable token;
    bytes32 public immutable modelId;
    uint32 public immutable acceptToken;
    uint32 public immutable callbackGas;
    uint256 public reward;
    string public question;
    State public state;
    address public claimant;
    uint256 public judging; // the request of the current claim

    constructor(
        IInferenceRequests oracle_,
        bytes32 modelId_,
        string memory question_,
        uint32 acceptToken_
    ) {
        oracle = oracle_;
        token = IERC20(oracle_.token());
        modelId = modelId_;
        question = question_;
        acceptToken = acceptToken_;
        callbackGas = 100_000;
    }

    /// @notice Adds `amount` POV to the reward (approve this contract first).
    function fund(uint256 amount) external {
        if (state == State.Paid) revert BountyNotOpen(state);
        reward += amount;
        emit Funded(msg.sender, amount, reward);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice The prompt the model judges for `answer`.
    function promptFor(string calldata answer) public view returns (bytes memory) {
        return abi.encodePacked(question, "\nAnswer: ", answer, "\nCorrect? ");
    }

    /// @notice Claims the bounty with `answer`; the caller pays `fee` POV to the oracle (approve
    /// this contract first). The model has until `deadline` to be asked.
    function claim(
        string calldata answer,
        uint96 fee,
        uint64 deadline
    ) external returns (uint256 requestId) {
        if (state != State.Open) revert BountyNotOpen(state);
        state = State.Judging;
        claimant = msg.sender;
        token.safeTransferFrom(msg.sender, address(this), fee);
        token.forceApprove(address(oracle), fee);
        requestId = oracle.request(
            IInferenceRequests.NewRequest({
                modelId: modelId,
                prompt: promptFor(answer),
                promptHash: bytes32(0),
                promptUri: "",
                maxTokens: 1,
                fee: fee,
                deadline: deadline,
                callback: address(this),
                selector: this.onInferenceResult.selector,
                callbackGasLimit: callbackGas
            })
        );
        judging = requestId;
        emit Claimed(msg.sender, requestId, answer);
    }

    /// @notice Reopens the bounty when the current claim's request was cancelled (nobody
    /// answered by its deadline, or its dispute ended without a result).
    function reopen() external {
        if (state != State.Judging) revert BountyNotOpen(state);
        IInferenceRequests.Status s = oracle.recordOf(judging).status;
        if (s != IInferenceRequests.Status.Cancelled) revert BountyNotOpen(state);
        state = State.Open;
        // the refunded fee goes back to the claimant who paid it
        token.safeTransfer(claimant, token.balanceOf(address(this)) - reward);
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(uint256 requestId, uint32[] calldata tokens) external {
        if (msg.sender != address(oracle)) revert BountyNotOracle(msg.sender);
        if (state != State.Judging || requestId != judging)
            revert BountyUnknownRequest(requestId, judging);
        address who = claimant;
        if (tokens[0] == acceptToken) {
            state = State.Paid;
            emit BountyPaid(who, requestId, reward);
            token.safeTransfer(who, reward);
        } else {
            state = State.Open;
            emit ClaimRejected(who, requestId, tokens[0]);
        }
    }
}
