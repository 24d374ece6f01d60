"""Shape outlines as polygons, and the transforms that place and hand-draw them.

Every shape is a closed polygon in unit coordinates: x to the right, y down (image
convention), its bounding box centred on the origin with its larger side equal to 2.
The renderer and the oracle's templates both start from these polygons.
"""

from __future__ import annotations

import math
import random

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart")


def _normalised(points: np.ndarray) -> np.ndarray:
    """Centre the bounding box on the origin and scale its larger side to 2."""
    low, high = points.min(axis=0), points.max(axis=0)
    return ((points - (low + high) / 2) * (2.0 / float((high - low).max()))).astype(np.float64)


def _circle(n: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    # Points up: the first vertex sits at angle -90° (y down).
    t = -math.pi / 2 + np.arange(2 * points) * math.pi / points
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _heart(n: int = 72) -> np.ndarray:
    # The classic parametric heart; its point faces down once y is flipped to image convention.
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x, -y], axis=1)


UNIT_SHAPES: dict[str, np.ndarray] = {
    "circle": _normalised(_circle()),
    "square": _normalised(np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])),
    "triangle": _normalised(np.array([[0.0, -math.sqrt(3) / 2], [1.0, 0.5], [-1.0, 0.5]])),
    "star": _normalised(_star()),
    "heart": _normalised(_heart()),
}


def rotation_matrix(degrees: float) -> np.ndarray:
    """2×2 matrix turning points clockwise on screen (y points down)."""
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def place(
    points: np.ndarray, centre: tuple[float, float], half_extent: float, degrees: float
) -> np.ndarray:
    """Unit-coordinate points scaled by `half_extent`, turned by `degrees`, moved to `centre`."""
    return points @ rotation_matrix(degrees).T * half_extent + np.asarray(centre)


def polygon_area_centroid(points: np.ndarray) -> tuple[float, np.ndarray]:
    """Area (absolute) and centroid of a simple closed polygon (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2
    cx = ((x + xn) * cross).sum() / (6 * area)
    cy = ((y + yn) * cross).sum() / (6 * area)
    return abs(float(area)), np.array([cx, cy])


def densify(points: np.ndarray, max_step: float) -> np.ndarray:
    """Insert vertices so no edge is longer than `max_step`; the original corners stay."""
    edges = np.roll(points, -1, axis=0) - points
    pieces = np.maximum(1, np.ceil(np.linalg.norm(edges, axis=1) / max_step)).astype(int)
    index = np.repeat(np.arange(len(points)), pieces)
    # Position of each new vertex along its edge: 0, 1/k, ..., (k-1)/k.
    fraction = np.arange(len(index)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return points[index] + edges[index] * (fraction / pieces[index])[:, None]


def wobble(points: np.ndarray, rng: random.Random, amplitude: float) -> np.ndarray:
    """Push a densified closed polygon in and out along its normals by a smooth random
    displacement, the way a hand-drawn line drifts from the intended one."""
    n = len(points)
    phase = np.arange(n) / n * 2 * math.pi
    offset = np.zeros(n)
    for harmonic in (2, 3, 5, 7):
        offset += (
            rng.uniform(0.4, 1.0)
            / harmonic**0.5
            * np.sin(harmonic * phase + rng.uniform(0, 2 * math.pi))
        )
    offset *= amplitude / max(float(np.abs(offset).max()), 1e-9)
    tangent = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    return points + normal * offset[:, None]
