"""Identity-adaptive expression transfer (paper section 4) and pose retargeting.

- ``encoder.DrivingEncoder`` E: psi (B, F, n_exp) + omega (B, F, 3) -> codes (B, F, D), temporal.
- ``vertex_mlp.VertexOffsetMLP`` G: target neutral mesh + q_i -> Delta_f (B, F, N_s, 3).
- ``model.ExpressionTransfer`` (E + G, ``TransferConfig``, checkpoint ``load`` / ``save``;
  shipped: ``checkpoints/transfer-bfm``).
- ``train.train_transfer(fits, head, TrainTransferConfig)``: self-reconstruction, accelerate.
- ``retarget.retarget(source, driving, head, model, RetargetConfig)`` -> HeadFit in the source's
  image space (its normal maps: ``tracking.visualize.render_normals``).
- ``synthetic.SyntheticWorld``: identities with identity-dependent expression detail.
"""
from expportrait.transfer.model import ExpressionTransfer, TransferConfig, default_checkpoint
from expportrait.transfer.retarget import RetargetConfig, retarget

__all__ = ["ExpressionTransfer", "RetargetConfig", "TransferConfig", "default_checkpoint", "retarget"]
