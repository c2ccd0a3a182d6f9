"""Face finding: detect every face in a frame, choose and follow one, mesh it. Low in the layering
(imports only errors/paths/config/checkpoint/data), so tracking, metrics and commands can share it.

- ``faces``: the detection front-end (MediaPipe's short and full range, dlib as the fallback: near
  and far faces by default; ``find_faces``, ``--face-index`` numbering).
- ``follow``: one face followed frame by frame (``FaceFollower``; ``follow_face`` over a video).
- ``landmarks``: MediaPipe FaceMesh's 478 landmarks over a video (``detect_video``, ``LandmarkTrack``).
- ``dlib_face``: dlib's HOG detector, 68 landmarks and 128-d descriptor (the evaluation's
  independent face model; ships its weights).
"""
