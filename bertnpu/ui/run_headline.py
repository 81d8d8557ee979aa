"""The headline card of ``report.html``: the answer of a ``bertnpu run`` in one table, read from ``summary.json``.

Model, FP32 against the compiled recipe's Spearman on the test split (with the 95 % intervals
when the summary has them), mean cosine to FP32, the recipe in words, the next command and
where the files are. Only formatting: every number comes from the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from .report import esc, fill

# the compile bundle's docker command (its README.md also has the CUDA image's): run inside the bundle folder


def interval(value: float, ci: Optional[Sequence[float]] = None, signed: bool = False) -> str:
    """``value`` to 4 decimals, with its interval ``[lo, hi]`` when there is one.

    Example:
        >>> interval(0.81834, [0.8012, 0.8341])
        '0.8183 [0.80, 0.83]'
        >>> interval(-0.00204, [-0.0061, 0.0019], signed=True)
        '-0.0020 [-0.006, +0.002]'
    """
    if signed:
        text = f"{value:+.4f}"
        return text + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
    return f"{value:.4f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def compiled_entry(summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The evaluation entry of the recipe the run compiled (or bundled): ``planned``, or ``recommended`` when the plan was skipped."""
    ev = summary["evaluation"]
    key = "planned" if ev.get("planned") else "recommended"
    return key, ev[key]


def difference(entry: dict[str, Any], fp32: dict[str, Any]) -> str:
    """The entry's Spearman minus FP32's, with the paired interval when the summary has it."""
    diff = entry.get("diff_to_fp32")
    if diff is None:
        return interval(entry["spearman"] - fp32["spearman"], signed=True)
    return interval(diff, entry.get("diff_to_fp32_ci"), signed=True)


def recipe_words(recipe: dict[str, Any]) -> str:
    """The recipe as one line of HTML: calibration, 16-bit sites, transformations, profile (every name escaped)."""
    from ..quant.recipe import Recipe

    r = Recipe.from_dict(recipe)
    parts = [esc(r.calibration.label())]
    sites = r.activation_16bits
    parts.append(f"{len(sites)} activation(s) at 16 bits: " + ", ".join(f"<code>{esc(x)}</code>" for x in sites) if sites
                 else "every activation at 8 bits (except what the profile keeps at 16)")
    enabled = r.equivalent_transformation.enabled()
    parts.append("equivalent transformations: " + esc(", ".join(enabled)) if enabled else "no equivalent transformation")
    return "; ".join(parts) + fill("; simulated under precision profile <b>{p}</b>", p=r.profile)


def _targets(plan: dict[str, Any]) -> Optional[str]:
    if plan.get("skipped") or "tolerance" not in plan:
        return None
    met = lambda ok: "met" if ok else '<b class="warn">not met</b>'  # noqa: E731 (one word, twice)
    text = f"within {plan['tolerance']:g} of FP32 on validation: {met(plan['within_tolerance'])}"
    if plan.get("min_cosine"):
        text += f"; mean cosine &ge; {plan['min_cosine']:g} on validation: {met(plan.get('cosine_met'))}"
    return text


def _next_steps(summary: dict[str, Any], recipe: dict[str, Any]) -> tuple[str, str]:
    """(the next command, where the files are), as HTML."""
    from ..device.bundle import docker_command
    from ..device.qb_calls import TARGET_DEVICES
    from ..quant.recipe import Recipe

    comp = summary["compile"]
    if comp.get("mxq"):
        cmd = fill("bertnpu eval --mxq {mxq} --weights weight_dict.pth --calib calib", mxq=comp["mxq"])
        return (f"verify on the NPU (FP32, simulated and NPU Spearman side by side), from this run's folder:<pre>{cmd}</pre>",
                fill("<code>{mxq}</code> beside this report, with <code>{mxq}.recipe.json</code>", mxq=comp["mxq"]))
    if not comp.get("bundle"):
        return esc(comp.get("note") or "nothing was compiled"), "-"
    mxq = f"{Path(str(summary['analysis']['summary']['model'])).name}.mxq"
    compiled = Recipe.from_dict(recipe)
    device = ("" if compiled.target_device else
              fill(" (replace <code>DEVICE</code> with the NPU's target device: {d}; or rerun with <code>--target-device</code>)",
                   d=", ".join(TARGET_DEVICES)))
    steps = ("<ol>" + fill("<li>compile on Mobilint's Docker image: put the qbcompiler wheel in <code>{b}/</code> and, from that folder, run", b=comp["bundle"])
             + f"{device}<pre>{esc(docker_command(compiled))}</pre></li>"
             + fill("<li>verify on the NPU, from the same folder:<pre>bertnpu eval --mxq {m} --weights weight_dict.pth --calib calib</pre></li>", m=mxq)
             + "</ol>")
    where = fill("<code>{b}/</code> beside this report: the model, calibration set, <code>weight_dict.pth</code>, <code>recipe.json</code>, "
                 "<code>compile_mxq.py</code> and a README with the CUDA image's command", b=comp["bundle"])
    return steps, where


def headline(summary: dict[str, Any]) -> tuple[str, str]:
    """(heading, body) of the report's first section: one card with the run's answer."""
    a = summary["analysis"]["summary"]
    ev = summary["evaluation"]
    fp32 = ev["fp32"]
    key, entry = compiled_entry(summary)
    profile = (entry.get("recipe") or {}).get("profile", "aries")
    which = ("Planned recipe" if key == "planned" else
             "Recommended recipe (the run skipped the planner, --no-plan: the sweep's INT8-only pick is compiled)")
    split = f"STS-B {esc(ev.get('split', 'test'))}, {ev.get('pairs', '?')} pairs"
    rows = [("Model", fill("<b>{m}</b>: hidden {h}, {l} layers, {p} pooling", m=a["model"], h=a["hidden_size"], l=a["layers"], p=a["pooling"]))]
    if summary.get("inputs", {}).get("quick"):
        rows.append(("Quick run", '<span class="warn">a smoke run on small sets (--quick): it checks the pipeline, not the numbers</span>'))
    rows += [(f"FP32 Spearman<br><small>{split}</small>", interval(fp32["spearman"], fp32.get("spearman_ci"))),
             (f"{which} Spearman<br><small>simulated INT8, profile {esc(profile)}</small>", interval(entry["spearman"], entry.get("spearman_ci"))),
             ("Difference to FP32", difference(entry, fp32))]
    if entry.get("cosine_mean") is not None:
        rows.append(("Mean cosine to FP32 embeddings", f"{entry['cosine_mean']:.4f}"))
    rows.append(("Recipe", recipe_words(entry["recipe"])))
    targets = _targets(summary.get("plan") or {})
    if targets:
        rows.append(("Targets of the plan", targets))
    steps, where = _next_steps(summary, entry["recipe"])
    rows += [("Next", steps), ("Files", where)]
    if ev.get("fp32", {}).get("spearman_ci") or entry.get("spearman_ci"):
        rows.append(("Intervals", "95 % bootstrap intervals over the test pairs; the difference's is paired"))
    body = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return "The answer", f'<div class="card"><table class="headline">{body}</table></div>'
