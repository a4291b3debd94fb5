"""PLACEHOLDER until the normals module lands."""
import cv2
import numpy as np


def dmap2norm(dmap):
    zx = cv2.Sobel(dmap, cv2.CV_64F, 1, 0, ksize=5)
    zy = cv2.Sobel(dmap, cv2.CV_64F, 0, 1, ksize=5)
    normals = np.dstack((-zx, -zy, np.ones_like(dmap)))
    length = np.linalg.norm(normals, axis=2)
    normals[:, :, :] /= length[..., None]
    normals += 1
    normals /= 2
    return normals[:, :, ::-1].astype(np.float32)


def normals_from_depth(depth, intr, method="pinhole"):
    raise NotImplementedError
