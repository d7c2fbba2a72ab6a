"""Write vit-data/tests/fixtures/mixup_reference.safetensors: what timm's `timm.data.mixup.Mixup` makes
of a small fixed batch, with the random decisions recorded so that the Rust port can replay them.

Usage (with the venv that has torch and timm, e.g. /work/venv/bin/python):

    python scripts/make_mixup_fixtures.py [OUT]      (default: vit-data/tests/fixtures/mixup_reference.safetensors)

Runs timm's own code (torch + timm, CPU, float32): nothing here re-implements its formulas. The inputs are
a seeded random batch `x` of 6x3x8x8 normalised images and labels in 0..5. Each case builds a
`timm.data.mixup.Mixup` with the case's settings and calls it on a copy of `x`; its decisions are either
fixed (by replacing `Mixup._params_per_batch`, and `np.random.randint` for the cutmix box centre) or drawn
by numpy from a seed, and are recorded by wrapping `_params_per_elem` / `_params_per_batch` and the
module's `cutmix_bbox_and_lam`. Per case `<c>` the file holds:

    <c>.x          [6,3,8,8] f32   the mixed images
    <c>.target     [6,5]     f32   the soft targets
    <c>.lam        [6]       f32   the final per-sample lam timm returns (batch mode: the scalar, repeated)
    <c>.drawn_lam  [slots]   f64   the drawn lam per decision slot (1 slot in batch mode, n/2 pair, n elem)
    <c>.use_cutmix [slots]   i64   1 where the slot's decision is cutmix
    <c>.box        [slots,4] i64   (yl, yh, xl, xh) of the slot's cutmix box, -1 where none was drawn

plus `x` and `labels` (the inputs), `bbox_in` [k,5] f64 (h, w, lam, cy, cx) and `bbox_out` [k,4] i64: timm's
`rand_bbox` for given centres. The metadata holds the versions and, under "cases", each case's settings.
"""

import json
import sys
from pathlib import Path

import numpy as np
import timm
import timm.data.mixup as tm
import torch
from safetensors.numpy import save_file

N, C, H, W = 6, 3, 8, 8
NUM_CLASSES = 5
LABELS = np.array([0, 3, 1, 4, 1, 2], dtype=np.int64)


def base(**kw):
    cfg = dict(mixup_alpha=1.0, cutmix_alpha=0.0, cutmix_minmax=None, prob=1.0, switch_prob=0.5, mode="batch",
               correct_lam=True, label_smoothing=0.1, num_classes=NUM_CLASSES)
    cfg.update(kw)
    return cfg


class ScriptedRandint:
    """Stands in for np.random.randint: returns the scripted values in turn (for the box centre)."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, low, high=None, size=None):
        v = self.values.pop(0)
        assert low <= v < high, (low, v, high)
        return v


def run_case(x, cfg, fixed_batch=None, randint=None, seed=None):
    """Runs timm's Mixup on a copy of x; returns (outputs dict, recorded decisions)."""
    m = tm.Mixup(**cfg)
    rec = dict(params=None, boxes=[], lam=None)
    orig_elem, orig_batch = m._params_per_elem, m._params_per_batch

    def params_elem(batch_size):
        lam, use_cutmix = orig_elem(batch_size)
        rec["params"] = (lam.copy(), use_cutmix.copy())
        return lam, use_cutmix

    def params_batch():
        lam, use_cutmix = fixed_batch if fixed_batch is not None else orig_batch()
        rec["params"] = (np.array([lam], dtype=np.float64), np.array([use_cutmix]))
        return lam, use_cutmix

    m._params_per_elem, m._params_per_batch = params_elem, params_batch
    orig_cbl = tm.cutmix_bbox_and_lam

    def cbl(*args, **kwargs):
        box, lam = orig_cbl(*args, **kwargs)
        rec["boxes"].append([int(v) for v in box])
        return box, lam

    for name in ("_mix_batch", "_mix_pair", "_mix_elem"):
        orig = getattr(m, name)

        def wrapped(xx, orig=orig):
            lam = orig(xx)
            rec["lam"] = lam
            return lam

        setattr(m, name, wrapped)
    saved_randint = np.random.randint
    tm.cutmix_bbox_and_lam = cbl
    if randint is not None:
        np.random.randint = randint
    if seed is not None:
        np.random.seed(seed)
    try:
        xm, target = m(torch.from_numpy(x.copy()), torch.from_numpy(LABELS))
    finally:
        tm.cutmix_bbox_and_lam = orig_cbl
        np.random.randint = saved_randint
    lam = rec["lam"]
    lam = np.full(N, lam, dtype=np.float32) if not torch.is_tensor(lam) else lam.numpy().reshape(-1)
    drawn, use_cutmix = rec["params"]
    # Boxes were drawn, in slot order, for the slots whose lam != 1 and that use cutmix.
    boxes = np.full((len(drawn), 4), -1, dtype=np.int64)
    queue = list(rec["boxes"])
    for k in range(len(drawn)):
        if use_cutmix[k] and drawn[k] != 1.0:
            boxes[k] = queue.pop(0)
    assert not queue
    out = {"x": xm.numpy().astype(np.float32), "target": target.numpy().astype(np.float32), "lam": lam.astype(np.float32),
           "drawn_lam": drawn.astype(np.float64), "use_cutmix": use_cutmix.astype(np.int64), "box": boxes}
    return out


def first_seed(x, cfg, want):
    """The first numpy seed whose drawn decisions satisfy want(drawn_lam, use_cutmix)."""
    for seed in range(10_000):
        out = run_case(x, cfg, seed=seed)
        if want(out["drawn_lam"], out["use_cutmix"]):
            return seed, out
    raise RuntimeError("no seed found")


def main():
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parent.parent / "vit-data/tests/fixtures/mixup_reference.safetensors"
    rng = np.random.default_rng(20240607)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    tensors = {"x": x, "labels": LABELS}
    cases = {}

    def add(name, cfg, out, note):
        cases[name] = dict(cfg, note=note)
        for k, v in out.items():
            tensors[f"{name}.{k}"] = np.ascontiguousarray(v)

    cfg = base()
    add("batch_mixup", cfg, run_case(x, cfg, fixed_batch=(0.3, False)), "batch mode, mixup, lam fixed at 0.3")
    cfg = base(label_smoothing=0.0)
    add("batch_mixup_nosmooth", cfg, run_case(x, cfg, fixed_batch=(0.7, False)), "batch mixup, lam 0.7, no smoothing")
    cfg = base(mixup_alpha=0.0, cutmix_alpha=1.0)
    add("batch_cutmix", cfg, run_case(x, cfg, fixed_batch=(0.6, True), randint=ScriptedRandint([3, 5])),
        "batch cutmix, lam 0.6, centre (3, 5), corrected lam")
    # A box clipped by the border: correct_lam changes lam (True) or keeps the drawn one (False).
    cfg = base(mixup_alpha=0.0, cutmix_alpha=1.0)
    add("batch_cutmix_clipped", cfg, run_case(x, cfg, fixed_batch=(0.4, True), randint=ScriptedRandint([0, 7])),
        "batch cutmix, lam 0.4, centre (0, 7) clipped, corrected lam")
    cfg = base(mixup_alpha=0.0, cutmix_alpha=1.0, correct_lam=False)
    add("batch_cutmix_nocorrect", cfg,
        run_case(x, cfg, fixed_batch=(0.4, True), randint=ScriptedRandint([0, 7])),
        "batch cutmix, lam 0.4, centre (0, 7) clipped, correct_lam False: the drawn lam is kept")
    cfg = base(mixup_alpha=0.0, cutmix_alpha=1.0, cutmix_minmax=[0.25, 0.75])
    add("batch_minmax", cfg, run_case(x, cfg, fixed_batch=(0.5, True), seed=3),
        "batch cutmix with cutmix_minmax [0.25, 0.75], box drawn by numpy seed 3")
    cfg = base(prob=0.0, mixup_alpha=0.8, cutmix_alpha=1.0)
    add("batch_prob0", cfg, run_case(x, cfg, seed=0), "prob 0: identity, smoothed one-hot targets")
    cfg = base(mixup_alpha=0.8, cutmix_alpha=1.0, mode="pair")
    seed, out = first_seed(x, cfg, lambda lam, cut: cut.any() and not cut.all() and (lam != 1).all())
    add("pair", cfg, out, f"pair mode, mixup and cutmix, numpy seed {seed}")
    cfg = base(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", prob=0.7, label_smoothing=0.2)
    seed, out = first_seed(
        x, cfg, lambda lam, cut: (lam == 1).any() and (cut & (lam != 1)).any() and (~cut & (lam != 1)).any())
    add("elem", cfg, out, f"elem mode, mixup and cutmix, prob 0.7, numpy seed {seed}")
    cfg = base(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", correct_lam=False, label_smoothing=0.0)
    seed, out = first_seed(x, cfg, lambda lam, cut: (lam != 1).all())
    add("elem_cutmix_nocorrect", cfg, out, f"elem mode, cutmix only, correct_lam False, numpy seed {seed}")

    # rand_bbox geometry for given centres (timm draws the centre with np.random.randint(0, side)).
    bbox_in, bbox_out = [], []
    for h, w in [(8, 8), (7, 9), (32, 32), (5, 3), (224, 224)]:
        for lam in [0.0, 0.1, 0.37, 0.5, 0.75, 0.9, 0.999, 1.0, float(np.float32(0.61803))]:
            for cy, cx in [(0, 0), (h // 2, w // 2), (h - 1, w - 1), (1, w - 2)]:
                saved = np.random.randint
                np.random.randint = ScriptedRandint([cy, cx])
                try:
                    box = tm.rand_bbox((C, h, w), lam)
                finally:
                    np.random.randint = saved
                bbox_in.append([h, w, lam, cy, cx])
                bbox_out.append([int(v) for v in box])
    tensors["bbox_in"] = np.array(bbox_in, dtype=np.float64)
    tensors["bbox_out"] = np.array(bbox_out, dtype=np.int64)

    metadata = {"timm": timm.__version__, "torch": torch.__version__, "numpy": np.__version__,
                "cases": json.dumps(cases)}
    save_file(tensors, str(out_path), metadata=metadata)
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes): {len(cases)} cases, timm {timm.__version__}")
    for name, c in cases.items():
        print(f"  {name}: {c['note']}")


if __name__ == "__main__":
    main()
