"""The Plan panel of notebook 04: tolerance and minimum-cosine sliders, profile, Run button, Pareto figure, site map and the chosen recipe."""

from __future__ import annotations

import json
from typing import Optional

import ipywidgets as W
from IPython.display import Image

from ..quant.precision import DEFAULT_PROFILE, PROFILE_NAMES
from .report import esc, figure_png


class PlanPanel:
    """Run the planner on a :class:`~bertnpu.ui.workspace.Workspace` and show what it chose.

    ``panel.widget`` is the box to display; ``panel.run()`` is what the button calls and
    returns the stage's :class:`~bertnpu.stages.PlanResult` (also kept as ``panel.last``).
    The recipe goes to ``<workspace>/plan/recipe.json`` (replaced on each run) and every
    result is cached beside it, so a second run with the same inputs returns at once.

    Example:
        >>> panel = PlanPanel(ws)   # in notebook 04, after the calibration and stats cells
        >>> panel.widget            # doctest: +SKIP
    """

    def __init__(self, workspace, tolerance: float = 0.005, profile: str = DEFAULT_PROFILE, max_sites: int = 8, min_cosine: float = 0.99):
        self.ws = workspace
        self.tolerance = W.FloatSlider(value=tolerance, min=0.001, max=0.05, step=0.001, readout_format=".3f",
                                       description="tolerance", continuous_update=False)
        self.min_cosine = W.FloatSlider(value=min_cosine, min=0.0, max=0.999, step=0.001, readout_format=".3f",
                                        description="min cosine", continuous_update=False)
        self.profile = W.Dropdown(options=list(PROFILE_NAMES), value=profile, description="profile")
        self.max_sites = W.IntSlider(value=max_sites, min=0, max=16, description="max 16-bit")
        self.button = W.Button(description="Plan", button_style="success")
        self.status = W.HTML("press Plan to search the cheapest recipe within the tolerance (Spearman below FP32 on validation) "
                             "whose embeddings keep the minimum mean cosine to FP32 (0: Spearman alone)")
        self.pareto = W.Output()
        self.sites = W.Output()
        self.recipe = W.HTML()
        self.last = None
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([W.HBox([self.tolerance, self.min_cosine, self.profile, self.max_sites, self.button]), self.status,
                              W.HBox([self.pareto, self.sites]), self.recipe])

    def run(self, progress: bool = True):
        from ..stages.plan import PlanInputs, plan

        out = self.ws.folder / "plan" / "recipe.json"
        self.status.value = (f"planning under profile <b>{esc(self.profile.value)}</b>, tolerance {self.tolerance.value:g} "
                             f"(progress below; results are cached in {esc(out)}.plan-cache.jsonl) ...")
        result = plan(PlanInputs(self.ws.model, self.ws.calibration, self.ws.pairs("validation"), self.ws.pairs("test"), stats=self.ws.stats,
                                 profile=self.profile.value, tolerance=float(self.tolerance.value), max_sites=int(self.max_sites.value),
                                 min_cosine=float(self.min_cosine.value),
                                 out=out, figures=None, force=True, progress=progress))
        self.last = result
        self.show(result)
        return result

    def show(self, result) -> None:
        """Fill the figures, the verdict and the recipe from a PlanResult."""
        for output, name in ((self.pareto, "plan_pareto"), (self.sites, "plan_sites")):
            output.outputs = ()
            output.append_display_data(Image(data=figure_png(result.figures[name])))
        from .conclusions import noise_verdict

        verdict = "within" if result.within_tolerance else "<b>not</b> within"
        cos_verdict = "reached" if result.cosine_met else "<b>not</b> reached within the site limit"
        best = result.best_int8_only
        self.status.value = (
            f"[{esc(result.profile)}] {len(result.activation_16bits)} site(s) at 16 bits ({result.traffic_16bit:.1%} of activation traffic): "
            f"validation Spearman {result.validation_spearman:.4f}, {verdict} {result.tolerance:g} of FP32 {result.fp32_validation_spearman:.4f}, "
            f"validation cosine {result.validation_cosine:.4f} (minimum {result.min_cosine:g} {cos_verdict}); "
            f"test {result.spearman:.4f} (FP32 {result.fp32_spearman:.4f}, cosine to FP32 {result.cosine_to_fp32:.4f}"
            + (f"; {esc(noise_verdict(result.diff_to_fp32, result.diff_to_fp32_ci))}" if result.diff_to_fp32_ci else "") + "); "
            + (f"stopped by <code>{esc(result.stop_rule)}</code>: {esc(result.stop_reason)}; " if result.stop_rule else "") +
            f"best INT8-only: test {best['spearman']:.4f} ({esc(best['recipe'])})"
            + (f"<br>not tried at 16 bits: the {len(result.not_tried)} LayerNorm outputs (an ARIES user saw a 16-bit override of "
               "LayerNormalization leave the compiled model byte-identical, so it is no lever)" if result.not_tried else ""))
        self.recipe.value = ("<b>recipe.json</b> (numbers rounded to 4 decimals here; the file keeps them whole)<pre>"
                             + esc(json.dumps(_rounded(result.recipe.to_dict()), indent=1)) + "</pre>")


def _rounded(value, digits: int = 4):
    """``value`` with every float rounded (for display only)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    return value


def plan_panel(workspace, tolerance: Optional[float] = None) -> PlanPanel:
    """A PlanPanel with the default tolerance (0.005) unless ``tolerance`` is given."""
    return PlanPanel(workspace, tolerance=0.005 if tolerance is None else tolerance)
