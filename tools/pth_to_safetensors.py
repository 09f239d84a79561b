#!/usr/bin/env python3
"""Convert a PyTorch checkpoint (.pth/.pt state dict) to .safetensors, for rdmlearn's
embed.weights (which also reads the .pth directly; see docs/embed.md).

    /usr/bin/python3 tools/pth_to_safetensors.py resnet50-0676ba61.pth resnet50.safetensors

The checkpoint is loaded with torch.load(weights_only=True) (nothing in it is executed); a
dict holding the state dict under "state_dict" or "model" is unwrapped. Only python3 and
torch are needed: the safetensors format (8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}}, then the raw little-endian tensors back to back) is
written here by hand. Tensors keep their dtype (F32, F16, BF16, F64, I64, ...).
"""
import json
import struct
import sys

DTYPES = {
    "torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16",
    "torch.float64": "F64", "torch.int64": "I64", "torch.int32": "I32", "torch.int16": "I16",
    "torch.int8": "I8", "torch.uint8": "U8", "torch.bool": "BOOL",
}


def tensor_bytes(t):
    import torch
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save_safetensors(state, path, metadata=None):
    """Write {name: tensor} as a .safetensors file (tensors in the dict's order)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in state.items():
        dt = DTYPES.get(str(t.dtype))
        if dt is None:
            raise SystemExit(f"{name}: dtype {t.dtype} has no safetensors equivalent")
        b = tensor_bytes(t)
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # align the data to 8 bytes, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_state_dict(path):
    import torch
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict):
        for key in ("state_dict", "model"):
            if isinstance(sd.get(key), dict):
                sd = sd[key]
                break
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise SystemExit(f"{path}: entries that are not tensors: {bad[:5]}")
    return sd


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    sd = load_state_dict(argv[1])
    save_safetensors(sd, argv[2], {"format": "pt", "source": argv[1]})
    print(f"{argv[2]}: {len(sd)} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
