"""The planner's stop rules and pick, as pure functions of Pareto rows carrying paired intervals."""

from bertnpu.tune.plan.stopping import STOP_RULES, pick_row, stop_rule


def _row(n, spearman, cosine, diff_ci, gain_ci=None):
    return {"n_sites": n, "sites": [f"s{i}" for i in range(n)], "validation_spearman": spearman, "validation_cosine": cosine,
            "diff_to_fp32": spearman - 0.80, "diff_to_fp32_ci": diff_ci, "gain_ci": gain_ci}


def test_within_fp32_noise_and_cosine_floor_stops_and_is_picked():
    table = [_row(0, 0.70, 0.90, [-0.12, -0.08]), _row(1, 0.79, 0.995, [-0.02, 0.001], [0.05, 0.12])]
    assert stop_rule(table[:1], 0.99) is None  # the floor is not met
    assert stop_rule(table, 0.99) == "fp32_noise"
    pick, within, met = pick_row(table, 0.80 - 0.005, 0.99)
    assert pick is table[1] and not within and met  # within the noise, though not within the 0.005 tolerance


def test_a_site_that_moves_nothing_beyond_noise_is_dropped():
    table = [_row(0, 0.70, 0.992, [-0.12, -0.08]), _row(1, 0.74, 0.995, [-0.08, -0.04], [0.01, 0.07]),
             _row(2, 0.745, 0.996, [-0.075, -0.035], [-0.004, 0.013])]
    assert stop_rule(table[:2], 0.99) is None  # the first site moved the difference beyond noise: go on
    assert stop_rule(table, 0.99) == "no_gain"
    assert pick_row(table, 0.795, 0.99)[0] is table[1]  # the recipe without the site that bought nothing
    # below the floor before that site: the site is kept (it brought the cosine over the floor)
    table[1]["validation_cosine"] = 0.98
    assert pick_row(table, 0.795, 0.99)[0] is table[2]


def test_no_rule_fires_within_the_limit():
    table = [_row(0, 0.70, 0.90, [-0.12, -0.08]), _row(1, 0.78, 0.95, [-0.03, 0.002], [0.05, 0.10]), _row(2, 0.77, 0.97, [-0.04, -0.01], [-0.02, 0.0])]
    assert all(stop_rule(table[: k + 1], 0.99) is None for k in range(3))
    pick, within, met = pick_row(table, 0.795, 0.99)
    assert pick is table[1] and not met  # within FP32's noise, the closest embeddings among those
    table[1]["diff_to_fp32_ci"] = [-0.04, -0.01]
    assert pick_row(table, 0.795, 0.99)[0] is table[1]  # none within noise, none above the floor: the best Spearman
    assert pick_row(table, 0.795, 0.96)[0] is table[2]  # none within noise: the best Spearman above the floor
    assert set(STOP_RULES) == {"fp32_noise", "no_gain", "max_sites", "no_candidates"}


def test_rows_without_intervals_never_stop_by_noise():
    table = [{"n_sites": 0, "sites": [], "validation_spearman": 0.8, "validation_cosine": 0.999}]
    assert stop_rule(table, 0.99) is None and pick_row(table, 0.795, 0.99)[0] is table[0]
