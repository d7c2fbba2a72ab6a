"""Check that transformers loads a model directory written by vit-burn and computes what we do.

    python scripts/check_transformers_load.py MODEL_DIR [--vit-train target/release/vit-train]

Loads MODEL_DIR with transformers' `from_pretrained` (the class from `architectures`), runs it on
random pixels (and a random mask for SimMIM), runs `vit-train forward` on the same inputs, and
prints the max abs difference of every common output. Exits 1 above 1e-4 or when transformers
reports missing or unexpected weights.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--vit-train", default="target/release/vit-train")
    args = ap.parse_args()
    config = json.loads((Path(args.model_dir) / "config.json").read_text())
    arch = (config.get("architectures") or ["ViTModel"])[0]
    cls = getattr(transformers, arch)
    model, info = cls.from_pretrained(args.model_dir, output_loading_info=True, attn_implementation="eager")
    model.eval()
    bad = {k: v for k, v in info.items() if v}
    print(f"{arch} loaded; loading info: {bad or 'all weights used, none missing'}")
    torch.manual_seed(0)
    size = config["image_size"]
    inputs = {"pixel_values": torch.randn(2, config.get("num_channels", 3), size, size)}
    if arch == "ViTForMaskedImageModeling":
        n = (size // config["patch_size"]) ** 2
        inputs["bool_masked_pos"] = torch.rand(2, n) < 0.6
    with torch.no_grad():
        ref = model(**inputs, output_hidden_states=True, output_attentions=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.safetensors", Path(tmp) / "out.safetensors"
        save_file(inputs, str(src))
        subprocess.run([args.vit_train, "forward", "--model", args.model_dir, "--inputs", str(src), "--output", str(dst)],
                       check=True)
        ours = load_file(str(dst))
    worst = 0.0
    for name in ["logits", "reconstruction", "loss", "last_hidden_state", "pooler_output"]:
        value = getattr(ref, name, None)
        if value is not None and name in ours:
            d = (value - ours[name].reshape(value.shape)).abs().max().item()
            worst = max(worst, d)
            print(f"{name:20s} max abs diff {d:.3e}")
    for i, h in enumerate(ref.hidden_states or []):
        d = (h - ours[f"hidden_states.{i}"]).abs().max().item()
        worst = max(worst, d)
    print(f"worst over all outputs: {worst:.3e}")
    return 0 if worst <= 1e-4 and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
