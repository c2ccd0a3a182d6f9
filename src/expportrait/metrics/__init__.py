"""Evaluation metrics (paper section 7). Nothing heavy is imported here.

- ``image``: PSNR, SSIM (Wang et al. settings), L1 on (F, H, W, 3) videos.
- ``lpips``: LPIPS v0.1 in plain torch with user-supplied torchvision backbone + lpips heads.
- ``identity``: CSIM (dlib descriptor; ArcFace ONNX when supplied), dlib distance. The dlib face
  model, independent of the tracker, lives in ``detection.dlib_face``.
- ``motion``: AED, APD, landmark jitter, NME over caller-supplied tracked sequences.
- ``fvd``: Fréchet distance and FVD with a user-supplied I3D TorchScript.
- ``report``: ``evaluate(...)`` assembling all of them into a JSON-ready dict.
"""
