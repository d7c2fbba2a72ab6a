"""Write a synthetic dataset in the official CIFAR-10 binary layout, for trying vit-train offline.

    python3 scripts/make_synthetic_cifar.py OUT_DIR [--train 50000] [--test 10000] [--seed 0]

vit-train reads a CIFAR folder only when every file has its official size (10000 records each), so
the defaults are the official counts (a few minutes of pure Python); smaller --train/--test values
write files that vit-data's `Cifar::load_with(.., &CifarLoadOptions::SYNTHETIC)` reads, for tests.

Creates OUT_DIR/cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin, batches.meta.txt}:
records of 1 label byte + 3072 pixel bytes (R plane, G plane, B plane, 32x32), as the real files.
Each of the 10 classes is a family of oriented sinusoidal gratings (orientation 18 degrees apart)
with random phase, frequency, colours and noise, so the task is learnable but not trivial.
Standard library only.
"""

import argparse
import math
import random
from pathlib import Path

NAMES = ["deg000", "deg018", "deg036", "deg054", "deg072", "deg090", "deg108", "deg126", "deg144", "deg162"]


def image(label: int, rng: random.Random) -> bytes:
    angle = math.radians(18 * label + rng.uniform(-4, 4))
    freq = rng.uniform(0.35, 0.9)
    phase = rng.uniform(0, 2 * math.pi)
    fg = [rng.randint(80, 255) for _ in range(3)]
    bg = [rng.randint(0, 120) for _ in range(3)]
    c, s = math.cos(angle), math.sin(angle)
    planes = [bytearray(1024) for _ in range(3)]
    for y in range(32):
        for x in range(32):
            t = 0.5 + 0.5 * math.sin(freq * (x * c + y * s) + phase)
            for ch in range(3):
                v = bg[ch] + (fg[ch] - bg[ch]) * t + rng.gauss(0, 18)
                planes[ch][y * 32 + x] = max(0, min(255, int(v)))
    return bytes([label]) + bytes(planes[0]) + bytes(planes[1]) + bytes(planes[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=50000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    folder = Path(args.out) / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = math.ceil(args.train / 5)
    done = 0
    for b in range(1, 6):
        n = min(per_batch, args.train - done)
        (folder / f"data_batch_{b}.bin").write_bytes(b"".join(image((done + i) % 10, rng) for i in range(n)))
        done += n
    (folder / "test_batch.bin").write_bytes(b"".join(image(i % 10, rng) for i in range(args.test)))
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n")
    print(f"wrote {args.train} training and {args.test} test images to {folder}")


if __name__ == "__main__":
    main()
