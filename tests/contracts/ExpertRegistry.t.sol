// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/Vm.sol";
import {PovToken} from "../../contracts/PovToken.sol";
import {ModelApprovals} from "../../contracts/ModelApprovals.sol";
import {ExpertRegistry} from "../../contracts/ExpertRegistry.sol";
import {IExpertRegistry} from "../../contracts/interfaces/IExpertRegistry.sol";
import {IModelApprovals} from "../../contracts/interfaces/IModelApprovals.sol";
import {IGovernancePath} from "../../contracts/interfaces/IGovernancePath.sol";

/// @dev Random registrations, stake top-ups, unbonds, withdrawals and (as the owner) slashes.
contract RegistryHandler is TestBase {
    PovToken public immutable token;
    ExpertRegistry public immutable registry;
    bytes32 public immutable modelId;
    address[4] public operators = [
        address(0x2001),
        address(0x2002),
        address(0x2003),
        address(0x2004)
    ];

    constructor(PovToken token_, ExpertRegistry registry_, bytes32 modelId_) {
        token = token_;
        registry = registry_;
        modelId = modelId_;
    }

    function fundOperators() external {
        for (uint256 i; i < 4; ++i) {
            token.transfer(operators[i], 1e28);
            vm.prank(operators[i]);
            token.approve(address(registry), type(uint256).max);
        }
    }

    function register(uint256 who, uint256 stake, uint32 shard) external {
        address op = operators[who % 4];
        uint32[] memory shards = new uint32[](1);
        shards[0] = shard % 8;
        string[] memory addrs = new string[](1);
        addrs[0] = "/ip4/127.0.0.1/tcp/4001";
        IExpertRegistry.Registration memory reg = IExpertRegistry.Registration({
            modelId: modelId,
            shards: shards,
            price: stake % 100,
            peerId: abi.encodePacked(hex"002408011220", keccak256(abi.encode(op, block.timestamp))),
            multiaddrs: addrs,
            peerSignature: new bytes(64)
        });
        vm.prank(op);
        try registry.register(reg, bound(stake, 1e18, 1e24)) {} catch {}
    }

    function addStake(uint256 who, uint256 amount) external {
        vm.prank(operators[who % 4]);
        try registry.addStake(bound(amount, 1, 1e24)) {} catch {}
    }

    function unbond(uint256 who) external {
        vm.prank(operators[who % 4]);
        try registry.unbond() {} catch {}
    }

    function withdraw(uint256 who, uint256 wait) external {
        vm.warp(block.timestamp + bound(wait, 0, 2 days));
        vm.prank(operators[who % 4]);
        try registry.withdraw() {} catch {}
    }

    function slash(uint256 who, uint256 amount) external {
        address op = operators[who % 4];
        uint256 stake = registry.nodeOf(op).stake;
        if (stake == 0) return;
        // the handler is the registry's owner here
        try registry.slash(op, bound(amount, 1, stake), "fuzz") {} catch {}
    }
}

contract ExpertRegistryFuzzTest is TestBase {
    PovToken internal token;
    ModelApprovals internal models;
    ExpertRegistry internal registry;
    RegistryHandler internal handler;
    bytes32 internal constant MODEL = keccak256("fuzz model");
    address internal constant TREASURY = address(0x7EA5);

    function setUp() public {
        token = new PovToken(address(this), 1e32, address(this));
        models = new ModelApprovals(address(this));
        models.approveModel(MODEL, IModelApprovals.ModelInfo("fuzz", 4, 8, 8, ""));
        // the handler owns the registry so that it can slash
        registry = new ExpertRegistry(
            token,
            models,
            TREASURY,
            1e18,
            1 days,
            1 hours,
            IGovernancePath(address(0)),
            address(0xdead)
        );
        handler = new RegistryHandler(token, registry, MODEL);
        vm.prank(address(0xdead));
        registry.transferOwnership(address(handler));
        token.transfer(address(handler), 1e29);
        handler.fundOperators();
        _targetContract(address(handler));
    }

    /// Stakes sum to the registry's balance.
    function invariant_stakesSumToBalance() public view {
        uint256 sum;
        for (uint256 i; i < 4; ++i) {
            sum += registry.nodeOf(handler.operators(i)).stake;
        }
        assertEq(sum, registry.totalStaked(), "sum of stakes = totalStaked");
        assertEq(token.balanceOf(address(registry)), sum, "registry balance = sum of stakes");
    }

    /// Every listed active node is registered, bonded and staked at least the minimum.
    function invariant_activeNodesAreActive() public view {
        for (uint32 shard; shard < 8; ++shard) {
            IExpertRegistry.NodeView[] memory nodes = registry.activeNodes(MODEL, shard);
            for (uint256 i; i < nodes.length; ++i) {
                assertEq(registry.isActive(nodes[i].operator) ? 1 : 0, 1, "listed node is active");
            }
        }
    }

    function testFuzz_selectNodesIsBoundedAndDistinct(
        bytes32 seed,
        uint256 k,
        uint256[4] memory stakes
    ) public {
        for (uint256 i; i < 4; ++i) {
            handler.register(i, stakes[i], 0);
        }
        k = bound(k, 0, 6);
        IExpertRegistry.NodeView[] memory picked = registry.selectNodes(
            MODEL,
            0,
            seed,
            type(uint256).max,
            k
        );
        uint256 n = registry.activeNodes(MODEL, 0).length;
        assertEq(n, 4, "all four registered");
        assertEq(picked.length, k < n ? k : n, "k capped by eligible nodes");
        for (uint256 i; i < picked.length; ++i) {
            for (uint256 j = i + 1; j < picked.length; ++j) {
                if (picked[i].operator == picked[j].operator)
                    revert AssertionFailed("duplicate pick", i, j);
            }
        }
    }
}
