"""Group photos: every chosen face of a photo (or video) animated, each by its own driver or all
by one (``reenact``: ``reenact_group``), their results composited into one frame so that no
face's warp drags a neighbour (``compose``). Above the pipeline, which it runs once per face."""
