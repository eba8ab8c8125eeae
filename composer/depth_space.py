"""The refiner's depth space, defined once: inverse depth scaled to [0, DEPTH_SCALE] as
``DEPTH_SCALE * min(1, near_m / z)`` (10 at near_m or nearer, sky at z = inf -> 0).

The composer owns it because the shards are made in it (``composer.ops.to_inverse``); the
shard store records it, and the trainer, evaluation and ``gen refine`` read it from here
(through ``trainer.contract``).  No imports, so the store and torch code can use it freely.
"""
DEPTH_SCALE = 10.0
FORMULA = f"{DEPTH_SCALE:g} * min(1, near_m / z_metres); sky (z = inf) -> 0"
