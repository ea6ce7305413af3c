#!/usr/bin/env python3
"""PyTorch side of benches/conv_ops.rs: forward, input gradient and weight gradient of
small-cnn's four 3x3 convolutions at batch 128, 2 threads, median times in ms."""

import importlib.util
import pathlib

import torch
import torch.nn as nn

spec = importlib.util.spec_from_file_location(
    "reference", pathlib.Path(__file__).with_name("reference_torch.py"))
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)

torch.set_num_threads(2)
print("| layer | forward ms | input-gradient ms | weight-gradient ms |")
print("|---|---:|---:|---:|")
for i, (cin, cout, side) in enumerate([(1, 32, 28), (32, 32, 26), (32, 64, 12), (64, 64, 10)]):
    conv = nn.Conv2d(cin, cout, 3)
    x = torch.rand(128, cin, side, side)

    def forward():
        with torch.no_grad():
            conv(x)

    def input_only():
        leaf = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(conv(leaf).sum(), [leaf])

    def weight_only():
        (g,) = torch.autograd.grad(conv(x).sum(), [conv.weight])

    f, _ = reference.timed(forward, 2.0, 5)
    a, _ = reference.timed(input_only, 2.0, 5)
    w, _ = reference.timed(weight_only, 2.0, 5)
    print(f"| conv{i + 1} {cin}→{cout} on {side}² | {f * 1e3:.2f} | {(a - f) * 1e3:.2f} | {(w - f) * 1e3:.2f} |")
