"""Who is who: face embeddings, the local people gallery, keep/hide decisions.

    embedder = embedders.create("dlib")        # 128-d vectors, offline (the `people` extra)
    gallery = Gallery()                        # SQLite in the user data folder: names + vectors
    identifier = Identifier.from_config(config.identity, detector)
    dets = identifier.decide(frame, dets)      # keep=True only where the rule says visible
    votes = TrackVotes(identifier)             # video: one decision per track, from a few frames
"""

from __future__ import annotations

from ..registry import Registry
from .base import Embedder, Embedding

# `people discover` links faces closer than this. Measured with dlib on ../shared/data/identities:
# each person's photos join up through links of at most 0.534 (deepface_id04; alex_lacamoire
# 0.507), while the nearest faces of two different people are 0.659 apart (rose_leslie ~
# deepface_id03). bench/people.py prints both.
DISCOVER_DISTANCE = 0.55

embedders: Registry[Embedder] = Registry("embedder")
embedders.register(
    "dlib", "faceveil.identity.dlib:DlibEmbedder", extra="people",
    help="dlib ResNet, 5-point alignment, 128-d (face_recognition_models)",
)

__all__ = ["DISCOVER_DISTANCE", "Embedder", "Embedding", "embedders"]
