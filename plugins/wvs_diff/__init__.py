"""The tree diff behind ``snapshot_diff`` (SPEC §2): what changed between two directory trees — a snapshot
and another snapshot, or a snapshot and a workspace's live tree.

``wvs_diff.compare`` walks both trees by descriptors and yields the changes in a stable order;
``wvs_diff.render`` counts them, renders them like ``git diff --stat`` and turns them into JSON and back.
No hook is implemented yet: the ``snapshot_diff`` op that runs the engine will be.
"""
