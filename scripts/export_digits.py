"""Writes scikit-learn's handwritten digits (UCI ML "Optical Recognition of Handwritten Digits":
1797 real 8x8 scans, 16 gray levels, shipped inside the scikit-learn package, so no download) as
two ImageFolder roots: OUT/train/<digit>/*.png and OUT/test/<digit>/*.png, a stratified split with
a fixed seed. Pixel values 0..16 are scaled to 0..255 (v * 255 // 16) and saved as 8-bit gray PNGs.

    python scripts/export_digits.py OUT [--test-share 0.3] [--seed 0]
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--test-share", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    digits = load_digits()
    rng = np.random.default_rng(args.seed)
    counts = {"train": 0, "test": 0}
    for label in range(10):
        idx = np.flatnonzero(digits.target == label)
        rng.shuffle(idx)
        n_test = int(round(args.test_share * len(idx)))
        for split, chosen in (("test", idx[:n_test]), ("train", idx[n_test:])):
            folder = args.out / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                pixels = (digits.images[i] * 255 // 16).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
                counts[split] += 1
    print(f"digits: {counts['train']} train and {counts['test']} test images in {args.out}")


if __name__ == "__main__":
    main()
