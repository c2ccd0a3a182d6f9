"""The engines: what turns the driven head into frames at the source's resolution.

Each engine is one module behind the small interface of ``engines.base.Engine``; this registry
is the one place an engine's name is looked up:

- ``warp_first`` (default): the reference frame warped at its own resolution by its own head
  driven through expression and pose, over a still background (``engines.warp_first``);
- ``mesh_warp``: the reference warped by the head with the transfer model's Delta_f;
- ``full``: the paper's DiT generator on face crops; its ablations ``base_only`` (no Delta_g,
  Delta_f) and ``direct_copy`` (the driver's Delta_f) are options of the same engine
  (``engines.dit``);
- ``repeat_reference``: the reference crop repeated (a baseline).
"""
from __future__ import annotations

from expportrait.errors import UserError

# name -> (module under expportrait.engines, class name, options)
_REGISTRY = {
    "warp_first": ("warp_first", "WarpFirst", {}),
    "full": ("dit", "DiT", {"offsets": "personalized"}),
    "base_only": ("dit", "DiT", {"offsets": "base_only"}),
    "direct_copy": ("dit", "DiT", {"offsets": "direct_copy"}),
    "repeat_reference": ("repeat_reference", "RepeatReference", {}),
    "mesh_warp": ("mesh_warp", "MeshWarp", {}),
}
ENGINE_NAMES = tuple(_REGISTRY)
DEFAULT_ENGINE = "warp_first"


def check_engine(name: str) -> str:
    """-> ``name`` if it is a registered engine, else one UserError line naming the choices."""
    if name not in _REGISTRY:
        raise UserError(f"engine must be one of {', '.join(ENGINE_NAMES)}, got {name!r}")
    return name


def engine_class(name: str):
    """-> (the engine's class, its options) without building it."""
    import importlib
    module, cls, options = _REGISTRY[check_engine(name)]
    return getattr(importlib.import_module(f"expportrait.engines.{module}"), cls), dict(options)


def build_engine(name: str, parts):
    """-> the engine ``name`` built from ``parts`` (``engines.base.Parts``: loads only what the
    engine asks for)."""
    cls, options = engine_class(name)
    return cls(parts, **options)


def is_stochastic(name: str) -> bool:
    """Whether the engine's result depends on the seed (the sampling engines)."""
    return engine_class(name)[0].stochastic
