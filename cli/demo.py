"""``kolmo demo``: the whole pipeline on built-in defaults (see :mod:`cli.workflows.demo`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli import options as opt
from cli.common import console, friendly_errors
from kolmo.paths import writable_output

HELP = ("Run the whole pipeline on built-in defaults: dong2026 dataset, train the latent FM closure (MP), its "
        "one-step reflow student (the stochastic one-step closure) and the 10-step physical diffusion baseline, "
        "export, benchmark, online runs (no / true / the three learned closures), evaluate, report. Sizes: ci "
        "(< 2 min, every stage), tiny (~10 min on 2 CPU cores), "
        "small (~2 h on 2 CPU cores), paper (hours of CPU for data, then a GPU). Resumable: rerun to continue. "
        "--case les: the kolmogorov LES demo instead (learned closure vs none / Smagorinsky / Leith vs a DNS).")


def demo(
    out: Path = typer.Option(Path("demo"), "--out", "-o", help="Output folder (resumes what is already there)."),
    size: str = typer.Option("tiny", help="ci, tiny, small or paper (see the command help for durations); --case les: ci or tiny.", callback=opt.choice("ci", "tiny", "small", "paper")),
    threads: int = typer.Option(1, help="FFTW and torch CPU threads.", callback=opt.at_least(1)),
    seed: int = typer.Option(0, help="Seed of data, training and sampling.", callback=opt.at_least(0)),
    case: str = typer.Option("paper", "--case", help="paper (dong2026 missing physics, above) or les (kolmogorov LES: learned closure vs none / Smagorinsky / Leith against a DNS; sizes ci, tiny; --out default demo-les).", callback=opt.choice("paper", "les")),
) -> None:
    """Run the pipeline with rich progress and print the summary."""
    if case == "les":
        return _les_demo(out if out != Path("demo") else Path("demo-les"), size, threads, seed)
    with friendly_errors():  # before torch loads
        writable_output(out, "--out", folder=True)
    from cli.workflows.demo import SIZES, run_demo

    with friendly_errors():
        if size in SIZES:
            console.print(f"[bold]kolmo demo[/] — size {size}: expected {SIZES[size].expected}; output in {out}/")

        def train_show(ev) -> None:  # noqa: ANN001
            if ev.kind == "epoch" and (ev.epoch % max(1, ev.epochs // 5) == 0 or ev.epoch == ev.epochs):
                console.print(f"        {ev.phase} epoch {ev.epoch}/{ev.epochs}: loss {ev.loss:.4g}"
                              + (f", val {ev.val_loss:.4g}" if ev.val_loss is not None else "")
                              + f", {ev.samples_per_s:.0f} samples/s", highlight=False)

        r = run_demo(out, size, threads=threads, seed=seed, progress=_show_stage, train_progress=train_show)
        table = Table(title=f"kolmo demo ({size}) — {r.seconds:.0f} s")
        for col in ("closure", "NFE", "a-priori ens.-mean rel. err.", "latency B=1 [ms]", "speed-up vs DM",
                    "online rel. err. (last horizon)"):
            table.add_column(col, justify="right")
        lat = {(Path(b["artifact"]).stem, b["batch"]): b for b in r.bench}
        online = r.online.get("results", {}) if isinstance(r.online, dict) else {}
        for name, label in (("latent-reflow", "latent reflow, MP, 1 step (stochastic)"),
                            ("latent-fm-mp", "latent FM, MP, 1 step (conditional mean)"),
                            ("dm", "physical DM, 10 steps (reference)")):
            ap = r.apriori.get(name, {})
            b = lat.get((name, 1), {})
            table.add_row(label, str(ap.get("nfe", "?")), f"{ap.get('ensemble_mean_rel_error', float('nan')):.3f}",
                          f"{b.get('median_ms', float('nan')):.2f}", f"{b.get('speedup', float('nan')):.1f}×",
                          _last_error(online, name))
        for name in ("none", "true"):
            table.add_row({"none": "no closure", "true": "true closure (replay)"}[name], "", "", "", "",
                          _last_error(online, name))
        console.print(table)
        console.print(f"report: {r.report / 'report.md'}  (figures beside it); summary: {r.out / 'summary.json'}")


def _last_error(results: dict, name: str) -> str:
    """Mean relative error (± 2 std over members) of a source at the last horizon of the online report."""
    for label, res in results.items():
        if label.split(" ")[0] == name:
            rows = (res.get("trajectory") or {}).get("at_horizons") or []
            if rows and rows[-1].get("rel_error_mean") is not None:
                last = rows[-1]
                return f"{last['rel_error_mean']:.3f} ± {last.get('rel_error_2std') or 0:.3f} (t={last['time']:g})"
    return ""


def _show_stage(e) -> None:  # noqa: ANN001 - a cli.workflows.demo.StageEvent
    """Print a demo stage's start or end (both demos)."""
    if not e.done:
        console.print(f"[cyan][{e.index}/{e.stages}] {e.stage}[/]: {e.message} …", highlight=False)
    else:
        note = " (already done, skipped)" if e.skipped else ""
        console.print(f"      {e.stage} finished in {e.seconds:.1f} s{note}", highlight=False)


def _les_demo(out: Path, size: str, threads: int, seed: int) -> None:
    """``--case les`` (:mod:`cli.workflows.les_demo`)."""
    from cli.workflows.les_demo import LES_SIZES, run_les_demo
    from kolmo.errors import ConfigurationError

    with friendly_errors():  # before torch loads
        if size not in LES_SIZES:
            raise ConfigurationError(f"--size {size} does not apply to --case les; valid: {', '.join(LES_SIZES)}")
        writable_output(out, "--out", folder=True)
        console.print(f"[bold]kolmo demo --case les[/] — size {size}: expected {LES_SIZES[size].expected}; "
                      f"output in {out}/")
        r = run_les_demo(out, size, threads=threads, seed=seed, progress=_show_stage)
    table = Table(title=f"kolmo demo --case les ({size}) — {r.seconds:.0f} s")
    for col in ("LES", "E-spectrum err (band)", "E / DNS", "Z / DNS", "W1(ω)/σ", "blow-up", "speed-up vs DNS"):
        table.add_column(col, justify="right")
    for label, x in r.results["runs"].items():
        sp = x["cost"].get("speedup_vs_reference")
        table.add_row(label, f"{x['energy_spectrum_error']['band']:.3f}", f"{x['energy']['ratio_to_reference']:.3f}",
                      f"{x['enstrophy']['ratio_to_reference']:.3f}", f"{x['vorticity_w1_over_sigma']:.3f}",
                      "yes" if x["blowup"]["blew_up"] else "no", "–" if sp is None else f"{sp:.1f}×")
    console.print(table)
    console.print(f"report: {r.report / 'les.md'}  (figures beside it); summary: {r.out / 'summary.json'}")
