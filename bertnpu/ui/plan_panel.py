"""The Plan panel of notebook 04: tolerance and minimum-cosine sliders, profile, Run button, Pareto figure, site map and the chosen recipe."""

from __future__ import annotations

import json
from typing import Optional

import ipywidgets as W
from IPython.display import Image

from ..quant.precision import PROFILE_NAMES
from ..tune.plan.spec import PlanSpec
from .messages import MESSAGES, label, message
from .report import esc, figure_png


class PlanPanel:
    """Run the planner on a notebook's :class:`~bertnpu.project.ProjectStore` and show what it chose.

    ``panel.widget`` is the box to display; ``panel.run()`` is what the button calls and
    returns the stage's :class:`~bertnpu.stages.PlanResult` (also kept as ``panel.last``).
    The recipe goes to the project's ``recipe.json`` (where ``bertnpu run`` puts its plan; replaced on each run) and
    every result to its ``plan-cache.jsonl``, so a second run with the same inputs returns at once.

    Example:
        >>> panel = PlanPanel(ws)   # in notebook 04, after the calibration and stats cells
        >>> panel.widget            # doctest: +SKIP
    """

    def __init__(self, project, tolerance: float = PlanSpec.tolerance, profile: str = PlanSpec.profile, max_sites: int = PlanSpec.max_sites,
                 min_cosine: float = PlanSpec.min_cosine):
        self.ws = project
        self.tolerance = W.FloatSlider(value=tolerance, min=0.001, max=0.05, step=0.001, readout_format=".3f",
                                       description=label("widget.tolerance"), continuous_update=False)
        self.min_cosine = W.FloatSlider(value=min_cosine, min=0.0, max=0.999, step=0.001, readout_format=".3f",
                                        description=label("widget.min_cosine"), continuous_update=False)
        self.profile = W.Dropdown(options=list(PROFILE_NAMES), value=profile, description=label("widget.profile"))
        self.max_sites = W.IntSlider(value=max_sites, min=0, max=16, description=label("widget.max_sites"))
        self.button = W.Button(description=label("widget.plan"), button_style="success")
        self.status = W.HTML(message("plan.idle"))
        self.pareto = W.Output()
        self.sites = W.Output()
        self.recipe = W.HTML()
        self.last = None
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([W.HBox([self.tolerance, self.min_cosine, self.profile, self.max_sites, self.button]), self.status,
                              W.HBox([self.pareto, self.sites]), self.recipe])

    def run(self, progress: bool = True):
        from ..stages.plan import PlanInputs, plan

        out, log = self.ws.at("recipe"), self.ws.at("plan_log")
        self.status.value = message("plan.running", profile=esc(self.profile.value), tolerance=self.tolerance.value, cache=esc(str(log)))
        with self.ws.writing(out.name, log.name):
            result = plan(PlanInputs(self.ws.model, self.ws.calibration, self.ws.pairs("validation"), self.ws.pairs("test"), stats=self.ws.stats,
                                     profile=self.profile.value, tolerance=float(self.tolerance.value), max_sites=int(self.max_sites.value),
                                     min_cosine=float(self.min_cosine.value), out=out, cache=log, force=True, progress=progress))
        self.last = result
        self.show(result)
        return result

    def show(self, result) -> None:
        """Fill the figures, the verdict and the recipe from a PlanResult."""
        from .stage_figures import stage_figures

        figures = stage_figures(result)
        for output, name in ((self.pareto, "plan_pareto"), (self.sites, "plan_sites")):
            output.outputs = ()
            output.append_display_data(Image(data=figure_png(figures[name])))
        from .conclusions import noise_verdict

        verdict = message("plan.within" if result.within_tolerance else "plan.not_within")
        cos_verdict = message("plan.cos_reached" if result.cosine_met else "plan.cos_not_reached")
        best = result.best_int8_only
        self.status.value = (
            message("plan.status", profile=esc(result.profile), n=len(result.activation_16bits), traffic=result.traffic_16bit,
                    val=result.validation_spearman, verdict=verdict, tolerance=result.tolerance, fp32_val=result.fp32_validation_spearman,
                    cos=result.validation_cosine, min_cos=result.min_cosine, cos_verdict=cos_verdict, test=result.spearman,
                    fp32_test=result.fp32_spearman, cos_test=result.cosine_to_fp32, best=best["spearman"], best_recipe=esc(best["recipe"]))
            + (message("plan.noise", verdict=esc(noise_verdict(result.diff_to_fp32, result.diff_to_fp32_ci))) if result.diff_to_fp32_ci else "")
            + ("<br>" + message("plan.stopped", rule=esc(result.stop_rule), reason=esc(message(f"stop.{result.stop_rule}") if f"stop.{result.stop_rule}" in MESSAGES else result.stop_reason)) if result.stop_rule else "")
            + ("<br>" + message("plan.not_tried", n=len(result.not_tried)) if result.not_tried else ""))
        self.recipe.value = (message("plan.recipe") + "<pre>"
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


def plan_panel(project, tolerance: Optional[float] = None) -> PlanPanel:
    """A PlanPanel with the planner's default tolerance (PlanSpec's) unless ``tolerance`` is given."""
    return PlanPanel(project, tolerance=PlanSpec.tolerance if tolerance is None else tolerance)
