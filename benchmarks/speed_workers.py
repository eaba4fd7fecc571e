"""Workers of the speed benchmark (``bench_speed.py``): water boxes, and one function per
measured configuration. Each runs in its own subprocess and returns a JSON-able dict;
times are best-of-repetitions, per atom, in µs (``*_cpu_us``: process CPU time)."""

from __future__ import annotations

import os
import resource
import time

from nnpot.testing import water_box  # noqa: F401 (also used by bench_gpu, speed_extra)

N2P2_WATER = """
# n2p2 RPBE-D3 water model symmetry functions (Morawietz et al. 2016), lengths in Bohr
cutoff_type 1 0.0
""" + "\n".join(
    [f"symfunction_short H 2 {e} {eta} 0.0 12.0" for eta in (0.001, 0.01, 0.03, 0.06)
     for e in ("H", "O")]
    + [f"symfunction_short H 2 O {eta} 0.9 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short H 2 H {eta} 1.9 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short O 2 {e} {eta} 0.0 12.0" for eta in (0.001, 0.01, 0.03, 0.06)
       for e in ("H", "O")]
    + [f"symfunction_short O 2 H {eta} 0.9 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short O 2 O {eta} 4.0 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short H 3 {a} {b} {eta} {lam} {z} 12.0" for a, b, eta, lam, z in (
        ("O", "O", 0.001, -1, 4), ("O", "O", 0.001, 1, 4), ("H", "O", 0.01, -1, 4),
        ("H", "O", 0.01, 1, 4), ("H", "O", 0.03, -1, 1), ("O", "O", 0.03, -1, 1),
        ("H", "O", 0.03, 1, 1), ("O", "O", 0.03, 1, 1), ("H", "O", 0.07, -1, 1),
        ("H", "O", 0.07, 1, 1), ("H", "O", 0.2, 1, 1))]
    + [f"symfunction_short O 3 {a} {b} {eta} {lam} {z} 12.0" for a, b, eta, lam, z in (
        ("H", "O", 0.001, -1, 4), ("O", "O", 0.001, -1, 4), ("H", "O", 0.001, 1, 4),
        ("O", "O", 0.001, 1, 4), ("H", "H", 0.01, -1, 4), ("H", "H", 0.01, 1, 4),
        ("H", "H", 0.03, -1, 1), ("H", "O", 0.03, -1, 1), ("O", "O", 0.03, -1, 1),
        ("H", "H", 0.03, 1, 1), ("H", "O", 0.03, 1, 1), ("O", "O", 0.03, 1, 1),
        ("H", "H", 0.07, -1, 1), ("H", "H", 0.07, 1, 1))])


def _best(fn, reps: int) -> tuple[float, float]:
    """Best wall time and best process CPU time (s) over ``reps`` calls after a warm-up."""
    fn()
    wall = cpu = float("inf")
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker_nnpot(cfg: dict) -> dict:
    import numpy as np
    import torch

    from nnpot.atomistic.descriptors import default_spec, spec_from_n2p2
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.neighbors import make_batch, neighbor_pairs, pair_vectors

    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg["dtype"]]
    numbers, pos, cell = water_box(cfg["n_side"])
    n = len(numbers)
    if cfg.get("spec") == "n2p2":
        spec = spec_from_n2p2(["H", "O"], N2P2_WATER, length_unit="bohr")
    else:  # default_spec's own grid (8 shells) unless the run names n_radial
        spec = default_spec(["H", "O"], cutoff=6.0, n_radial=cfg.get("n_radial", 8))
    pbc = np.array([True] * 3)
    t = time.perf_counter()
    pairs = neighbor_pairs(pos, cell, pbc, spec.cutoff)
    t_nl = time.perf_counter() - t
    batch = make_batch([(numbers, pos, cell, pbc)], {1: 0, 8: 1}, spec.cutoff, dtype=dtype,
                       pairs=[pairs])
    del pairs
    model = NNP(spec, hidden=(25, 25)).to(dtype)
    # best of many short repetitions (~0.5 s in all for small systems): a minimum over 3
    # reps of a few ms was at the mercy of other tenants of the VM (1,029 atoms read 11.4
    # and 24.1 µs/atom in two runs an hour apart)
    reps = cfg.get("reps", max(3, 30_000 // n))
    base = _rss_mb()
    t_ef, c_ef = _best(lambda: model.compute(batch, forces=True), reps)
    peak = _rss_mb()
    out = {"n_atoms": n, "pairs_per_atom": batch.i.shape[0] / n, "n_features":
           {e: len(spec.columns_for(e)) for e in spec.elements},
           "nl_us": 1e6 * t_nl / n, "ef_us": 1e6 * t_ef / n, "ef_cpu_us": 1e6 * c_ef / n,
           "peak_rss_mb": peak, "rss_before_eval_mb": base}
    if cfg.get("desc", True):
        def desc():
            p = batch.positions.detach().requires_grad_(True)
            rij = pair_vectors(p, batch.cell, batch.batch, batch.i, batch.j, batch.shifts)
            g = model.descriptor(batch.species, batch.i, batch.j, rij)
            torch.autograd.grad(g.sum(), p)
        t_d, c_d = _best(desc, reps)
        out["desc_us"], out["desc_cpu_us"] = 1e6 * t_d / n, 1e6 * c_d / n
    if cfg.get("check_f64") and dtype == torch.float32:
        f32 = model.compute(batch, forces=True).forces.double()
        m64 = model.to(torch.float64)
        f64 = m64.compute(batch.to(dtype=torch.float64), forces=True).forces
        out["f32_vs_f64_rel"] = float((f32 - f64).abs().max() / f64.abs().max())
    return out


def _worker_torchani(cfg: dict) -> dict:
    import numpy as np
    import torch

    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    import torchani

    numbers, pos, cell = water_box(cfg["n_side"])
    n = len(numbers)
    # TorchANI asserts angular cutoff < radial cutoff, hence 5.99 Å for "6 Å"
    kw = {} if cfg["cutoffs"] == "default" else {"radial_cutoff": 6.0, "angular_cutoff": 5.99}
    aev = torchani.AEVComputer.like_2x(num_species=2, neighborlist="cell_list", **kw)
    species = torch.tensor((numbers == 8).astype(np.int64))[None]
    nets = torch.nn.ModuleList(torch.nn.Sequential(
        torch.nn.Linear(aev.out_dim, 25), torch.nn.CELU(0.1), torch.nn.Linear(25, 25),
        torch.nn.CELU(0.1), torch.nn.Linear(25, 1)) for _ in range(2))
    cell_t = torch.tensor(cell, dtype=torch.float32)
    pbc = torch.tensor([True] * 3)
    masks = [species[0] == k for k in range(2)]

    def ef():
        c = torch.tensor(pos[None], dtype=torch.float32, requires_grad=True)
        a = aev(species, c, cell=cell_t, pbc=pbc)[0]
        e = sum(nets[k](a[m]).sum() for k, m in enumerate(masks))
        torch.autograd.grad(e, c)

    base = _rss_mb()
    t, c = _best(ef, cfg.get("reps", 2))
    return {"n_atoms": n, "ef_us": 1e6 * t / n, "ef_cpu_us": 1e6 * c / n,
            "peak_rss_mb": _rss_mb(), "rss_before_eval_mb": base, "aev_length": aev.out_dim}


def _worker_dscribe(cfg: dict) -> dict:
    from ase import Atoms
    from dscribe.descriptors import ACSF

    from nnpot.atomistic.descriptors import default_spec

    numbers, pos, cell = water_box(cfg["n_side"])
    atoms = Atoms(numbers=numbers, positions=pos, cell=cell, pbc=True)
    spec = default_spec(["H", "O"], cutoff=6.0)
    acsf = ACSF(r_cut=spec.cutoff, g2_params=[list(p) for p in spec.radial],
                g5_params=[[eta, z, lam] for _k, eta, z, lam, _rs in spec.angular],
                species=["H", "O"], periodic=True)
    base = _rss_mb()
    t, c = _best(lambda: acsf.create(atoms, n_jobs=1), cfg.get("reps", 1))
    return {"n_atoms": len(numbers), "desc_us": 1e6 * t / len(numbers),
            "desc_cpu_us": 1e6 * c / len(numbers), "peak_rss_mb": _rss_mb(),
            "rss_before_eval_mb": base}


def _worker_profile(cfg: dict) -> dict:
    """CPU time per atom (µs) of each stage of nnpot's energy + forces, and of a committee
    of 8 with per-member forces."""
    import numpy as np
    import torch

    from nnpot.atomistic import forward_c
    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.descriptors_moments import Layout, SlotSums, run_sums, run_sums_torch
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.neighbors import make_batch, pair_vectors

    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg["dtype"]]
    numbers, pos, cell = water_box(cfg["n_side"])
    n = len(numbers)
    b = make_batch([(numbers, pos, cell, np.array([True] * 3))], {1: 0, 8: 1}, 6.0,
                   dtype=dtype)
    model = NNP(default_spec(["H", "O"], cutoff=6.0), hidden=(25, 25)).to(dtype)
    plan = model.descriptor.plan
    rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts).detach()
    lay = Layout(b.species, b.i, b.j, n, 2)
    rad, dsq, mom = run_sums(rij, plan.kernel, lay)
    grads = [torch.rand_like(t) for t in (rad, dsq, mom)]
    rl = rij.clone().requires_grad_(True)
    dsq_l, mom_l = dsq.clone().requires_grad_(True), mom.clone().requires_grad_(True)
    g_l = torch.rand(n, plan.spec.n_features(), dtype=dtype, requires_grad=True)

    def pv():
        p = b.positions.detach().requires_grad_(True)
        r = pair_vectors(p, b.cell, b.batch, b.i, b.j, b.shifts)
        torch.autograd.grad(r, p, torch.ones_like(r))

    def slot_sums():
        out = SlotSums.apply(rl, plan.kernel, lay)
        torch.autograd.grad(out, rl, grads)

    def g5():
        torch.autograd.grad(plan._g5(rij, dsq_l, mom_l).sum(), (dsq_l, mom_l))

    def mlp():
        e, _ = model.atomic_outputs(b.species, model.scaled_inputs(b.species, g_l))
        torch.autograd.grad(e.sum(), g_l)

    comm = NNP(model.spec, hidden=(25, 25), n_members=8).to(dtype)
    pb = comm.descriptor.pullback(b.species, b.i, b.j, rij)
    cot = torch.rand(8, n, plan.spec.n_features(), dtype=dtype)

    def mlp8():  # what NNP._committee runs (the fused C network kernel where it is built)
        comm._member_gradients(b.species, g_l.detach())

    def kernel8():
        coef, poly = pb._coefficients(cot)
        for _ in pb._blocks(coef, poly):
            pass

    pb1 = model.descriptor.pullback(b.species, b.i, b.j, rij)
    cot1 = torch.rand(1, n, plan.spec.n_features(), dtype=dtype)

    def pv_nograd():
        with torch.no_grad():
            pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)

    def c_sums():
        forward_c.slot_sums(rij, plan.kernel, b.species, b.i, b.j, n, 2)

    def c_g5():
        forward_c.g5(plan, dsq, mom)

    c_rows = {"E+F path: slot sums in C (forward_c.slot_sums)": c_sums,
              "E+F path: G5 contraction in C (forward_c.g5)": c_g5} \
        if forward_c.usable(rij) else {}
    stages = {  # the E + F path of NNP.compute on a CPU (C kernels when they are built)
              "E+F path: pair vectors, no gradient (fused C kernel)": pv_nograd,
              "E+F path: descriptor forward (slot sums, G5) = pullback set-up":
                  lambda: model.descriptor.pullback(b.species, b.i, b.j, rij),
              **c_rows,
              "E+F path: pullback to forces, 1 cotangent (C kernel)":
                  lambda: pb1.atoms(cot1, virial=False),
              "per-element MLPs 2x25, fwd + bwd": mlp,
              "total: NNP.compute energy + forces": lambda: model.compute(b, forces=True),
              # the autograd path (training on forces, GPU), stage by stage
              "autograd path: pair vectors r_ij + backward": pv,
              "torch path: slot layout (padding indices)":
                  lambda: Layout(b.species, b.i, b.j, n, 2).chunks,
              "torch path: slot sums forward (radial, moments)":
                  lambda: run_sums_torch(rij, plan.kernel, lay),
              "autograd path: slot sums forward + hand-written backward": slot_sums,
              "autograd path: G5 contraction of moments, fwd + bwd": g5,
              "committee 8: pullback set-up (layout, slot sums, G5)":
                  lambda: comm.descriptor.pullback(b.species, b.i, b.j, rij),
              "committee 8: MLPs fwd + input gradients, 8 members": mlp8,
              "committee 8, torch path: cotangent coefficients (G5 adjoint)":
                  lambda: pb._coefficients(cot),
              "committee 8, torch path: coefficients + slot kernel (8 products)": kernel8,
              "committee 8: pullback to forces (C kernel)":
                  lambda: pb.atoms(cot, virial=False),
              "total: NNP.compute committee of 8 with member forces":
                  lambda: comm.compute(b, forces=True, member_forces=True)}
    return {"n_atoms": n, "cpu_us_per_atom": {k: 1e6 * _best(f, 5)[1] / n
                                              for k, f in stages.items()}}


