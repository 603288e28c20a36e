"""Train a small neural one-step model on a sweep store instead of generating data in-process.

1. ``pdeforge.sweep`` runs FitzHugh-Nagumo (the PDEBench 2-D diffusion-reaction problem) for
   3 values of the threshold ``k`` x 8 seeds of the random initial field, as tasks on a local
   Dask cluster, into ``fhn_sweep.zarr`` (rerunning the script skips the finished members).
2. ``pdeforge.SweepDataset`` serves (u(t_k), u(t_k+1)) pairs with the member's ``k``.
3. A two-layer convolutional network learns the increment u(t_k+1) - u(t_k) on seeds 0-5
   and is compared, on the unseen seeds 6-7, with persistence (predicting no change).

    python examples/sweep_training.py [--workers 2] [--epochs 40] [--device cpu]
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local Dask cluster")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default="fhn_sweep.zarr")
    parser.add_argument("--device", default="cpu", help="torch device for training, e.g. cuda")
    args = parser.parse_args()

    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Subset

    import pdeforge as pf

    ds = pf.sweep("fitzhugh-nagumo", params={"k": "0:0.01:3"}, seeds=range(8), grid=(32, 32), t_span=1.0,
                  output=pf.Output(args.out, save_every=0.05), client=args.workers)
    print(f"{args.out}: {ds.sizes['member']} members, status counts {np.bincount(ds.status.values, minlength=4)[1:]}"
          " (completed, blew up, failed)")

    data = pf.SweepDataset(args.out, layout="pairs", lag=1, in_memory=True)
    seeds = np.array([int(data[i]["seed"]) for i in range(len(data))])
    train, test = Subset(data, np.flatnonzero(seeds < 6)), Subset(data, np.flatnonzero(seeds >= 6))
    print(f"{len(train)} training pairs (seeds 0-5), {len(test)} test pairs (seeds 6-7)")

    torch.manual_seed(0)
    device = torch.device(args.device)
    net = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1, padding_mode="replicate"), nn.Tanh(),
                        nn.Conv2d(24, 2, 3, padding=1, padding_mode="replicate")).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def predict(batch):
        u = batch["input"].to(device)
        k = batch["params"].to(device)[:, :, None, None].expand(-1, 1, *u.shape[-2:]) * 100  # k in [0, 1]
        return u + net(torch.cat([u, k], dim=1))

    def mse(subset, model=True):
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in DataLoader(subset, batch_size=64):
                guess = predict(batch) if model else batch["input"].to(device)
                total += float(((guess - batch["target"].to(device)) ** 2).sum())
                count += batch["target"].numel()
        return total / count

    for epoch in range(args.epochs):
        for batch in DataLoader(train, batch_size=32, shuffle=True):
            opt.zero_grad()
            loss = ((predict(batch) - batch["target"].to(device)) ** 2).mean()
            loss.backward()
            opt.step()
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1:3d}: train MSE {mse(train):.3e}, test MSE {mse(test):.3e}")
    persistence = mse(test, model=False)
    learned = mse(test)
    print(f"test MSE: learned one-step model {learned:.3e} vs persistence {persistence:.3e} "
          f"({persistence / learned:.1f}x lower)")


if __name__ == "__main__":
    main()
