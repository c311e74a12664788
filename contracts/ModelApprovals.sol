// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IModelApprovals} from "./interfaces/IModelApprovals.sol";

/// @title ModelApprovals — the governance-owned list of approved model bundles.
contract ModelApprovals is Ownable, IModelApprovals {
    mapping(bytes32 modelId => ModelInfo) private _info;
    bytes32[] private _approved;
    /// @dev Index + 1 of a model id in `_approved`; 0 when not approved.
    mapping(bytes32 modelId => uint256) private _position;

    constructor(address owner_) Ownable(owner_) {}

    /// @inheritdoc IModelApprovals
    function approveModel(bytes32 modelId, ModelInfo calldata info) external onlyOwner {
        if (_position[modelId] != 0) revert ModelsAlreadyApproved(modelId);
        if (
            modelId == bytes32(0) ||
            bytes(info.name).length == 0 ||
            info.layers == 0 ||
            info.experts == 0 ||
            info.shardCount == 0
        ) revert ModelsInvalidMetadata(modelId);
        _info[modelId] = info;
        _approved.push(modelId);
        _position[modelId] = _approved.length;
        emit ModelApproved(
            modelId,
            info.name,
            info.layers,
            info.experts,
            info.shardCount,
            info.uri
        );
    }

    /// @inheritdoc IModelApprovals
    function revokeModel(bytes32 modelId) external onlyOwner {
        uint256 pos = _position[modelId];
        if (pos == 0) revert ModelsNotApproved(modelId);
        bytes32 last = _approved[_approved.length - 1];
        _approved[pos - 1] = last;
        _position[last] = pos;
        _approved.pop();
        delete _position[modelId];
        delete _info[modelId];
        emit ModelRevoked(modelId);
    }

    /// @inheritdoc IModelApprovals
    function isApproved(bytes32 modelId) external view returns (bool) {
        return _position[modelId] != 0;
    }

    /// @inheritdoc IModelApprovals
    function modelInfo(bytes32 modelId) external view returns (ModelInfo memory) {
        if (_position[modelId] == 0) revert ModelsNotApproved(modelId);
        return _info[modelId];
    }

    /// @inheritdoc IModelApprovals
    function approvedModels() external view returns (bytes32[] memory) {
        return _approved;
    }
}
