"""The cascade graph: which downstream actions a reversal reaches.

An edge `upstream -> downstream` (ActionLink) is followed only when the manifest lists the downstream action's
type in the upstream type's `cascades_to`. The walk goes level by level, one query per level, so its cost grows
with the graph's depth, not with the number of actions.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection

from actions.models import Action, ActionLink
from policies.manifest import Manifest

# SQLite refuses statements with more than 32,766 parameters; PostgreSQL takes a frontier of any size at once.
_SQLITE_CHUNK = 30_000


@dataclass(frozen=True, slots=True)  # slots: an incident's walk holds one per action
class CascadeNode:
    action_id: int
    depth: int
    via: int | None  # the action it was first reached from; None for a target
    action_type: str


@dataclass(frozen=True)
class LoopArrival:
    """The cascade reached an action already on the path that led to it."""

    from_action: int
    to_action: int
    depth: int
    path: tuple[int, ...]  # action ids from the target to `to_action` again


@dataclass
class CascadeWalk:
    nodes: dict[int, CascadeNode] = field(default_factory=dict)  # in discovery order, targets first
    loops: list[LoopArrival] = field(default_factory=list)

    @property
    def targets(self) -> list[CascadeNode]:
        return [node for node in self.nodes.values() if node.depth == 0]

    @property
    def downstream(self) -> list[CascadeNode]:
        return [node for node in self.nodes.values() if node.depth > 0]

    @property
    def max_depth(self) -> int:
        return max((node.depth for node in self.nodes.values()), default=0)

    def path_to(self, action_id: int) -> tuple[int, ...]:
        path = [action_id]
        node = self.nodes[action_id]
        while node.via is not None:
            path.append(node.via)
            node = self.nodes[node.via]
        return tuple(reversed(path))


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    if connection.vendor != "sqlite":
        yield ids
        return
    for start in range(0, len(ids), _SQLITE_CHUNK):
        yield ids[start : start + _SQLITE_CHUNK]


def walk_cascade(target_ids: Iterable[int], manifest: Manifest, *, max_depth: int | None = None) -> CascadeWalk:
    """Every action a reversal of `target_ids` reaches, each with its depth, to the graph's end (or `max_depth`).

    A diamond (one action reached by two paths) yields one node; an edge back to an action on the path that
    led to it yields a LoopArrival and is not followed.
    """
    walk = CascadeWalk()
    targets = sorted(set(target_ids))
    for chunk in _chunks(targets):
        for action_id, action_type in Action.objects.filter(pk__in=chunk).values_list("pk", "action_type"):
            walk.nodes[action_id] = CascadeNode(action_id, 0, None, action_type)
    frontier = [node for node in walk.nodes.values()]
    depth = 0
    while frontier and (max_depth is None or depth < max_depth):
        depth += 1
        by_id = {node.action_id: node for node in frontier}
        edges: list[tuple[int, int, str]] = []
        for chunk in _chunks(sorted(by_id)):
            edges.extend(
                ActionLink.objects.filter(upstream_id__in=chunk)
                .order_by("upstream_id", "downstream_id")
                .values_list("upstream_id", "downstream_id", "downstream__action_type")
            )
        next_frontier = []
        for upstream_id, downstream_id, downstream_type in edges:
            upstream = by_id[upstream_id]
            upstream_policy = manifest.action_type(upstream.action_type)
            if upstream_policy is None or downstream_type not in upstream_policy.cascades_to:
                continue
            if downstream_id in walk.nodes:
                path = walk.path_to(upstream_id)
                if downstream_id in path:
                    walk.loops.append(LoopArrival(upstream_id, downstream_id, depth, (*path, downstream_id)))
                continue  # reached again by another path: a diamond, covered by its one node
            node = CascadeNode(downstream_id, depth, upstream_id, downstream_type)
            walk.nodes[downstream_id] = node
            next_frontier.append(node)
        frontier = next_frontier
    return walk
