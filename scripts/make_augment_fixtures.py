"""Write vit-data/tests/fixtures/augment_reference.safetensors: what Pillow (through timm's
`timm.data.auto_augment` op functions and torchvision's `_apply_op`) makes of small real photographs, so
that the Rust ports in vit-data/src/auto_augment/ can be checked byte for byte.

Usage (with the venv that has Pillow, numpy, torch, torchvision and timm, e.g. /work/venv/bin/python):

    python scripts/make_augment_fixtures.py [OUT]  (default: vit-data/tests/fixtures/augment_reference.safetensors)

Inputs: vit-data/tests/fixtures/{astronaut,chelsea,coffee}.png, converted to RGB and resized with Pillow's
BILINEAR filter to 64x48 (astronaut, chelsea), 48x64 (coffee, portrait) and 32x32 (`square`, from chelsea,
for the 90-degree rotations Pillow does as transposes). The resized inputs are stored too
(`input/<image>`), so the Rust tests start from exactly these pixels.

Every image is a uint8 array [height, width, 3] (row-major RGB, like `image::RgbImage`'s buffer), named

    <family>/<op>/<argument>[/<interpolation>]/<image>

family `pil` for the colour ops (the same Pillow call in timm and torchvision), `timm` for timm's geometric
ops (fill = the ImageNet mean (124, 116, 104), as `transforms_imagenet_train` passes it), `tv` for
torchvision's geometric ops (`_apply_op`, fill None = black); argument is Python's repr of the float the op
function receives (the level-to-argument result, not the magnitude level), interpolation is nearest,
bilinear or bicubic. Ops whose input is not `input/<image>` name their input in the argument (autocontrast
and equalize of the `lowcontrast` image, which is `pil/contrast/0.3/<image>`).

Also stored, as float64 [7] arrays `level/<timm op>`: timm's `LEVEL_TO_ARG[op]` at the magnitudes
`LEVELS` below (random negation switched off); and as float32 arrays `bins/<policy>/<op>`: torchvision's
magnitude bins (`_augmentation_space`), `bins/trivialaugment/*` with 31 bins and `bins/autoaugment/*`
with 10 bins for the 64x48 image size. The metadata holds the library versions.
"""

import json
import sys
from pathlib import Path

import numpy as np
import PIL
import timm
import timm.data.auto_augment as taa
import torch
import torchvision
from PIL import Image
from safetensors.numpy import save_file
from torchvision.transforms import InterpolationMode
from torchvision.transforms import autoaugment as tva

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "vit-data" / "tests" / "fixtures"
FILL = (124, 116, 104)  # timm: tuple(min(255, round(255 * x)) for x in IMAGENET_DEFAULT_MEAN)
INTERP = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
          "bicubic": Image.Resampling.BICUBIC}
TV_INTERP = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR,
             "bicubic": InterpolationMode.BICUBIC}
LEVELS = [0.0, 0.3, 2.4, 5.0, 9.0, 9.7, 10.0]


def inputs():
    sources = {"astronaut": ("astronaut", (64, 48)), "chelsea": ("chelsea", (64, 48)),
               "coffee": ("coffee", (48, 64)), "square": ("chelsea", (32, 32))}
    out = {}
    for name, (src, size) in sources.items():
        with Image.open(FIXTURES / f"{src}.png") as im:
            out[name] = im.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    return out


def arr(im):
    a = np.asarray(im, dtype=np.uint8)
    assert a.ndim == 3 and a.shape[2] == 3, a.shape
    return np.ascontiguousarray(a)


def colour_ops(tensors, images):
    """Pillow colour/LUT ops on every non-square image, called through timm's op functions."""
    for name in ("astronaut", "chelsea", "coffee"):
        im = images[name]
        for bits in (1, 2, 4, 6):
            tensors[f"pil/posterize/{bits!r}/{name}"] = arr(taa.posterize(im, bits))
        for thresh in (26, 128, 246.5):  # 246.5 is a torchvision (float) threshold
            tensors[f"pil/solarize/{thresh!r}/{name}"] = arr(taa.solarize(im, thresh))
        for add in (33, 110):
            tensors[f"pil/solarize_add/{add!r}/{name}"] = arr(taa.solarize_add(im, add))
        for factor in (0.01, 0.46, 1.72):
            tensors[f"pil/color/{factor!r}/{name}"] = arr(taa.color(im, factor))
            tensors[f"pil/brightness/{factor!r}/{name}"] = arr(taa.brightness(im, factor))
        for factor in (0.01, 0.3, 0.46, 1.72, 1.99):
            tensors[f"pil/contrast/{factor!r}/{name}"] = arr(taa.contrast(im, factor))
        for factor in (0.01, 0.46, 1.72, 1.99):
            tensors[f"pil/sharpness/{factor!r}/{name}"] = arr(taa.sharpness(im, factor))
        tensors[f"pil/autocontrast/input/{name}"] = arr(taa.auto_contrast(im))
        tensors[f"pil/equalize/input/{name}"] = arr(taa.equalize(im))
        tensors[f"pil/invert/input/{name}"] = arr(taa.invert(im))
        low = taa.contrast(im, 0.3)
        tensors[f"pil/autocontrast/lowcontrast/{name}"] = arr(taa.auto_contrast(low))
        tensors[f"pil/equalize/lowcontrast/{name}"] = arr(taa.equalize(low))


def timm_geometric(tensors, images):
    """timm's rotate / shear / translate (relative) with an explicit resample and the mean fill."""
    cases = [
        ("rotate", taa.rotate, [(27.0, "bilinear"), (-30.0, "bicubic"), (7.5, "nearest"), (-13.5, "bilinear")]),
        ("shear_x", taa.shear_x, [(0.27, "bilinear"), (-0.3, "bicubic"), (0.09, "nearest")]),
        ("shear_y", taa.shear_y, [(-0.27, "bilinear"), (0.3, "bicubic"), (-0.09, "nearest")]),
        ("translate_x_rel", taa.translate_x_rel, [(0.405, "bilinear"), (-0.45, "bicubic"), (0.2, "nearest")]),
        ("translate_y_rel", taa.translate_y_rel, [(-0.405, "bilinear"), (0.45, "bicubic"), (-0.2, "nearest")]),
    ]
    for name in ("astronaut", "coffee"):
        im = images[name]
        for op, fn, args in cases:
            for value, interp in args:
                out = fn(im, value, fillcolor=FILL, resample=INTERP[interp])
                tensors[f"timm/{op}/{value!r}/{interp}/{name}"] = arr(out)


def tv_geometric(tensors, images):
    """torchvision's `_apply_op` geometric ops (fill None = black), nearest unless stated. The magnitudes
    are bins of TrivialAugmentWide (31 bins) and AutoAugment (10 bins, 64x48 images), as Python floats."""
    ta = {k: v for k, (v, _) in tva.TrivialAugmentWide()._augmentation_space(31).items()}
    aa = {k: v for k, (v, _) in tva.AutoAugment()._augmentation_space(10, (48, 64)).items()}

    def b(space, op, i, sign=1.0):
        return sign * float(space[op][i].item())

    cases = [
        ("Rotate", [(b(ta, "Rotate", 7), "nearest"), (b(ta, "Rotate", 30, -1.0), "nearest"),
                    (b(ta, "Rotate", 1, -1.0), "nearest"), (b(ta, "Rotate", 20), "nearest"),
                    (b(aa, "Rotate", 4), "bilinear")]),
        ("ShearX", [(b(ta, "ShearX", 30), "nearest"), (b(aa, "ShearX", 9, -1.0), "nearest"),
                    (b(ta, "ShearX", 6), "bilinear")]),
        ("ShearY", [(b(ta, "ShearY", 30, -1.0), "nearest"), (b(aa, "ShearY", 9), "nearest")]),
        ("TranslateX", [(b(ta, "TranslateX", 15), "nearest"), (b(aa, "TranslateX", 9, -1.0), "nearest")]),
        ("TranslateY", [(b(aa, "TranslateY", 9, -1.0), "nearest"), (b(ta, "TranslateY", 7), "nearest")]),
    ]
    for name in ("astronaut", "coffee"):
        im = images[name]
        for op, args in cases:
            for value, interp in args:
                out = tva._apply_op(im, op, value, interpolation=TV_INTERP[interp], fill=None)
                tensors[f"tv/{op}/{value!r}/{interp}/{name}"] = arr(out)
    sq = images["square"]
    for value in (b(ta, "Rotate", 20), b(ta, "Rotate", 20, -1.0), b(ta, "Rotate", 10)):
        out = tva._apply_op(sq, "Rotate", value, interpolation=InterpolationMode.NEAREST, fill=None)
        tensors[f"tv/Rotate/{value!r}/nearest/square"] = arr(out)


def levels(tensors):
    """timm's level-to-argument functions, with `_randomly_negate` switched off."""
    saved = taa._randomly_negate
    taa._randomly_negate = lambda v: v
    try:
        hparams = dict(taa._HPARAMS_DEFAULT)
        for op in ("Rotate", "Posterize", "PosterizeIncreasing", "Solarize", "SolarizeIncreasing", "SolarizeAdd",
                   "Color", "ColorIncreasing", "ShearX", "TranslateXRel"):
            fn = taa.LEVEL_TO_ARG[op]
            tensors[f"level/{op}"] = np.array([float(fn(m, hparams)[0]) for m in LEVELS], dtype=np.float64)
    finally:
        taa._randomly_negate = saved
    tensors["level/magnitudes"] = np.array(LEVELS, dtype=np.float64)


def bins(tensors):
    ta = tva.TrivialAugmentWide()._augmentation_space(31)
    for op, (values, _signed) in ta.items():
        if values.ndim > 0:
            tensors[f"bins/trivialaugment/{op}"] = values.to(torch.float32).numpy()
    aa = tva.AutoAugment()._augmentation_space(10, (48, 64))
    for op, (values, _signed) in aa.items():
        if values.ndim > 0:
            tensors[f"bins/autoaugment/{op}"] = values.to(torch.float32).numpy()


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES / "augment_reference.safetensors"
    images = inputs()
    tensors = {f"input/{k}": arr(v) for k, v in images.items()}
    colour_ops(tensors, images)
    timm_geometric(tensors, images)
    tv_geometric(tensors, images)
    levels(tensors)
    bins(tensors)
    meta = {
        "content": "uint8 [H, W, 3] images: Pillow ops through timm.data.auto_augment and torchvision "
                   "autoaugment._apply_op; float64 timm level-to-arg tables; float32 torchvision bins",
        "versions": json.dumps({"pillow": PIL.__version__, "timm": timm.__version__,
                                "torchvision": torchvision.__version__, "torch": torch.__version__,
                                "torch_cpu": torch.backends.cpu.get_cpu_capability()}),
        "levels": json.dumps(LEVELS),
        "timm_fill": json.dumps(FILL),
    }
    save_file(tensors, str(out), metadata=meta)
    total = sum(v.nbytes for v in tensors.values())
    print(f"wrote {out}: {len(tensors)} tensors, {total} bytes of data")


if __name__ == "__main__":
    main()
