"""condiff's datasets (data/data.go) for the torch trainer: MNIST and
Fashion-MNIST from their IDX files, with condiff's preprocessing (bytes to
[-1, 1] as b/127.5 − 1, then data.Resize: bilinear at pixel centres, the
crop centred, in float64, rounded once)."""
import gzip
import os
import struct
import subprocess

import numpy as np

DIGITS = [str(i) for i in range(10)]
FASHION = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_MODULE = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"


def mnist_dir():
    """Where condiff finds MNIST: the Go module cache (data.mnistDir)."""
    cache = os.environ.get("GOMODCACHE", "")
    if not cache:
        try:
            cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True).stdout.strip()
        except OSError:
            cache = ""
    if not cache:
        cache = os.path.join(os.path.expanduser("~"), "go", "pkg", "mod")
    return os.path.join(cache, MNIST_MODULE, "data")


def _open(path):
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx_images(path):
    with _open(path) as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 0x803:
            raise SystemExit(f"{path}: magic {magic:#x} is not an IDX3 image file (0x803)")
        return np.frombuffer(f.read(n * h * w), dtype=np.uint8).reshape(n, h, w)


def read_idx_labels(path, classes):
    with _open(path) as f:
        magic, n = struct.unpack(">II", f.read(8))
        if magic != 0x801:
            raise SystemExit(f"{path}: magic {magic:#x} is not an IDX1 label file (0x801)")
        lab = np.frombuffer(f.read(n), dtype=np.uint8).astype(np.int64)
    if lab.size and lab.max() >= classes:
        raise SystemExit(f"{path}: label {lab.max()} out of 0..{classes - 1}")
    return lab


def resize(src, size):
    """data.Resize of [N h w] float32 planes to size×size."""
    n, h, w = src.shape
    scale = min(h, w) / size
    off_y, off_x = (h - scale * size) / 2, (w - scale * size) / 2
    sy = off_y + (np.arange(size) + 0.5) * scale - 0.5
    sx = off_x + (np.arange(size) + 0.5) * scale - 0.5
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    fy, fx = (sy - y0)[:, None], (sx - x0)[None, :]

    def at(yy, xx):
        yy, xx = np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)
        return src[:, yy[:, None], xx[None, :]].astype(np.float64)

    v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
    return v.astype(np.float32)


def load(name, size, data_dir="", test=False):
    """(images [N 1 size size] float32 in [-1, 1], labels [N], class names)."""
    if name == "mnist":
        names, d = DIGITS, data_dir or mnist_dir()
    elif name == "fashion-mnist":
        names, d = FASHION, data_dir or FASHION_DIR
    else:
        raise SystemExit(f"--data {name}: the torch trainer reads mnist and fashion-mnist itself (IDX files; --data-dir names another directory of them); "
                         f"for any other dataset give --data-file FILE.npz (condiff dataset --data {name} ... --out FILE.npz)")
    prefix = "t10k" if test else "train"
    raw = read_idx_images(os.path.join(d, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx_labels(os.path.join(d, prefix + "-labels-idx1-ubyte.gz"), len(names))
    if len(labels) != len(raw):
        raise SystemExit(f"{d}: {len(labels)} labels for {len(raw)} images")
    src = (raw.astype(np.float32) / np.float32(127.5) - np.float32(1)).astype(np.float32)
    return resize(src, size)[:, None], labels, list(names)


def load_file(path, name, size, channels):
    """A training set written by `condiff dataset --out FILE.npz`
    (data.Set.WriteNPZ): (images, labels, class names), checked against
    the run's dataset name, image size and channels."""
    try:
        z = np.load(path)
        images, labels, names, stored = z["images"], z["labels"], [str(c) for c in z["classes"]], str(z["name"])
    except (OSError, KeyError, ValueError) as e:
        raise SystemExit(f"--data-file {path}: not a condiff dataset file (condiff dataset --out FILE.npz): {e}")
    if stored != name:
        raise SystemExit(f"--data-file {path}: holds the dataset {stored!r}; the run trains on {name!r}")
    if images.dtype != np.float32 or images.ndim != 4 or images.shape[1:] != (channels, size, size):
        raise SystemExit(f"--data-file {path}: images {images.dtype} {images.shape}, the run's are float32 [N {channels} {size} {size}]")
    if labels.shape != (images.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() >= len(names))):
        raise SystemExit(f"--data-file {path}: labels {labels.shape} do not fit {images.shape[0]} images of {len(names)} classes")
    return images, labels.astype(np.int64), names
