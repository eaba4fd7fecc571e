"""``nnpot nuclear lowrank | export | triton``: a fitted NN model in many-body form.

* ``lowrank MODEL --rank R``: rank-R separable form per channel (EST by default; SVD,
  Weinberg, or EST optimised on the phase shifts: ``--method opt``), max phase-shift
  deviation up to T_lab = 300 MeV, deuteron, speed-up.
* ``export MODEL --hw 20 --nmax 40 --out FILE``: HO matrix elements per (S, J, T) channel
  in the documented text format of :mod:`nnpot.nuclear.export`; ``--lab-emax E`` also
  writes laboratory-frame J-coupled two-body matrix elements (:mod:`nnpot.nuclear.labframe`).
* ``triton MODEL --nmax N --hw H``: 3H in the Jacobi NCSM; several N_max (``--nmax
  24,28,32``) add the exponential extrapolation; ``--fit-c-e`` fits the three-nucleon
  contact to B(3H) = 8.4818 MeV.
MODEL defaults to the shipped np_n2lo.nnp. Units: MeV, fm, degrees.
"""

from __future__ import annotations

import argparse
import json
import sys


def _model_arg(p) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="nuclear model file (.nnp); default: the shipped np_n2lo.nnp")


def _ints(text: str, what: str) -> list[int]:
    from nnpot.errors import InputError

    try:
        vals = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not vals:
        raise InputError(f"{what} is empty")
    return vals


def register(subparsers) -> None:
    p = subparsers.add_parser("lowrank", help="rank-R separable form of every channel")
    _model_arg(p)
    p.add_argument("--rank", required=True,
                   help="rank per channel, or 'auto': per channel the smallest rank <= "
                        "--max-rank within --tol deg (and the deuteron within --bd-tol MeV)")
    p.add_argument("--tol", type=float, default=0.05, help="deg, for --rank auto (0.05)")
    p.add_argument("--bd-tol", type=float, default=1e-3, help="MeV, for --rank auto (0.001)")
    p.add_argument("--max-rank", type=int, default=8, help="for --rank auto (default 8)")
    p.add_argument("--method", default="est", choices=["est", "svd", "weinberg", "opt"],
                   help="est (exact at chosen energies, half off shell too), svd, weinberg, "
                        "or opt (EST optimised on the on-shell phase shifts up to --tlab-max, "
                        "deuteron pole kept exact)")
    p.add_argument("--waves", default=None, help="comma-separated channels (default: all)")
    p.add_argument("--tlab-max", type=float, default=300.0, help="MeV (default 300)")
    p.add_argument("--member", type=int, default=0, help="committee member (default 0)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_lowrank)

    p = subparsers.add_parser("export", help="HO matrix elements in a text file")
    _model_arg(p)
    p.add_argument("--hw", type=float, required=True, help="hbar omega [MeV]")
    p.add_argument("--nmax", type=int, required=True, help="2n + l <= nmax")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--member", type=int, default=0, help="committee member (default 0)")
    p.add_argument("--lab-emax", type=int, default=None,
                   help="also write laboratory-frame J-coupled two-body matrix elements "
                        "(Talmi-Moshinsky) for single-particle orbits 2n + l <= this")
    p.add_argument("--lab-out", default=None, help="file of the laboratory-frame elements "
                                                   "(default: OUT with .lab.int appended)")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser("triton", help="3H binding energy in the Jacobi NCSM")
    _model_arg(p)
    p.add_argument("--nmax", required=True, help="N_max, or comma-separated list")
    p.add_argument("--hw", type=float, required=True, help="hbar omega [MeV]")
    p.add_argument("--ols", action="store_true",
                   help="Okubo-Lee-Suzuki two-body effective interaction (faster convergence)")
    p.add_argument("--nbig", type=int, default=None, help="two-body space for --ols")
    p.add_argument("--c-e", type=float, default=None, help="three-nucleon contact c_E")
    p.add_argument("--fit-c-e", action="store_true", help="fit c_E to B(3H) = 8.4818 MeV")
    p.add_argument("--c-d", type=float, default=0.0,
                   help="one-pion-exchange-contact 3NF c_D (fixed; --fit-c-e fits c_E at it)")
    p.add_argument("--committee", action="store_true", help="all committee members")
    p.add_argument("--precision", default="float64", choices=["float64", "mixed", "float32"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_triton)


def _load(path):
    from nnpot.nuclear.modelfile import load_model, shipped_model_path

    return load_model(path if path is not None else shipped_model_path())


def run_lowrank(args: argparse.Namespace) -> int:
    from nnpot.errors import InputError
    from nnpot.nuclear.channels import get_channel, np_channels
    from nnpot.nuclear.lowrank import rank_report, smallest_rank_report

    model = _load(args.model)
    if not 0 <= args.member < len(model.members):
        raise InputError(f"committee member {args.member} does not exist")
    jmax = int(model.header.get("config", {}).get("short", {}).get("jmax", 4))
    chans = list(np_channels(jmax)) if args.waves is None else \
        list(dict.fromkeys(get_channel(w.strip(), jmax) for w in args.waves.split(",")))
    k, w = model.mesh()
    pot = model.members[args.member]
    auto = str(args.rank).strip().lower() == "auto"
    if not auto:
        try:
            rank = int(args.rank)
        except ValueError:
            raise InputError(f"--rank must be a positive integer or 'auto', got {args.rank!r}"
                             ) from None
    rows = {}
    for ch in chans:
        v = (lambda a, b, ch=ch: pot(ch, a, b))
        if auto:
            rows[ch.name] = smallest_rank_report(v, k, w, args.method, args.tol, args.bd_tol,
                                                 args.max_rank, tlab_max=args.tlab_max,
                                                 deuteron=(ch.name == "3S1-3D1"))
        else:
            rows[ch.name] = rank_report(v, k, w, rank, args.method, tlab_max=args.tlab_max,
                                        n_energies=300, deuteron=(ch.name == "3S1-3D1"))
    speed = sum(r["seconds_full_solve"] for r in rows.values()) / max(
        1e-12, sum(r["seconds_separable_solve"] for r in rows.values()))
    res = {"rank": "auto" if auto else rank, "method": args.method, "tlab_max_mev": args.tlab_max,
           "channels": rows, "max_dphase_deg": max(r["max_dphase_deg"] for r in rows.values()),
           "speedup_separable_vs_full": speed}
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    what = (f"smallest rank <= {args.max_rank} within {args.tol:g} deg" if auto
            else f"rank {args.rank}")
    print(f"{what} ({args.method}), phase shifts up to T_lab = {args.tlab_max:g} MeV "
          f"(308 energies)")
    for name, r in rows.items():
        extra = ""
        if "e_d_full_mev" in r:
            es = r.get("e_d_separable_mev")
            extra = f"  E_d full {r['e_d_full_mev']:.6f}  separable " + \
                (f"{es:.6f} MeV" if es is not None else "unbound")
        miss = "  (tolerance not met)" if auto and not r["met"] else ""
        print(f"{name:10s} rank {r['rank']:2d}  max |d delta| {r['max_dphase_deg']:.4f} deg"
              f"{extra}{miss}")
    print(f"closed-form separable LS solve {speed:.0f}x faster than the full solve")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from nnpot.errors import InputError
    from nnpot.nuclear.export import write_ho_file
    from nnpot.nuclear.threebody.driver import model_hbar2_m, model_me

    if args.nmax < 0 or args.nmax > 200:
        raise InputError(f"--nmax must be between 0 and 200, got {args.nmax}")
    if args.lab_emax is not None and not 0 <= 2 * args.lab_emax <= args.nmax:
        raise InputError(f"--lab-emax must be between 0 and nmax/2 = {args.nmax // 2} "
                         f"(pairs of orbits need relative states up to 2 emax), got "
                         f"{args.lab_emax}")
    model = _load(args.model)
    if not 0 <= args.member < len(model.members):
        raise InputError(f"committee member {args.member} does not exist")
    me = model_me(model, args.member, args.nmax, args.hw)
    write_ho_file(args.out, me, args.hw, args.nmax, model_hbar2_m(),
                  meta={"source": args.model or "np_n2lo.nnp (shipped)",
                        "member": args.member, "writer": "nnpot nuclear export"})
    print(f"wrote {args.out} ({len(me)} channels, hw = {args.hw:g} MeV, nmax = {args.nmax})")
    if args.lab_emax is not None:
        from nnpot.nuclear.labframe import model_lab_file

        lab_out = args.lab_out or f"{args.out}.lab.int"
        model_lab_file(model, args.member, args.hw, args.lab_emax, lab_out, nmax=args.nmax,
                       rel=me)
        print(f"wrote {lab_out} (laboratory frame, orbits 2n + l <= {args.lab_emax})")
    return 0


def run_triton(args: argparse.Namespace) -> int:
    from nnpot.nuclear.threebody.driver import model_triton

    model = _load(args.model)
    nmax = _ints(args.nmax, "--nmax")
    members = list(range(len(model.members))) if args.committee else [0]
    log = None if args.json else (lambda d: print(
        f"N_max {d['nmax']:3d}  E = {d['energy']:.5f} MeV  r_p = {d['r_p']:.3f} fm  "
        f"(dim {d['dim_physical']}, {d['seconds_solve']:.1f} s)", file=sys.stderr))
    res = model_triton(model, nmax, args.hw, ols=args.ols, nbig=args.nbig, members=members,
                       c_e=args.c_e, fit_c_e=args.fit_c_e, precision=args.precision, log=log,
                       c_d=args.c_d)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    ext = res["members"][str(members[0])]["extrapolation"]
    print(f"3H, NN only: E = {res['e_nn_last_mev']:.4f} MeV at N_max = {nmax[-1]}, "
          f"hw = {args.hw:g} MeV" + (" (OLS)" if args.ols else ""))
    if ext:
        print(f"  extrapolated E_inf = {ext['e_inf']:.4f} +- {ext['sigma']:.4f} MeV")
    if len(members) > 1:
        print(f"  committee std {res['e_nn_committee_std_mev']:.4f} MeV")
    if "c_e" in res:
        print(f"with 3NF c_D = {res['c_d']:g}, c_E = {res['c_e']:.4f}: "
              f"E = {res['e_3nf_mev']:.4f} MeV, "
              f"r_p = {res['r_p_3nf_fm']:.3f} fm (at N_max = {nmax[-1]})")
    return 0
