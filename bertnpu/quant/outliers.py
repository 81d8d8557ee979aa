"""Outlier sites: which sites' extreme values sit far above their bulk (a number the stats stage reports)."""

from __future__ import annotations

import numpy as np


def outlier_table(stats, top: int = 10) -> list[dict]:
    """Sites sorted by max / p99 of |x| (how far the extreme values sit above the bulk).

    Each row also names the site's worst channel (abs-max / median channel abs-max).
    """
    rows = []
    for s in stats.sites:
        obs = stats[s.name]
        p99 = obs.tail_value(int(0.01 * obs.count), "abs")
        ch = obs.channel_absmax.numpy()
        worst = int(np.argmax(ch))
        rows.append({
            "site": s.name, "absmax": obs.absmax, "p99": p99, "max_over_p99": obs.absmax / max(p99, 1e-12),
            "worst_channel": worst, "channel_ratio": float(ch[worst] / max(np.median(ch), 1e-12)),
        })
    rows.sort(key=lambda r: -r["max_over_p99"])
    return rows[:top]
