"""A procedural, fundus-like image generator with exact lesion masks.

Why: kdbench must run on a fresh machine with nothing to download, and explanation
metrics need to know *where* the class evidence is. Every image has the same anatomy
(a reddish, vignetted, textured field of view, a bright optic disc and dark vessels:
distractors present in every class); the class evidence is small lesions of distinct
types drawn with hard edges, and the returned mask marks exactly the pixels a lesion
changed. The look is inspired by retinal photographs; the lesions are not clinical
models.

Lesion types (each distinguishable in grayscale too):

- ``exudate``: a small, bright yellow, solid disc (bright like the optic disc, but small);
- ``haemorrhage``: a dark red ellipse (dark like the vessels, but blob-shaped);
- ``cotton_wool``: a pale ring with a hollow centre.

Generation is vectorised over images; 2,000 images of 32x32 take a fraction of a second.
"""

from __future__ import annotations

import numpy as np

LESION_TYPES = ("exudate", "haemorrhage", "cotton_wool")
_LESION_RGB = np.array([[0.97, 0.86, 0.30], [0.33, 0.03, 0.03], [0.92, 0.90, 0.82]], dtype=np.float32)


def render(n: int, size: int, rng: np.random.Generator, task: str = "multiclass", return_clean: bool = False,
           by_kind: bool = False):
    """Draw ``n`` images.

    Returns ``images`` (n, H, W, 3) float32 in [0, 1], ``masks`` (n, H, W) bool,
    ``labels`` ((n,) int64, or (n, 3) float32 for multilabel) and, with
    ``return_clean``, the same images before any lesion was drawn. With ``by_kind`` the
    masks are (n, 3, H, W), one per lesion type (a pixel belongs to the lesion drawn last
    over it): a multilabel image's evidence for one label is that label's lesions only.
    The images and labels do not depend on ``by_kind``.
    """
    coords = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2 - 1
    Y, X = np.meshgrid(coords, coords, indexing="ij")
    R = np.sqrt(X**2 + Y**2)
    fov = (R < 0.96).astype(np.float32)

    img, (disc_x, disc_y, disc_r) = _anatomy(n, X, Y, R, rng)
    img = img * fov[None, :, :, None]
    img += rng.normal(0.0, 0.02, img.shape).astype(np.float32) * fov[None, :, :, None]
    img = np.clip(img, 0.0, 1.0)
    clean = img.copy() if return_clean else None

    kinds, labels = _lesion_plan(n, task, rng)
    masks = np.zeros((n, size, size), dtype=bool)
    kind_masks = np.zeros((n, len(LESION_TYPES), size, size), dtype=bool)
    for slot in range(kinds.shape[1]):
        kind = kinds[:, slot]
        active = kind >= 0
        cx, cy = _place(n, disc_x, disc_y, disc_r, rng)
        shape = _lesion_shape(kind, cx, cy, X, Y, rng) & active[:, None, None]
        shade = _LESION_RGB[np.clip(kind, 0, None)] * rng.uniform(0.92, 1.05, (n, 1)).astype(np.float32)
        texture = 1 + rng.normal(0, 0.05, (n, size, size, 1)).astype(np.float32)
        lesion = np.clip(shade[:, None, None, :] * texture, 0.01, 0.99)
        img = np.where(shape[..., None], lesion, img)
        masks |= shape
        if by_kind:  # the new lesion's pixels are its type's, and no longer any other type's
            onehot = np.arange(len(LESION_TYPES))[None, :] == kind[:, None]
            kind_masks = np.where(shape[:, None], onehot[:, :, None, None], kind_masks)
    if by_kind:
        masks = kind_masks
    return (img, masks, labels, clean) if return_clean else (img, masks, labels)


def _anatomy(n, X, Y, R, rng):
    """Background, optic disc and vessels: the same structures in every class.

    Returns the images and the optic disc geometry, which lesions avoid.
    """
    f32 = np.float32
    base = np.array([0.80, 0.38, 0.17], f32)[None, :] * rng.uniform(0.8, 1.1, (n, 1)).astype(f32)
    base = base * rng.uniform(0.9, 1.1, (n, 3)).astype(f32)
    vignette = (1 - 0.4 * R**2)[None, :, :, None]
    texture = np.zeros((n,) + X.shape, f32)
    for _ in range(3):
        fx, fy = rng.uniform(1.0, 4.0, (2, n, 1, 1)).astype(f32)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(f32)
        texture += 0.04 * np.cos(np.pi * (fx * X + fy * Y) + phase)
    img = base[:, None, None, :] * vignette * (1 + texture[..., None])

    side = rng.choice([-1.0, 1.0], n).astype(f32)
    dx = side * rng.uniform(0.45, 0.6, n).astype(f32)
    dy = rng.uniform(-0.2, 0.2, n).astype(f32)
    dr = rng.uniform(0.16, 0.21, n).astype(f32)
    d = np.sqrt((X[None] - dx[:, None, None]) ** 2 + (Y[None] - dy[:, None, None]) ** 2)
    alpha = np.clip((dr[:, None, None] - d) / 0.06 + 0.5, 0, 1)[..., None]
    img = img * (1 - alpha) + np.array([0.98, 0.84, 0.55], f32) * alpha

    for _ in range(4):
        slope = rng.uniform(-0.9, 0.9, (n, 1, 1)).astype(f32)
        amp = rng.uniform(0.05, 0.2, (n, 1, 1)).astype(f32)
        freq = rng.uniform(1.5, 4.0, (n, 1, 1)).astype(f32)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(f32)
        width = rng.uniform(0.03, 0.05, (n, 1, 1)).astype(f32)
        u = X[None] - dx[:, None, None]
        centre = dy[:, None, None] + slope * u + amp * np.sin(freq * u + phase)
        grad = slope + amp * freq * np.cos(freq * u + phase)
        dist = np.abs(Y[None] - centre) / np.sqrt(1 + grad**2)
        v = (np.clip(1 - dist / width, 0, 1) * 0.75)[..., None]
        img = img * (1 - v) + np.array([0.42, 0.07, 0.05], f32) * v
    return img.astype(f32), (dx, dy, dr)


def _lesion_plan(n, task, rng):
    """Which lesion type goes in which slot (-1: empty) and the resulting labels."""
    k = len(LESION_TYPES)
    if task == "multiclass":
        labels = rng.integers(0, k, n)
        count = rng.integers(1, 4, n)
        kinds = np.where(np.arange(3)[None, :] < count[:, None], labels[:, None], -1)
        return kinds, labels.astype(np.int64)
    if task == "binary":
        labels = rng.integers(0, 2, n)
        count = rng.integers(1, 4, n) * labels
        types = rng.integers(0, k, (n, 3))
        kinds = np.where(np.arange(3)[None, :] < count[:, None], types, -1)
        return kinds, labels.astype(np.int64)
    if task == "multilabel":
        present = rng.random((n, k)) < 0.5
        second = rng.random((n, k)) < 0.5
        kinds = np.full((n, 2 * k), -1)
        for t in range(k):
            kinds[:, 2 * t] = np.where(present[:, t], t, -1)
            kinds[:, 2 * t + 1] = np.where(present[:, t] & second[:, t], t, -1)
        return kinds, present.astype(np.float32)
    raise ValueError(f"unknown synthetic task {task!r}")


def _place(n, disc_x, disc_y, disc_r, rng):
    """Lesion centres inside the field of view and off the optic disc."""
    cx = np.zeros(n, np.float32)
    cy = np.zeros(n, np.float32)
    todo = np.ones(n, bool)
    for _ in range(20):
        r = 0.72 * np.sqrt(rng.random(n))
        a = rng.uniform(0, 2 * np.pi, n)
        x, y = (r * np.cos(a)).astype(np.float32), (r * np.sin(a)).astype(np.float32)
        ok = todo & (np.hypot(x - disc_x, y - disc_y) > disc_r + 0.2)
        cx[ok], cy[ok] = x[ok], y[ok]
        todo &= ~ok
        if not todo.any():
            break
    cx[todo], cy[todo] = -disc_x[todo], disc_y[todo]  # mirror of the disc: always free
    return cx, cy


def _lesion_shape(kind, cx, cy, X, Y, rng):
    """Hard-edged lesion footprints (n, H, W) for the given types."""
    n = len(kind)
    u = X[None] - cx[:, None, None]
    v = Y[None] - cy[:, None, None]
    d = np.sqrt(u**2 + v**2)
    r_dot = rng.uniform(0.09, 0.13, n)[:, None, None]
    exudate = d < r_dot
    theta = rng.uniform(0, np.pi, n)[:, None, None]
    a = rng.uniform(0.12, 0.17, n)[:, None, None]
    b = 0.6 * a
    ur = u * np.cos(theta) + v * np.sin(theta)
    vr = -u * np.sin(theta) + v * np.cos(theta)
    haemorrhage = (ur / a) ** 2 + (vr / b) ** 2 < 1
    r_ring = rng.uniform(0.13, 0.17, n)[:, None, None]
    ring = (d < r_ring) & (d > 0.5 * r_ring)
    k = kind[:, None, None]
    return np.where(k == 0, exudate, np.where(k == 1, haemorrhage, ring))
