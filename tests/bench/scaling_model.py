#!/usr/bin/python3
"""An alpha-beta model of ctrain's data-parallel step: step time, scaling
efficiency and the largest useful world size, for each model, on

  (a) 2-core CPU nodes over 10 GbE (one rank of 2 threads per node, MPI), and
  (b) 8x H100 nodes, NVLink inside, one 400 Gb/s InfiniBand NIC per GPU (NCCL),

each without and with overlap of the gradient all-reduce with backward.
Python 3 standard library only.

Subcommands
  fit FILE.jsonl        alpha, beta of the ring formula from bench_allreduce's lines
  predict ...           step time, efficiency for given compute, gradient bytes, network
  table ...             the Markdown tables for the docs
  check FILE.json       predicted against measured step times, error per row

The all-reduce of n bytes on p ranks
------------------------------------
Flat network, one link kind with per-message latency alpha and bandwidth beta
(Thakur, Rabenseifner & Gropp, "Optimization of collective communication
operations in MPICH", IJHPCA 2005; Patarasuk & Yuan 2009 for the ring):

  ring:  t = 2(p-1) alpha + 2(p-1)/p * n/beta
         (reduce-scatter then all-gather: 2(p-1) steps of n/p bytes each)
  tree:  t = 2 ceil(log2 p) alpha + 2 n/beta
         (NCCL's pipelined double binary tree, Sanders, Speck & Traeff 2009:
          reduce up and broadcast down a tree of depth log2 p; pipelining
          hides the depth from the bandwidth term but, unlike the ring, the
          whole n crosses each rank's link twice)

That 2(p-1)/p is NCCL's bus-bandwidth factor (nccl-tests PERFORMANCE.md:
all-reduce busbw = algbw * 2(p-1)/p), so beta here is a bus bandwidth, and
bench_allreduce reports busbw the same way. As NCCL does, the faster of ring
and tree is taken. Open MPI's tuned all-reduce chooses among recursive
doubling, ring and Rabenseifner instead; `fit` and `check` therefore use the
ring formula alone, which is what the calibration is of.

Two levels (scenario b) follow NCCL's own tuning model (ncclTopoTuneModel in
NCCL's src/graph/tuning.cc): with g GPUs per node, N nodes, p = N g,

  ring:  t = base + [2(p-1) - 2(N-1)] alpha_nvl + 2(N-1) alpha_ib
              + 2(p-1)/p * n / busbw
  tree:  t = base + 2[(g-1) alpha_nvl + ceil(log2 N) alpha_ib] + 2 n / busbw
  busbw = beta_nvl on one node; across nodes min(beta_nvl * g/(g-1), g beta_ib)

(NCCL runs one ring per NIC, rail-aligned: each ring leaves a node through a
different GPU's NIC, so a node moves g NICs' worth of ring traffic, while each
GPU's NVLink carries (g-1)/g of its ring bytes.) `base` is NCCL's fixed cost
per collective (its baseLat); MPI's (scenario a) is folded into alpha.

The step
--------
t_compute is forward + backward + optimizer of one rank at its batch. Without
overlap (run.allreduce = blocking): t_step = t_compute + t_allreduce(n) + t_sync,
where t_sync is the sum of the small blocking all-reduces synchronised
BatchNorm makes inside forward and backward (model.sync_bn, the default): per
BN layer of c channels, c+1 and 2c doubles forward and 2c+1 backward (none
backward where the layer's input needs no gradient), kernels/cpu/batchnorm.c.
They sit on the critical path with or without overlap, and being latency-bound
they are what limits the small models on many GPUs.
With overlap (run.allreduce = bucketed): backward is BACKWARD_FRACTION of
t_compute and yields gradient bytes at a uniform rate; the flat gradient
buffer (last layers first) is cut into buckets, a bucket is all-reduced as
soon as backward has filled it, one at a time on one communicator, and the
optimizer waits for the last. So with r_i the time bucket i is full and c_i
its all-reduce, end_i = max(r_i, end_{i-1}) + c_i and
t_step = t_compute + t_sync + max(0, end_last - end_of_backward), the exposed part
lying between max(c_last, sum c_i - t_backward) and sum c_i. ctrain's bucket size
is run.bucket_kib; the tables use the best of 1, 2, 4, ... 64 equal buckets
(1 bucket is the blocking all-reduce, so overlap is never predicted slower).
This assumes the collective progresses while the cores compute: true for
NCCL (its own kernels), not for MPI on 2 busy cores (docs/distributed.md
measured no gain from bucketed there), so row (a)-overlap is a bound.

Weak scaling (the per-rank batch fixed, global batch = p b):
efficiency(p) = t_compute / t_step(p); the largest useful world size is the
largest power of two p (up to CPU_MAX_RANKS, GPU_MAX_RANKS) with efficiency >= 0.5 (and the
same for 0.8). Strong scaling (`predict --strong`: a fixed global batch,
compute/p per rank): efficiency = t_compute(1) / (p t_step(p)).
"""

import argparse
import json
import math
import statistics
import sys

# ---------------------------------------------------------------------------
# Every assumed constant, with why. Times in microseconds, bandwidths in GB/s
# (1e9 bytes/s), sizes in bytes.
# ---------------------------------------------------------------------------

# Forward ~ 1/3, backward ~ 2/3 of a training step: backward computes two
# products (input and weight gradients) per forward one. The optimizer's
# elementwise pass is small next to either and is counted with the forward.
BACKWARD_FRACTION = 2.0 / 3.0

# ctrain's default bucket (run.bucket_kib = 1024), used where a run's own
# bucket size is not given.
CTRAIN_BUCKET_BYTES = 1024 * 1024

# Bucket counts the overlap search tries (1 = one all-reduce after backward).
BUCKET_COUNTS = (1, 2, 4, 8, 16, 32, 64)

# (a) 10 GbE, kernel TCP (Open MPI btl/tcp), one rank per 2-core node.
# alpha: one message's latency through two kernel TCP stacks and a switch,
#   15-30 us half round trip on 10 GbE without RDMA; the high end, because
#   interrupt coalescing and a busy 2-core node push it up. `fit` on the
#   namespace cluster's bench_allreduce lines replaces it.
# beta: 10 Gb/s is 1.25 GB/s on the wire; a 1500-byte MTU carries 1448 bytes
#   of TCP payload per 1538 wire bytes (preamble, Ethernet, IP, TCP headers,
#   gap), so 1.25 * 1448/1538 = 1.18 GB/s is the best TCP can deliver.
CPU_ALPHA_US = 25.0
CPU_BETA_GBS = 1.25 * 1448 / 1538
CPU_MAX_RANKS = 256  # nodes; a 2-core rack-scale cluster

# (b) DGX/HGX H100: 8 GPUs on NVSwitch, 8x 400 Gb/s NDR InfiniBand (one per GPU).
# beta_nvl: NVLink4 is 18 links x 25 GB/s = 450 GB/s per direction per GPU;
#   NCCL's tuning model caps A100's ring at 235 of NVLink3's 300 GB/s (78 %),
#   so 0.8 x 450 = 360 GB/s is what a ring is taken to reach.
# alpha_nvl: NCCL's per-step hardware latency on NVLink is 0.5 us (LL
#   protocol, small messages) to 3.4 us (Simple, large); 2 us between.
# beta_ib: NDR's 400 Gb/s = 50 GB/s; RDMA writes reach ~390 Gb/s (perftest
#   ib_write_bw), 48 GB/s.
# alpha_ib: NCCL's per-step network latency is 2.7 us (LL) to 9.6-14 us
#   (Simple); 5 us between, near IB's ~1-2 us verbs latency plus NCCL's proxy.
# base: NCCL's fixed cost per collective (baseLat 6.6-8.4 us; a kernel launch).
GPU_PER_NODE = 8
GPU_BETA_NVL_GBS = 0.8 * 450.0
GPU_ALPHA_NVL_US = 2.0
GPU_BETA_IB_GBS = 48.0
GPU_ALPHA_IB_US = 5.0
GPU_BASE_US = 7.0
GPU_MAX_RANKS = 1024  # GPUs: 128 nodes

# The p columns of the tables.
TABLE_RANKS = {"a": (1, 2, 8, 64, 256), "b": (1, 2, 8, 64, 1024)}


def bn_sync_bytes(c, dx=True):
    """Bytes of each all-reduce one synchronised BatchNorm layer of c channels
    makes per training step (doubles: sums, then centred sums; backward's sums)."""
    return [8 * (c + 1), 8 * 2 * c] + ([8 * (2 * c + 1)] if dx else [])


# Default models. Parameter counts are exact (ctrain train prints them);
# gradient bytes = 4 x params (float32, one flat buffer).
# gpu: per-GPU step at batch 128 on one H100 = max(t_compute, t_memory), the
#   roofline of docs/gpu.md (a lower bound on the step: launch overhead is not
#   in it, so GPU efficiencies here are pessimistic). Its vit is the larger
#   one of that table (patch 4, width 192, 6 layers of 3 heads, FFN 768).
# cpu: measured ms per step at the recipe's batch (configs/MODEL.ini) with
#   `OMP_NUM_THREADS=2 build/tests/bench_step MODEL BATCH 2 STEPS`, the median
#   of 3 runs (batch / images per s), on a shared, noisy 2-vCPU KVM guest ("Intel(R) Xeon(R)
#   Processor", AVX-512 + AMX: Sapphire Rapids class), 2026-12-04: a rank of
#   2 threads on a 2-core node. The recipe vit is patch 8, width 128.
# sync_bytes: the sync-BN all-reduces per step (bn_sync_bytes), from the
#   BatchNorm layers in the checkpoints (`ctrain inspect`: running_mean of
#   3 and 64 channels in attn_cnn, the first on the input image, which needs
#   no gradient; the downsamplers' 128, 256, 512 in resnet10(_attn), which
#   have BatchNorm even with model.batchnorm = false; none in the others).
CPU_SOURCE = ("bench_step MODEL BATCH 2 STEPS, median of 3, shared noisy 2-vCPU KVM guest "
              "(Intel(R) Xeon(R) Processor, Sapphire Rapids class)")
GPU_SOURCE = "H100 roofline max(t_compute TF32, t_memory), docs/gpu.md"
DEFAULT_MODELS = [
    {"name": "attn_cnn", "sync_bytes": bn_sync_bytes(3, dx=False) + bn_sync_bytes(64),
     "gpu": {"params": 45236, "batch": 128, "compute_ms": 0.222},
     "cpu": {"params": 45236, "batch": 128, "compute_ms": 128 / 1799.2 * 1e3}},
    {"name": "ultimus",
     "gpu": {"params": 25488, "batch": 128, "compute_ms": 0.077},
     "cpu": {"params": 25488, "batch": 512, "compute_ms": 512 / 2501.5 * 1e3}},
    {"name": "cnn_vanilla",
     "gpu": {"params": 347946, "batch": 128, "compute_ms": 0.208},
     "cpu": {"params": 347946, "batch": 64, "compute_ms": 64 / 1552.9 * 1e3}},
    {"name": "resnet10", "sync_bytes": bn_sync_bytes(128) + bn_sync_bytes(256) + bn_sync_bytes(512),
     "gpu": {"params": 4909834, "batch": 128, "compute_ms": 0.558},
     "cpu": {"params": 4909834, "batch": 64, "compute_ms": 64 / 229.4 * 1e3}},
    {"name": "resnet10_attn",
     "sync_bytes": bn_sync_bytes(128) + bn_sync_bytes(256) + bn_sync_bytes(512),
     "gpu": {"params": 4959370, "batch": 128, "compute_ms": 0.630},
     "cpu": {"params": 4959370, "batch": 64, "compute_ms": 64 / 209.0 * 1e3}},
    {"name": "vit",
     "gpu": {"params": 2680522, "batch": 128, "compute_ms": 1.650},
     "cpu": {"params": 820874, "batch": 64, "compute_ms": 64 / 1251.6 * 1e3}},
]


class UsageError(Exception):
    pass


def load_json_list(path, what):
    """A non-empty JSON list from path; UsageError naming the file otherwise."""
    try:
        with open(path) as f:
            items = json.load(f)
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}")
    except ValueError as e:
        raise UsageError(f"{path}: not JSON ({e})")
    if not isinstance(items, list) or not items:
        raise UsageError(f"{path}: a non-empty list of {what} expected")
    return items


# ---------------------------------------------------------------------------
# Networks and collectives
# ---------------------------------------------------------------------------

class Network:
    """g ranks per node on an intra-node link, nodes on an inter-node link
    with one NIC per rank. g = 1 is the flat network of scenario (a)."""

    def __init__(self, name, alpha_us, beta_gbs, per_node=1, alpha_intra_us=0.0,
                 beta_intra_gbs=math.inf, base_us=0.0, max_ranks=1024):
        if not (alpha_us >= 0 and beta_gbs > 0 and per_node >= 1 and alpha_intra_us >= 0
                and beta_intra_gbs > 0 and base_us >= 0):
            raise UsageError(f"network {name}: alpha >= 0, beta > 0 needed")
        self.name = name
        self.alpha = alpha_us * 1e-6
        self.beta = beta_gbs * 1e9
        self.g = per_node
        self.alpha_intra = alpha_intra_us * 1e-6
        self.beta_intra = beta_intra_gbs * 1e9
        self.base = base_us * 1e-6
        self.max_ranks = max_ranks

    def layout(self, p):
        """(ranks per node, nodes) for p ranks packed onto full nodes."""
        ppn = min(p, self.g)
        return ppn, -(-p // ppn)

    def busbw(self, p):
        ppn, nodes = self.layout(p)
        if nodes == 1:
            return self.beta_intra if ppn > 1 else self.beta
        nic = ppn * self.beta
        return nic if ppn == 1 else min(self.beta_intra * ppn / (ppn - 1), nic)

    def ring(self, p, n):
        if p <= 1:
            return 0.0
        ppn, nodes = self.layout(p)
        inter = 2 * (nodes - 1)
        lat = (2 * (p - 1) - inter) * self.alpha_intra + inter * self.alpha
        return self.base + lat + 2 * (p - 1) / p * n / self.busbw(p)

    def tree(self, p, n):
        if p <= 1:
            return 0.0
        ppn, nodes = self.layout(p)
        lat = 2 * ((ppn - 1) * self.alpha_intra + math.ceil(math.log2(nodes)) * self.alpha)
        return self.base + lat + 2 * n / self.busbw(p)

    def allreduce(self, p, n, algo="best"):
        if algo == "ring":
            return self.ring(p, n)
        if algo == "tree":
            return self.tree(p, n)
        return min(self.ring(p, n), self.tree(p, n))


def flat(alpha_us, beta_gbs, name="flat", max_ranks=1024):
    return Network(name, alpha_us, beta_gbs, max_ranks=max_ranks)


def cpu_network(alpha_us=CPU_ALPHA_US, beta_gbs=CPU_BETA_GBS):
    return flat(alpha_us, beta_gbs, "(a) 2-core nodes, 10 GbE", CPU_MAX_RANKS)


def gpu_network():
    return Network("(b) 8x H100 nodes, NVLink + 400 Gb/s IB", GPU_ALPHA_IB_US, GPU_BETA_IB_GBS,
                   GPU_PER_NODE, GPU_ALPHA_NVL_US, GPU_BETA_NVL_GBS, GPU_BASE_US, GPU_MAX_RANKS)


# ---------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------

def equal_buckets(n, k):
    """k buckets of (nearly) equal whole-float sizes summing to n bytes."""
    floats = n // 4
    k = max(1, min(k, floats))
    sizes = [4 * (floats // k + (1 if i < floats % k else 0)) for i in range(k)]
    sizes[-1] += n - 4 * floats
    return sizes


def fixed_buckets(n, bucket_bytes):
    """ctrain's layout: full buckets of bucket_bytes, the remainder last."""
    full, rest = divmod(n, bucket_bytes)
    return [bucket_bytes] * full + ([rest] if rest else [])


def exposed_comm(net, p, buckets, t_compute, algo="best"):
    """Seconds the optimizer waits after backward for the bucketed all-reduce."""
    t_bwd = BACKWARD_FRACTION * t_compute
    total = sum(buckets)
    filled, end = 0, 0.0
    for b in buckets:
        filled += b
        ready = t_bwd * filled / total
        end = max(ready, end) + net.allreduce(p, b, algo)
    return max(0.0, end - t_bwd)


def step_time(net, p, t_compute, n, overlap=False, bucket_bytes=None, algo="best", sync=()):
    """(seconds per step, buckets used) for p ranks; sync: the sync-BN
    all-reduces' sizes."""
    if p <= 1:
        return t_compute, 1
    base = t_compute + sum(net.allreduce(p, s, algo) for s in sync)
    if n == 0:
        return base, 1
    if not overlap:
        return base + net.allreduce(p, n, algo), 1
    if bucket_bytes:
        b = fixed_buckets(n, bucket_bytes)
        return base + exposed_comm(net, p, b, t_compute, algo), len(b)
    best = None
    for k in BUCKET_COUNTS:
        t = base + exposed_comm(net, p, equal_buckets(n, k), t_compute, algo)
        if best is None or t < best[0]:
            best = (t, k)
    return best


def efficiency(net, p, t_compute, n, overlap=False, bucket_bytes=None, algo="best",
               strong=False, sync=()):
    if strong:
        t, _ = step_time(net, p, t_compute / p, n, overlap, bucket_bytes, algo, sync)
        return t_compute / (p * t)
    t, _ = step_time(net, p, t_compute, n, overlap, bucket_bytes, algo, sync)
    return t_compute / t


def powers_of_two(limit):
    p = 1
    while p <= limit:
        yield p
        p *= 2


def largest_useful(net, t_compute, n, threshold, overlap=False, algo="best", sync=()):
    best = 1
    for p in powers_of_two(net.max_ranks):
        if efficiency(net, p, t_compute, n, overlap, algo=algo, sync=sync) >= threshold:
            best = p
    return best


# ---------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------

def read_jsonl(path):
    rows = []
    try:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    rows.append((int(r["ranks"]), int(r["bytes"]), float(r["median_us"]) * 1e-6,
                                 r))
                except (ValueError, KeyError, TypeError) as e:
                    raise UsageError(f"{path}:{i}: not a bench_allreduce line ({e})")
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}")
    return rows


def fit_ring(points):
    """Least squares of relative error: alpha, beta (SI) of the ring formula
    t = 2(p-1) alpha + 2(p-1)/p n / beta for points (p, n, t), p > 1.

    Relative, because the sizes span 4 B to 16 MiB: absolute residuals would
    let the largest message alone set both constants. Alpha is held at 0 when
    the free fit makes it negative (latency cannot be), and refitted."""
    pts = [(2 * (p - 1), 2 * (p - 1) / p * n, t) for p, n, t in points if p > 1 and t > 0]
    if len(pts) < 2:
        raise UsageError("fit needs at least 2 points with ranks > 1")
    # Weighted normal equations, weight 1/t^2: minimise sum ((a x + b y - t)/t)^2.
    saa = sum(a * a / t ** 2 for a, b, t in pts)
    sab = sum(a * b / t ** 2 for a, b, t in pts)
    sbb = sum(b * b / t ** 2 for a, b, t in pts)
    sat = sum(a / t for a, b, t in pts)
    sbt = sum(b / t for a, b, t in pts)
    det = saa * sbb - sab * sab
    alpha, inv_beta = None, None
    if det > 1e-12 * saa * sbb:
        alpha = (sat * sbb - sbt * sab) / det
        inv_beta = (saa * sbt - sab * sat) / det
    if alpha is None or alpha < 0:
        alpha, inv_beta = 0.0, sbt / sbb
    if inv_beta <= 0:
        # Latency alone explains it: the sizes are too small to see bandwidth.
        if alpha <= 0:
            raise UsageError("fit: no positive alpha or beta fits these points")
        alpha, inv_beta = sat / saa, 0.0
    return alpha, (1 / inv_beta if inv_beta > 0 else math.inf)


def cmd_fit(args):
    rows = read_jsonl(args.file)
    key = "min_us" if args.use_min else "median_us"
    points = []
    for p, n, t, r in rows:
        if args.use_min:
            t = float(r[key]) * 1e-6
        if p > 1 and (args.min_bytes is None or n >= args.min_bytes):
            points.append((p, n, t))
    alpha, beta = fit_ring(points)
    net = flat(alpha * 1e6, beta / 1e9 if math.isfinite(beta) else 1e12)
    multi = sorted({(r["ranks"], r.get("nodes", r["ranks"])) for _, _, _, r in rows})
    print(f"# ring fit over {len(points)} points ({key}) of {args.file}")
    if any(p != k for p, k in multi):
        print("# note: some runs have several ranks per node, so shared memory and the "
              "network are fitted as one link")
    print(f"alpha_us {alpha * 1e6:.3f}")
    print(f"beta_gbs {beta / 1e9:.4f}")
    print(f"{'ranks':>5} {'bytes':>10} {'measured_us':>12} {'model_us':>10} {'rel_err':>8}")
    errs = []
    for p, n, t in points:
        m = net.ring(p, n)
        e = (m - t) / t
        errs.append(abs(e))
        print(f"{p:5d} {n:10d} {t * 1e6:12.2f} {m * 1e6:10.2f} {e:+8.1%}")
    print(f"max_rel_err {max(errs):.3f}")
    print(f"mean_rel_err {statistics.fmean(errs):.3f}")
    return 0


# ---------------------------------------------------------------------------
# predict, check, table
# ---------------------------------------------------------------------------

def parse_ranks(text):
    try:
        ranks = [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"--ranks {text}: integers, comma separated")
    if not ranks or min(ranks) < 1:
        raise UsageError(f"--ranks {text}: each at least 1")
    return ranks


def parse_sizes(text):
    if not text:
        return []
    try:
        sizes = [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"--sync-bytes {text}: integers, comma separated")
    if min(sizes) < 1:
        raise UsageError(f"--sync-bytes {text}: each at least 1")
    return sizes


def network_from_args(args):
    if args.scenario == "a":
        return cpu_network(CPU_ALPHA_US if args.alpha_us is None else args.alpha_us,
                           CPU_BETA_GBS if args.beta_gbs is None else args.beta_gbs)
    if args.scenario == "b":
        if args.alpha_us is not None or args.beta_gbs is not None:
            raise UsageError("--scenario b has its constants built in; no --alpha-us/--beta-gbs")
        return gpu_network()
    if args.alpha_us is None or args.beta_gbs is None:
        raise UsageError("give --alpha-us and --beta-gbs, or --scenario a|b")
    return flat(args.alpha_us, args.beta_gbs)


def check_positive(name, v, allow_zero=False):
    if not (v >= 0 if allow_zero else v > 0) or not math.isfinite(v):
        raise UsageError(f"{name} {v}: must be {'>= 0' if allow_zero else '> 0'} and finite")


def cmd_predict(args):
    check_positive("--compute-ms", args.compute_ms)
    check_positive("--grad-bytes", args.grad_bytes, allow_zero=True)
    for name in ("alpha_us", "beta_gbs"):
        v = getattr(args, name)
        if v is not None:
            check_positive("--" + name.replace("_", "-"), v, allow_zero=name == "alpha_us")
    net = network_from_args(args)
    t_c = args.compute_ms * 1e-3
    n = args.grad_bytes
    mode, batch = ("strong", "global") if args.strong else ("weak", "per-rank")
    print(f"# {net.name}; compute {args.compute_ms} ms per step ({batch} batch), {n} gradient"
          f" bytes, {mode} scaling, overlap {'on' if args.overlap else 'off'}")
    print(f"{'ranks':>6} {'ring_us':>10} {'tree_us':>10} {'step_ms':>10} {'efficiency':>10}"
          f" {'buckets':>7}")
    sync = parse_sizes(args.sync_bytes)
    for p in parse_ranks(args.ranks):
        t_rank = t_c / p if args.strong else t_c
        t, k = step_time(net, p, t_rank, n, args.overlap, args.bucket_bytes, args.algo, sync)
        eff = (t_c / (p * t)) if args.strong else t_c / t
        print(f"{p:6d} {net.ring(p, n) * 1e6:10.2f} {net.tree(p, n) * 1e6:10.2f} {t * 1e3:10.4f}"
              f" {eff:10.3f} {k:7d}")
    if not args.strong:
        for th in (0.5, 0.8):
            q = largest_useful(net, t_c, n, th, args.overlap, args.algo, sync)
            print(f"largest_p_eff_{th} {q}{'+' if q == net.max_ranks else ''}")
    return 0


def load_models(path):
    if path is None:
        return DEFAULT_MODELS
    models = load_json_list(path, "models")
    for m in models:
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            raise UsageError(f"{path}: each model needs a name")
        sync = m.get("sync_bytes", [])
        if not isinstance(sync, list) or not all(isinstance(b, int) and b > 0 for b in sync):
            raise UsageError(f"{path}: {m['name']}.sync_bytes: a list of positive integers")
        for s in ("cpu", "gpu"):
            e = m.get(s)
            if e is None:
                continue
            try:
                ok = (int(e["params"]) > 0 and int(e["batch"]) > 0
                      and float(e["compute_ms"]) > 0)
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                raise UsageError(f"{path}: {m['name']}.{s} needs params, batch, compute_ms > 0")
    return models


def fmt_ms(t):
    return f"{t * 1e3:.3g}" if t < 1 else f"{t * 1e3:.0f}"


def scenario_table(models, key, net, out):
    ranks = [p for p in TABLE_RANKS[key] if p <= net.max_ranks]
    cols = " | ".join(f"p={p}" for p in ranks)
    out.append(f"| model | params | batch/rank | sync-BN all-reduces | overlap | {cols}"
               f" | eff >= 0.5: p (global batch) | eff >= 0.8: p (global batch) |")
    out.append("|---|--:|--:|--:|---|" + "--:|" * len(ranks) + "--:|--:|")
    for m in models:
        e = m.get("gpu" if key == "b" else "cpu")
        if e is None:
            continue
        t_c, n, b = float(e["compute_ms"]) * 1e-3, 4 * int(e["params"]), int(e["batch"])
        sync = m.get("sync_bytes", [])
        for overlap in (False, True):
            cells = []
            for p in ranks:
                t, _ = step_time(net, p, t_c, n, overlap, sync=sync)
                cells.append(f"{fmt_ms(t)} ({t_c / t:.2f})")
            useful = []
            for th in (0.5, 0.8):
                q = largest_useful(net, t_c, n, th, overlap, sync=sync)
                useful.append(f"{q}{'+' if q == net.max_ranks else ''} ({q * b:,})")
            out.append(f"| {m['name']} | {int(e['params']):,} | {b} | {len(sync)}"
                       f" | {'yes' if overlap else 'no'}"
                       f" | {' | '.join(cells)} | {' | '.join(useful)} |")


def cmd_table(args):
    models = load_models(args.models)
    alpha, beta = args.cpu_alpha_us, args.cpu_beta_gbs
    origin = "assumed"
    if args.cpu_calibration:
        a, b = fit_ring([(p, n, t) for p, n, t, _ in read_jsonl(args.cpu_calibration)])
        alpha, beta = a * 1e6, b / 1e9
        origin = f"fitted to {args.cpu_calibration}"
    elif alpha != CPU_ALPHA_US or beta != CPU_BETA_GBS:
        origin = "given"
    check_positive("--cpu-alpha-us", alpha, allow_zero=True)
    check_positive("--cpu-beta-gbs", beta)
    cpu, gpu = cpu_network(alpha, beta), gpu_network()
    out = []
    out.append("Step time in ms (weak-scaling efficiency) per data-parallel world size p;"
               " the last two columns are the largest power-of-two p reaching that efficiency"
               " and the global batch there (+: still there at the largest p considered)."
               " Only the step time is modelled: whether a model still converges at that"
               " global batch is another question. Overlap: bucketed all-reduce during backward"
               f" (backward = {BACKWARD_FRACTION:.2f} of the step), best of"
               f" {BUCKET_COUNTS[0]}..{BUCKET_COUNTS[-1]} equal buckets.")
    out.append("")
    out.append(f"**{cpu.name}**: one rank of 2 threads per node; alpha {alpha:.1f} us,"
               f" beta {beta:.3f} GB/s ({origin}); faster of ring and tree; compute per step"
               f" measured: {CPU_SOURCE}. Overlap assumes the collective progresses while"
               " both cores compute, which MPI on 2 busy cores does not do (a bound).")
    out.append("")
    scenario_table(models, "a", cpu, out)
    out.append("")
    out.append(f"**{gpu.name}**: NVLink alpha {GPU_ALPHA_NVL_US} us, beta {GPU_BETA_NVL_GBS:.0f}"
               f" GB/s; IB alpha {GPU_ALPHA_IB_US} us, beta {GPU_BETA_IB_GBS:.0f} GB/s per NIC"
               f" (one per GPU); NCCL base {GPU_BASE_US} us per collective; ranks fill nodes of"
               f" {GPU_PER_NODE}; faster of ring and tree; compute per step: {GPU_SOURCE}.")
    out.append("")
    scenario_table(models, "b", gpu, out)
    print("\n".join(out))
    return 0


def cmd_check(args):
    check_positive("--alpha-us", args.alpha_us, allow_zero=True)
    check_positive("--beta-gbs", args.beta_gbs)
    net = flat(args.alpha_us, args.beta_gbs)
    rows = load_json_list(args.file, "rows")
    print(f"# alpha {args.alpha_us} us, beta {args.beta_gbs} GB/s, {args.algo} all-reduce")
    print(f"{'model':>14} {'ranks':>5} {'overlap':>7} {'measured_ms':>12} {'model_ms':>10}"
          f" {'rel_err':>8} {'wait_ms':>8} {'comm_ms':>8}")
    errs = []
    for i, r in enumerate(rows):
        try:
            model, p = str(r["model"]), int(r["ranks"])
            t_c, n = float(r["compute_ms"]) * 1e-3, int(r["grad_bytes"])
            measured = float(r["measured_ms"]) * 1e-3
            overlap = bool(r.get("overlap", False))
            bucket = int(r.get("bucket_bytes", CTRAIN_BUCKET_BYTES))
            wait = float(r["wait_ms"]) if "wait_ms" in r else None
            sync = [int(b) for b in r.get("sync_bytes", [])]
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{args.file}: row {i}: needs model, ranks, compute_ms, grad_bytes,"
                             f" measured_ms ({e})")
        if p < 1 or t_c <= 0 or n < 0 or measured <= 0 or bucket <= 0:
            raise UsageError(f"{args.file}: row {i}: values out of range")
        t, _ = step_time(net, p, t_c, n, overlap, bucket, args.algo, sync)
        e = (t - measured) / measured
        errs.append(abs(e))
        # ctrain's "ms of it waiting for the all-reduce" (the gradients') beside
        # the model's communication (step - compute, sync-BN included): on
        # ranks that share cores the step's error is mostly compute
        # contention, which the wait leaves out.
        w = f"{wait:8.3f}" if wait is not None else f"{'-':>8}"
        print(f"{model:>14} {p:5d} {'yes' if overlap else 'no':>7} {measured * 1e3:12.3f}"
              f" {t * 1e3:10.3f} {e:+8.1%} {w} {(t - t_c) * 1e3:8.3f}")
    print(f"max_rel_err {max(errs):.3f}")
    print(f"mean_rel_err {statistics.fmean(errs):.3f}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fit", help="alpha, beta of the ring formula from bench_allreduce lines")
    f.add_argument("file")
    f.add_argument("--use-min", action="store_true", help="fit min_us instead of median_us")
    f.add_argument("--min-bytes", type=int, help="only sizes of at least this many bytes")

    p = sub.add_parser("predict", help="step time and efficiency for given numbers")
    p.add_argument("--compute-ms", type=float, required=True,
                   help="one rank's step (weak scaling) or the whole batch's (--strong)")
    p.add_argument("--grad-bytes", type=int, required=True)
    p.add_argument("--alpha-us", type=float)
    p.add_argument("--beta-gbs", type=float)
    p.add_argument("--scenario", choices=("a", "b"),
                   help="the built-in networks instead of a flat --alpha-us/--beta-gbs")
    p.add_argument("--ranks", default="1,2,4,8,16,32,64")
    p.add_argument("--overlap", action="store_true")
    p.add_argument("--bucket-bytes", type=int,
                   help="ctrain's run.bucket_kib x 1024 (default: the best bucket count)")
    p.add_argument("--algo", choices=("best", "ring", "tree"), default="best")
    p.add_argument("--strong", action="store_true", help="fixed global batch, compute / p")
    p.add_argument("--sync-bytes", metavar="B1,B2,...",
                   help="sizes of the sync-BN all-reduces per step (bn_sync_bytes)")

    t = sub.add_parser("table", help="Markdown tables for scenarios (a) and (b)")
    t.add_argument("--models", help="JSON list like DEFAULT_MODELS")
    t.add_argument("--cpu-alpha-us", type=float, default=CPU_ALPHA_US)
    t.add_argument("--cpu-beta-gbs", type=float, default=CPU_BETA_GBS)
    t.add_argument("--cpu-calibration", metavar="FILE.jsonl",
                   help="fit (a)'s alpha, beta to bench_allreduce lines instead")

    c = sub.add_parser("check", help="predicted against measured step times")
    c.add_argument("--alpha-us", type=float, required=True)
    c.add_argument("--beta-gbs", type=float, required=True)
    c.add_argument("--algo", choices=("best", "ring", "tree"), default="ring",
                   help="ring (default) is the formula `fit` calibrates")
    c.add_argument("file", help="JSON list of {model, ranks, compute_ms, grad_bytes,"
                   " measured_ms[, overlap, bucket_bytes, wait_ms, sync_bytes]}: compute_ms is"
                   " one rank's"
                   " step at the per-rank batch, wait_ms what ctrain's timing line reports"
                   " waiting for the all-reduce")

    args = ap.parse_args(argv)
    if getattr(args, "bucket_bytes", None) is not None and args.bucket_bytes <= 0:
        ap.error("--bucket-bytes must be positive")
    try:
        return {"fit": cmd_fit, "predict": cmd_predict, "table": cmd_table,
                "check": cmd_check}[args.cmd](args)
    except UsageError as e:
        print(f"scaling_model.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
