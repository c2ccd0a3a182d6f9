"""Conditioned Wan2.1 DiT generator (paper section 5).

Modules (import them directly; this package imports nothing heavy):

- ``config``: ``GeneratorConfig``, ``PRESETS`` (tiny, demo, wan2.1-1.3b, wan2.1-14b), ``get_preset``
- ``encoders``: ``PoseEncoder3D`` (driving normals), ``RefEncoder2D`` (reference normal)
- ``model``: ``GenCond``, ``ReenactGenerator`` (diffusers ``WanTransformer3DModel`` + adapters)
- ``vae``: ``build_vae``, ``encode_video``, ``decode_latents`` (streamed / tiled Wan VAE)
- ``flow``: ``sample_timesteps``, ``flow_matching_loss`` (Wan-style rectified flow)
- ``sampling``: ``get_sigmas``, ``sample_euler``, ``sample_unipc``, ``cfg``, ``guided_model_fn``
- ``longvideo``: ``generate`` (clips of the trained length chained on a shared frame)
"""
