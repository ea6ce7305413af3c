#!/usr/bin/env python3
"""PyTorch reference for `rslad-tui bench --compare`: the same workloads, architectures,
batch size and thread count as the Rust benchmarks, timed the same way.

An optional comparison tool: the program and its tests never need torch. Run by hand with

    python3 bench/reference_torch.py --workload pgd-step --model small-cnn --batch 128

It prints one JSON object: the median seconds per iteration and images per second.
The loops follow the RSLAD authors' code (rslad_loss.py): input gradients with
torch.autograd.grad (so no weight gradient is computed during the attack), the teacher's
soft label computed once per batch, the student in eval mode during the attack.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MicroCnn(nn.Module):
    """src/zoo/micro_cnn.rs: conv3x3(8, pad 1, no bias)+BN+ReLU+pool, conv3x3(16)+BN+ReLU+pool, fc."""

    def __init__(self, channels=1, size=28, classes=10, width=1):
        super().__init__()
        c1, c2 = 8 * width, 16 * width
        self.conv1 = nn.Conv2d(channels, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc = nn.Linear(c2 * (size // 4) ** 2, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


class SmallCnn(nn.Module):
    """src/zoo/small_cnn.rs: the TRADES SmallCNN (4 valid 3x3 convs, 2 pools, 3 fc)."""

    def __init__(self, channels=1, size=28, classes=10, width=1):
        super().__init__()
        a, b = 32 * width, 64 * width
        side = ((size - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(channels, a, 3)
        self.conv2 = nn.Conv2d(a, a, 3)
        self.conv3 = nn.Conv2d(a, b, 3)
        self.conv4 = nn.Conv2d(b, b, 3)
        self.fc1 = nn.Linear(b * side * side, 200)
        self.fc2 = nn.Linear(200, 200)
        self.fc3 = nn.Linear(200, classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        x = F.max_pool2d(F.relu(self.conv4(x)), 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


MODELS = {"micro-cnn": MicroCnn, "small-cnn": SmallCnn}

EPSILON = 0.3
STEP_SIZE = 0.01


def kl_sum(student_logits, teacher_probs):
    """KL(teacher || student) summed over the batch, as nn.KLDivLoss(reduction='sum')."""
    return F.kl_div(F.log_softmax(student_logits, dim=1), teacher_probs, reduction="sum")


def pgd_step(model, natural, x, labels):
    """One L-inf PGD step: forward, cross-entropy, input gradient only, sign, project."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, [x])
    x = x.detach() + STEP_SIZE * grad.sign()
    x = torch.min(torch.max(x, natural - EPSILON), natural + EPSILON)
    return x.clamp(0.0, 1.0)


def rslad_step(student, teacher, optimizer, natural, steps):
    """One RSLAD training step (rslad_loss.py): teacher forward, `steps`-step KL attack from
    x + 0.001 N(0,1) with the student in eval mode, then 5/6 KL(adv) + 1/6 KL(nat) and Adam."""
    with torch.no_grad():
        soft = F.softmax(teacher(natural), dim=1)
    student.eval()
    x = natural + 0.001 * torch.randn_like(natural)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        loss = kl_sum(student(x), soft)
        (grad,) = torch.autograd.grad(loss, [x])
        x = x.detach() + STEP_SIZE * grad.sign()
        x = torch.min(torch.max(x, natural - EPSILON), natural + EPSILON).clamp(0.0, 1.0)
    student.train()
    optimizer.zero_grad()
    n = natural.shape[0]
    adversarial = kl_sum(student(x.detach()), soft) / n
    clean = kl_sum(student(natural), soft) / n
    loss = 5.0 / 6.0 * adversarial + 1.0 / 6.0 * clean
    loss.backward()
    optimizer.step()


def timed(work, seconds, min_reps=3):
    """Median seconds per call after one warm-up call, repeating for about `seconds`."""
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
    parser.add_argument("--workload", required=True, choices=["forward", "pgd-step", "rslad-step", "matmul"])
    parser.add_argument("--model", default="small-cnn", choices=sorted(MODELS))
    parser.add_argument("--teacher", default="small-cnn", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="attack steps of rslad-step")
    parser.add_argument("--width", type=int, default=1, help="channel multiplier of the model")
    parser.add_argument("--size", type=int, default=1024, help="matrix side of matmul")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    natural = torch.rand(args.batch, 1, 28, 28)
    labels = torch.randint(0, 10, (args.batch,))

    if args.workload == "matmul":
        a = torch.rand(args.size, args.size)
        b = torch.rand(args.size, args.size)
        per_iter, reps = timed(lambda: torch.mm(a, b), args.seconds)
        flops = 2.0 * args.size**3
        print(json.dumps({"workload": "matmul", "seconds": per_iter, "reps": reps,
                          "gflops": flops / per_iter / 1e9, "torch": torch.__version__}))
        return

    model = MODELS[args.model](width=args.width)
    if args.workload == "forward":
        model.eval()

        def work():
            with torch.no_grad():
                model(natural)
    elif args.workload == "pgd-step":
        model.eval()
        x = natural + 0.001 * torch.randn_like(natural)

        def work():
            pgd_step(model, natural, x, labels)
    else:
        teacher = MODELS[args.teacher]().eval()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.002)

        def work():
            rslad_step(model, teacher, optimizer, natural, args.steps)

    per_iter, reps = timed(work, args.seconds)
    print(json.dumps({"workload": args.workload, "model": args.model, "batch": args.batch,
                      "seconds": per_iter, "reps": reps, "images_per_s": args.batch / per_iter,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
