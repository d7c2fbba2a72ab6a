"""Regenerate (or check) the Hugging Face ViT reference fixtures with PyTorch + transformers.

Usage (with the venv that has torch and transformers, e.g. /work/venv/bin/python):

    python scripts/make_fixtures.py OUT_DIR [--images IMAGES_DIR]
        Writes OUT_DIR/<case>/{config.json, model.safetensors, io.safetensors} for the five cases
        (cls_tiny, cls_interp, headmask, model_pooler, mim) and OUT_DIR/MANIFEST.json.
        With --images, also writes OUT_DIR/images/pixel_values.safetensors: what the ViT image
        processors make of every IMAGES_DIR/*.png, one (3, 224, 224) tensor per
        `<image>.<backend>.<resample>` (backends pil and torchvision, resample bilinear and bicubic;
        the torchvision backend needs torchvision installed).

    python scripts/make_fixtures.py --check DIR
        Reloads every case listed in DIR/MANIFEST.json with transformers, reruns the forward pass on the
        stored inputs and prints the max abs diff of every stored output (exit status 1 above 1e-4).

Every parameter is re-drawn from a seeded generator (non-zero biases, LayerNorm weights around 1 with
spread 0.2, a non-zero mask token), the model runs on CPU in float32 with eager attention, and the
outputs are a deterministic function of the seed. `headmask` multiplies the attention probabilities
of layer l, head h by head_mask[l, h] after the softmax; transformers 5 dropped the `head_mask`
argument, so this is done by a registered attention function ("eager_headmask").
"""

import argparse
import importlib.util
import json
import math
import struct
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AttentionInterface, ViTConfig

BASE_CONFIG = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2,
                   num_attention_heads=4, intermediate_size=128, hidden_act="gelu",  # "gelu" = exact (erf)
                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
CLS = dict(model_class="ViTForImageClassification", config=dict(num_labels=10), init_kwargs={}, forward_kwargs={})
CASES = {
    "cls_tiny": dict(CLS, seed=1, image=(32, 32)),
    "cls_interp": dict(CLS, seed=2, image=(48, 64), forward_kwargs={"interpolate_pos_encoding": True}),
    # same seed as cls_tiny: same weights and pixel values, plus the head mask
    "headmask": dict(CLS, seed=1, image=(32, 32), head_mask=[[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.5]]),
    "model_pooler": dict(model_class="ViTModel", config={}, seed=5, image=(32, 32), mask_ratio=0.5,
                         init_kwargs={"add_pooling_layer": True, "use_mask_token": True}, forward_kwargs={}),
    "mim": dict(model_class="ViTForMaskedImageModeling", config=dict(patch_size=4, encoder_stride=4), seed=6,
                image=(32, 32), mask_ratio=0.6, init_kwargs={}, forward_kwargs={}),
    # A grayscale (num_channels = 1) classifier on two real photographs: their pixel values are what
    # ViTImageProcessor (Pillow backend, 32x32 bilinear, mean = std = 0.5) makes of
    # `Image.open(png).convert("L")`, so the case checks the 1-channel preprocessing as well.
    "cls_gray": dict(CLS, config=dict(num_channels=1, num_labels=10), seed=7, image=(32, 32),
                     photos=("chelsea.png", "coffee.png")),
}
PHOTOS_DIR = Path(__file__).resolve().parent.parent / "vit-data" / "tests" / "fixtures"
BATCH = 2
OUTPUT_NAMES = ("logits", "reconstruction", "loss", "pooler_output")
INPUT_NAMES = ("pixel_values", "bool_masked_pos", "head_mask")


def eager_headmask(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention, then probs *= module.fixture_head_mask (one value per head) after the softmax."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    head_mask = getattr(module, "fixture_head_mask", None)
    if head_mask is not None:
        weights = weights * head_mask.view(1, -1, 1, 1)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


AttentionInterface.register("eager_headmask", eager_headmask)


def header(path):
    """The safetensors header of a file: {name: {dtype, shape, data_offsets}} (no metadata)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        head = json.loads(f.read(n))
    head.pop("__metadata__", None)
    return head


def draw(name, shape, g):
    """A random value for the checkpoint tensor `name` (Hub key names)."""
    x = torch.randn(shape, generator=g)
    if name.endswith("bias"):
        return 0.1 * x
    if "layernorm" in name:  # LayerNorm weight (biases handled above)
        return 1.0 + 0.2 * x
    if name.endswith(("cls_token", "position_embeddings")):
        return 0.5 * x
    if name.endswith("mask_token"):
        return x
    return x / math.sqrt(x[0].numel())  # Linear / Conv2d weight: std 1/sqrt(fan_in)


def load_model(case_dir, spec, attn):
    cls = getattr(transformers, spec["model_class"])
    return cls.from_pretrained(case_dir, attn_implementation=attn, **spec["init_kwargs"]).eval()


def forward(model, io, spec):
    """Run the model on the inputs in `io`; return every reference output by name."""
    base = model if isinstance(model, transformers.ViTModel) else model.vit
    attention_modules = [m for m in model.modules() if type(m).__name__ == "ViTAttention"]
    head_mask = io.get("head_mask")
    for i, m in enumerate(attention_modules):
        m.fixture_head_mask = None if head_mask is None else head_mask[i]
    captured = {}
    hook = base.register_forward_hook(lambda m, a, out: captured.update(last=out.last_hidden_state))
    kwargs = dict(spec["forward_kwargs"])
    if "bool_masked_pos" in io:
        kwargs["bool_masked_pos"] = io["bool_masked_pos"]
    try:
        with torch.no_grad():
            out = model(io["pixel_values"], output_hidden_states=True, output_attentions=True, **kwargs)
    finally:
        hook.remove()
    res = {"last_hidden_state": captured["last"]}
    res.update({k: getattr(out, k) for k in OUTPUT_NAMES if getattr(out, k, None) is not None})
    res.update({f"hidden_states.{i}": t for i, t in enumerate(out.hidden_states)})
    res.update({f"attentions.{i}": t for i, t in enumerate(out.attentions or ())})
    return {k: v.detach().contiguous() for k, v in res.items()}


def diffs(ref, new):
    """Max abs diff per output tensor of `ref` that `new` also has."""
    return {k: (ref[k] - new[k]).abs().max().item() for k in sorted(ref) if k not in INPUT_NAMES and k in new}


def gray_photos(names, h, w):
    """What ViTImageProcessor (Pillow backend) makes of each photo converted to L, (len, 1, h, w)."""
    try:  # transformers 5: the Pillow backend is ViTImageProcessorPil
        from transformers import ViTImageProcessorPil as PilProcessor
    except ImportError:  # transformers 4: ViTImageProcessor is the Pillow one
        from transformers import ViTImageProcessor as PilProcessor
    from PIL import Image
    from transformers.image_utils import PILImageResampling

    proc = PilProcessor(size={"height": h, "width": w}, resample=PILImageResampling.BILINEAR,
                        image_mean=[0.5], image_std=[0.5])
    images = [Image.open(PHOTOS_DIR / name).convert("L") for name in names]
    pixels = proc(images=images, return_tensors="pt")["pixel_values"]
    if pixels.ndim == 3:
        pixels = pixels.unsqueeze(1)
    assert pixels.shape == (len(names), 1, h, w), pixels.shape
    return pixels.to(torch.float32).contiguous()


def make_case(name, spec, out_dir):
    case_dir = out_dir / name
    g = torch.Generator().manual_seed(spec["seed"])
    torch.manual_seed(spec["seed"])  # only the default init, which is overwritten below
    cls = getattr(transformers, spec["model_class"])
    config = ViTConfig(**dict(BASE_CONFIG, **spec["config"]))
    ref_attn = "eager_headmask" if "head_mask" in spec else "eager"
    with tempfile.TemporaryDirectory() as tmp:
        # Draw the weights by their checkpoint names, in sorted order, then load them back.
        cls(config, **spec["init_kwargs"]).save_pretrained(tmp, safe_serialization=True)
        weights_file = Path(tmp) / "model.safetensors"
        shapes = {k: v["shape"] for k, v in header(weights_file).items()}
        save_file({k: draw(k, shapes[k], g) for k in sorted(shapes)}, weights_file, metadata={"format": "pt"})
        model = load_model(tmp, spec, ref_attn)
    model.save_pretrained(case_dir, safe_serialization=True)

    h, w = spec["image"]
    if "photos" in spec:
        io = {"pixel_values": gray_photos(spec["photos"], h, w)}
    else:
        io = {"pixel_values": torch.randn((BATCH, config.num_channels, h, w), generator=g)}
    if "mask_ratio" in spec:
        patches = (config.image_size // config.patch_size) ** 2
        k = round(spec["mask_ratio"] * patches)
        mask = torch.zeros((BATCH, patches), dtype=torch.bool)
        for row in range(BATCH):  # exactly k masked patches per image
            mask[row, torch.randperm(patches, generator=g)[:k]] = True
        io["bool_masked_pos"] = mask
    if "head_mask" in spec:
        io["head_mask"] = torch.tensor(spec["head_mask"], dtype=torch.float32)
    io.update(forward(model, io, spec))
    save_file(io, case_dir / "io.safetensors")

    verify = {}
    for attn in ([ref_attn] if ref_attn != "eager" else ["eager", "sdpa"]):
        verify[attn] = max(diffs(io, forward(load_model(case_dir, spec, attn), io, spec)).values())
    io_header = header(case_dir / "io.safetensors")
    return {
        "files": {f.name: f.stat().st_size for f in sorted(case_dir.iterdir())},
        "model_class": spec["model_class"],
        "init_kwargs": spec["init_kwargs"],
        "forward_kwargs": spec["forward_kwargs"],
        "seed": spec["seed"],
        "reference_attn_implementation":
            "eager (4.x-style head mask via registered attention fn)" if "head_mask" in spec else "eager",
        "io_tensors": {k: [v["dtype"], v["shape"]] for k, v in sorted(io_header.items())},
        "verify_max_abs_diff": verify,
    }


def make_images(images_dir, out_dir):
    try:  # transformers 5: ViTImageProcessorPil (Pillow) / ViTImageProcessor (torchvision)
        from transformers import ViTImageProcessor as TorchvisionProcessor, ViTImageProcessorPil as PilProcessor
    except ImportError:  # transformers 4: ViTImageProcessor (Pillow) / ViTImageProcessorFast (torchvision)
        from transformers import ViTImageProcessor as PilProcessor, ViTImageProcessorFast as TorchvisionProcessor
    from PIL import Image
    from transformers.image_utils import PILImageResampling

    if TorchvisionProcessor is PilProcessor or importlib.util.find_spec("torchvision") is None:
        sys.exit("--images needs torchvision (without it transformers silently falls back to Pillow)")
    tensors = {}
    for png in sorted(Path(images_dir).glob("*.png")):
        image = Image.open(png).convert("RGB")
        for backend, proc_cls in (("pil", PilProcessor), ("torchvision", TorchvisionProcessor)):
            for resample in ("bilinear", "bicubic"):
                proc = proc_cls(resample=getattr(PILImageResampling, resample.upper()))
                pixels = proc(images=image, return_tensors="pt")["pixel_values"][0]
                tensors[f"{png.stem}.{backend}.{resample}"] = pixels.to(torch.float32).contiguous()
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    save_file(tensors, out_dir / "images" / "pixel_values.safetensors")
    print(f"images: {len(tensors)} tensors -> {out_dir / 'images' / 'pixel_values.safetensors'}")


def check(fixtures_dir, tol=1e-4):
    manifest = json.loads((fixtures_dir / "MANIFEST.json").read_text())
    worst = 0.0
    for name, spec in manifest["cases"].items():
        case_dir = fixtures_dir / name
        io = load_file(case_dir / "io.safetensors")
        new = forward(load_model(case_dir, spec, "eager_headmask" if "head_mask" in io else "eager"), io, spec)
        print(f"== {name}")
        for k, d in diffs(io, new).items():
            print(f"  {k:20s} {d:.3e}")
            worst = max(worst, d)
        missing = sorted(set(io) - set(new) - set(INPUT_NAMES))
        if missing:
            print(f"  not recomputed: {missing}")
            worst = math.inf
    print(f"max abs diff over all cases: {worst:.3e}")
    return worst <= tol


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", nargs="?", type=Path, help="where to write the fixtures")
    p.add_argument("--images", type=Path, metavar="IMAGES_DIR", help="also process the PNGs of this dir")
    p.add_argument("--check", type=Path, metavar="DIR", help="recompute the outputs of an existing fixture dir")
    args = p.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_grad_enabled(False)
    if args.check:
        sys.exit(0 if check(args.check) else 1)
    if args.out_dir is None:
        p.error("OUT_DIR is required (or --check DIR)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cases = {}
    for name, spec in CASES.items():
        cases[name] = make_case(name, spec, args.out_dir)
        print(f"{name}: verify_max_abs_diff {cases[name]['verify_max_abs_diff']}")
    manifest = {
        "generator": "scripts/make_fixtures.py: Hugging Face transformers (see README.md)",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "cases": cases,
    }
    (args.out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if args.images:
        make_images(args.images, args.out_dir)


if __name__ == "__main__":
    main()
