// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IModelApprovals — the governance-owned list of approved model bundles.
/// @dev A model id is the sha256 of a model bundle's canonical manifest (see docs/contracts.md).
interface IModelApprovals {
    /// @dev Metadata recorded when a model is approved.
    struct ModelInfo {
        string name;
        uint16 layers;
        uint16 experts;
        uint16 shardCount;
        string uri;
    }

    event ModelApproved(
        bytes32 indexed modelId,
        string name,
        uint16 layers,
        uint16 experts,
        uint16 shardCount,
        string uri
    );
    event ModelRevoked(bytes32 indexed modelId);

    error ModelsAlreadyApproved(bytes32 modelId);
    error ModelsNotApproved(bytes32 modelId);
    /// @dev Zero id, empty name, or zero layers / experts / shards.
    error ModelsInvalidMetadata(bytes32 modelId);

    /// @notice Approves `modelId` with its metadata.
    /// Requirements: caller is the owner (the timelock); not yet approved; valid metadata.
    /// Emits {ModelApproved}.
    function approveModel(bytes32 modelId, ModelInfo calldata info) external;

    /// @notice Revokes an approved model. Registered nodes stay registered but stop being active.
    /// Requirements: caller is the owner (the timelock); `modelId` is approved.
    /// Emits {ModelRevoked}.
    function revokeModel(bytes32 modelId) external;

    /// @notice Whether `modelId` is currently approved.
    function isApproved(bytes32 modelId) external view returns (bool);

    /// @notice Metadata of `modelId` (reverts with {ModelsNotApproved} when not approved).
    function modelInfo(bytes32 modelId) external view returns (ModelInfo memory);

    /// @notice Every currently approved model id, in no particular order.
    function approvedModels() external view returns (bytes32[] memory);
}
