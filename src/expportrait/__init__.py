"""expportrait: ExpPortrait (CVPR 2026) — expressive portrait reenactment.

Notation (paper symbol -> code name):

==========================  ====================  =========================================
Symbol                      Code                  Shape / meaning
==========================  ====================  =========================================
V                           ``coarse``            (B, N, 3) coarse parametric mesh
V^s = B(V)                  ``dense``             (B, N_s, 3) upsampled dense mesh
beta                        ``shape``             (n_shape,) identity coefficients
psi                         ``expression``        (F, n_exp) expression coefficients
omega                       ``jaw``               (F, 3) jaw pose, axis-angle (FLAME only)
R, t                        ``rotation``, ``translation``  (F, 3) axis-angle, (F, 3) metres
c                           ``camera``            (F, 4) fx, fy, cx, cy in pixels
Delta_g                     ``static_offset``     (N_s, 3) per-subject offset
Delta_f(i)                  ``dynamic_offset``    (F, N_s, 3) per-frame offset
V~^s(i)                     ``detailed``          V^s + Delta_g + Delta_f(i)
E                           ``DrivingEncoder``    (B, F, n_exp)+(B, F, 3) -> (B, F, D)
G                           ``VertexOffsetMLP``   neutral mesh + q_i -> Delta_f(i)
N^R, N^D_{1:F}              ``ref_normal``, ``pose_normals``  rendered normal maps
==========================  ====================  =========================================

Coordinate conventions: head space is x = subject's left, y = up, z = out of the face, metres.
Camera space is OpenCV (x right, y down, z forward); X_cam = diag(1,-1,-1) R X + t.
Normal maps are camera-facing OpenGL style: (x right, y up, z towards the viewer) mapped to [0, 1].
"""

__version__ = "0.1.0"
