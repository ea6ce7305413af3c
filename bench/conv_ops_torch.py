#!/usr/bin/env python3
"""PyTorch side of `rslad-tui bench --layers --compare` and `cargo bench --bench conv_ops`:
the forward pass, input gradient and weight gradient of one convolution, each as the bare
operation (torch.nn.functional.conv2d under no_grad, and aten.convolution_backward asked for
one gradient), median seconds, as one JSON object.

    python3 bench/conv_ops_torch.py --in 32 --out 32 --size 26 --kernel 3 --batch 128
"""

import argparse
import json
import pathlib
import importlib.util

import torch
import torch.nn.functional as F


def load_timed():
    """`timed` from reference_torch.py beside this file (also when run from a temp copy)."""
    path = pathlib.Path(__file__).with_name("reference_torch.py")
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.timed


def timed_fallback(work, seconds, min_reps=5):
    import statistics
    import time
    work()
    samples = []
    started = time.perf_counter()
    while len(samples) < min_reps or time.perf_counter() - started < seconds:
        t = time.perf_counter()
        work()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), len(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in", dest="cin", type=int, required=True)
    parser.add_argument("--out", dest="cout", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--bias", type=int, default=1)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    timed = load_timed() or timed_fallback
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, args.cin, args.size, args.size) * 2 - 1
    weight = torch.rand(args.cout, args.cin // args.groups, args.kernel, args.kernel) * 2 - 1
    bias = torch.rand(args.cout) * 2 - 1 if args.bias else None
    stride, padding = [args.stride] * 2, [args.padding] * 2
    with torch.no_grad():
        out = F.conv2d(x, weight, bias, stride, padding, 1, args.groups)
    grad = torch.rand_like(out) * 2 - 1

    def forward():
        with torch.no_grad():
            F.conv2d(x, weight, bias, stride, padding, 1, args.groups)

    def backward(mask):
        def work():
            torch.ops.aten.convolution_backward(
                grad, x, weight, [args.cout] if args.bias else None,
                stride, padding, [1, 1], False, [0, 0], args.groups, mask)
        return work

    result = {"torch": torch.__version__}
    for name, work in [("forward", forward),
                       ("input_grad", backward([True, False, False])),
                       ("weight_grad", backward([False, True, bool(args.bias)]))]:
        seconds, reps = timed(work, args.seconds, 5)
        result[name] = {"seconds": seconds, "reps": reps}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
