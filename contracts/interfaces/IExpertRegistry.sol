// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IExpertRegistry — staked operators serving expert shards of approved models.
/// @dev Price is POV wei per unit of work; one unit of work = one token-row (one hidden-state
/// vector) through one (layer, expert) pair. See docs/contracts.md.
interface IExpertRegistry {
    /// @dev What an operator submits to register.
    struct Registration {
        bytes32 modelId; // an approved model id (sha256 of the bundle manifest)
        uint32[] shards; // shard ids served, strictly increasing, each < the model's shardCount
        uint256 price; // POV wei per unit of work
        bytes peerId; // libp2p PeerId bytes (identity multihash of an Ed25519 or secp256k1 key)
        string[] multiaddrs; // announce addresses, without the /p2p/<peerId> suffix
        bytes peerSignature; // the PeerId key's signature over `bindingMessage(operator, peerId)`
    }

    /// @dev A node as routers see it.
    struct NodeView {
        address operator;
        bytes32 modelId;
        uint32[] shards;
        uint256 price;
        uint256 stake;
        bytes peerId;
        string[] multiaddrs;
        bytes peerSignature;
        uint64 unbondingEnds; // 0 while bonded
    }

    event NodeRegistered(
        address indexed operator,
        bytes32 indexed modelId,
        uint32[] shards,
        uint256 price,
        uint256 stake,
        bytes peerId,
        string[] multiaddrs,
        bytes peerSignature
    );
    event PriceUpdated(address indexed operator, uint256 oldPrice, uint256 newPrice);
    event MultiaddrsUpdated(address indexed operator, string[] multiaddrs);
    event ShardsUpdated(address indexed operator, uint32[] shards);
    event StakeAdded(address indexed operator, uint256 amount, uint256 stake);
    event UnbondingStarted(address indexed operator, uint256 stake, uint64 withdrawableAt);
    event StakeWithdrawn(address indexed operator, uint256 amount);
    event Slashed(
        address indexed operator,
        uint256 amount,
        uint256 remainingStake,
        address treasury,
        string reason
    );
    /// @dev A slash found nothing to take (the operator had withdrawn, or had no stake left).
    event SlashSkipped(address indexed operator, uint256 amount, string reason);
    /// @dev `operator` cannot withdraw its stake before `until` (set by the freezer; 0 = not frozen).
    event WithdrawalFrozen(address indexed operator, uint64 until);
    event FreezerSet(address oldValue, address newValue);
    event MinStakeSet(uint256 oldValue, uint256 newValue);
    event UnbondingPeriodSet(uint64 oldValue, uint64 newValue);
    event TreasurySet(address oldValue, address newValue);

    error RegistryModelNotApproved(bytes32 modelId);
    error RegistryInsufficientStake(address operator, uint256 stake, uint256 minimum);
    error RegistryAlreadyRegistered(address operator);
    error RegistryNotRegistered(address operator);
    error RegistryIsUnbonding(address operator, uint64 withdrawableAt);
    error RegistryNotUnbonding(address operator);
    error RegistryUnbondingNotOver(address operator, uint64 withdrawableAt, uint256 timestamp);
    error RegistryNoShards();
    error RegistryTooManyShards(uint256 count, uint256 max);
    error RegistryShardsNotIncreasing(uint32 previous, uint32 shard);
    error RegistryInvalidShard(bytes32 modelId, uint32 shard, uint16 shardCount);
    error RegistryNoMultiaddrs();
    error RegistryTooManyMultiaddrs(uint256 count, uint256 max);
    error RegistryInvalidMultiaddr(uint256 index, uint256 length);
    error RegistryInvalidPeerId(bytes peerId);
    error RegistryInvalidPeerSignature(uint256 length);
    error RegistryZeroAmount();
    error RegistryInvalidTreasury(address treasury);
    error RegistryInvalidFreezer(address freezer);
    error RegistryWithdrawalFrozen(address operator, uint64 until, uint256 timestamp);
    error RegistryNotFreezer(address caller);
    error RegistryFreezeTooLong(uint64 until, uint256 max);

    /// @notice Stakes `stake` POV (pulled with transferFrom) and registers the caller as a node.
    /// Requirements: not registered; approved model; shards valid and strictly increasing;
    /// 1..16 multiaddrs; a well-formed PeerId (not unique: routers take only bindings whose
    /// signature verifies, see docs/contracts.md); a 64..72-byte PeerId signature; `stake` ≥
    /// minimum stake.
    /// Emits {NodeRegistered}.
    function register(Registration calldata reg, uint256 stake) external;

    /// @notice Same as {register}, approving the stake with an ERC-2612 permit first.
    /// Emits {NodeRegistered}.
    function registerWithPermit(
        Registration calldata reg,
        uint256 stake,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Sets the caller's price (POV wei per unit of work).
    /// Requirements: registered and not unbonding. Emits {PriceUpdated}.
    function updatePrice(uint256 price) external;

    /// @notice Replaces the caller's announce addresses.
    /// Requirements: registered and not unbonding; 1..16 addresses. Emits {MultiaddrsUpdated}.
    function updateMultiaddrs(string[] calldata multiaddrs) external;

    /// @notice Replaces the set of shards the caller serves.
    /// Requirements: registered and not unbonding; valid, strictly increasing shards. Emits {ShardsUpdated}.
    function updateShards(uint32[] calldata shards) external;

    /// @notice Adds `amount` POV (pulled with transferFrom) to the caller's stake.
    /// Requirements: registered and not unbonding; `amount` > 0. Emits {StakeAdded}.
    function addStake(uint256 amount) external;

    /// @notice Leaves the network: the node stops being active now and its stake can be
    /// withdrawn after the unbonding period (it can still be slashed until then).
    /// Requirements: registered and not unbonding. Emits {UnbondingStarted}.
    function unbond() external;

    /// @notice Withdraws the whole remaining stake once the unbonding period is over and deletes
    /// the registration.
    /// Requirements: unbonding, period over; not frozen ({withdrawalFrozenUntil}). Emits {StakeWithdrawn}.
    function withdraw() external;

    /// @notice Moves `amount` of `operator`'s stake (at most all of it) to the treasury. An
    /// operator with nothing left to take is skipped, not reverted, so that the other actions of
    /// the proposal that carries the slash still execute.
    /// Requirements: caller is the owner (the timelock); `amount` > 0.
    /// Emits {Slashed}, or {SlashSkipped} when not registered or without stake.
    function slash(address operator, uint256 amount, string calldata reason) external;

    /// @notice Sets the minimum stake of an active node. Requirements: owner. Emits {MinStakeSet}.
    function setMinStake(uint256 minStake) external;

    /// @notice Sets the unbonding period in seconds. Requirements: owner;
    /// unbondingFloor() ≤ period ≤ MAX_UNBONDING_PERIOD (the floor follows the governance path
    /// live, with its margin). Emits {UnbondingPeriodSet}.
    function setUnbondingPeriod(uint64 period) external;

    /// @notice Sets where slashed stake goes. Requirements: owner; non-zero. Emits {TreasurySet}.
    function setTreasury(address treasury) external;

    /// @notice Sets the address allowed to freeze withdrawals (e.g. a fault-report contract that
    /// holds an accused operator's stake until governance decides; 0 disables freezing).
    /// Requirements: owner; 0, or a contract whose `registry()` is this registry (an EOA or an
    /// unrelated contract as freezer could freeze any operator for nothing). Emits {FreezerSet}.
    function setFreezer(address freezer) external;

    /// @notice Holds `operator`'s stake withdrawal until `until` (a unix time; lower or 0 lifts
    /// it). Requirements: caller is the freezer; registered; `until` ≤ now + MAX_FREEZE.
    /// Emits {WithdrawalFrozen}.
    function freezeWithdrawal(address operator, uint64 until) external;

    /// @notice Until when `operator`'s withdrawal is frozen (0 when never frozen).
    function withdrawalFrozenUntil(address operator) external view returns (uint64);

    /// @notice The freezer ({setFreezer}); 0 when none.
    function freezer() external view returns (address);

    /// @notice The floor of the unbonding period fixed at deployment.
    function minUnbondingPeriod() external view returns (uint64);

    /// @notice The lowest unbonding period allowed now: the larger of minUnbondingPeriod() and the
    /// governance path plus UNBONDING_MARGIN_BPS of it (0 path when no governance is bound).
    function unbondingFloor() external view returns (uint64);

    /// @notice The governance-path source (the governor); 0 when none was given.
    function governance() external view returns (address);

    /// @notice `operator`'s bonded stake (0 when not registered); cheaper than nodeOf.
    function stakeOf(address operator) external view returns (uint256);

    /// @notice The message the PeerId's key signs to bind it to `operator` on this chain and
    /// registry: keccak256(abi.encode(keccak256("pov.peer-binding.v1"), chainid, registry,
    /// operator, keccak256(peerId))). The 32 bytes are signed as-is by the libp2p key.
    function bindingMessage(
        address operator,
        bytes calldata peerId
    ) external view returns (bytes32);

    /// @notice Whether `operator` is registered, not unbonding, staked ≥ minimum, on an approved model.
    function isActive(address operator) external view returns (bool);

    /// @notice The node of `operator` (all fields zero when not registered).
    function nodeOf(address operator) external view returns (NodeView memory);

    /// @notice Active nodes serving `shard` of `modelId`.
    function activeNodes(bytes32 modelId, uint32 shard) external view returns (NodeView[] memory);

    /// @notice A deterministic stake-weighted sample without replacement of up to `k` active
    /// nodes serving (`modelId`, `shard`) at a price ≤ `maxPrice`, driven by `seed`.
    function selectNodes(
        bytes32 modelId,
        uint32 shard,
        bytes32 seed,
        uint256 maxPrice,
        uint256 k
    ) external view returns (NodeView[] memory);

    function token() external view returns (address);
    function models() external view returns (address);
    function minStake() external view returns (uint256);
    function unbondingPeriod() external view returns (uint64);
    function treasury() external view returns (address);
    /// @notice Sum of all stakes held (equals the registry's POV balance).
    function totalStaked() external view returns (uint256);

    /// @notice One page of the nodes serving `shard` of `modelId`, for routers that must scale past
    /// what `activeNodes` returns in one call (~45k gas per node): the active nodes among entries
    /// [`offset`, `offset + limit`) of the shard's list, and `total`, the list's length (bonded
    /// registrations, active or not). Read pages until `offset ≥ total`; the list is reordered
    /// when a node leaves, so a full scan should be followed by the registry's events.
    function activeNodesPage(
        bytes32 modelId,
        uint32 shard,
        uint256 offset,
        uint256 limit
    ) external view returns (NodeView[] memory nodes, uint256 total);
}
