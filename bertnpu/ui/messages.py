"""Every sentence and label a page computes, in English and Korean: one catalogue, one lookup.

Both languages of a key take the same fields with the same format specs, so a number reads the
same on an English and a Korean page. The page language is set once per kernel with
:func:`use_language` (the notebooks call it with their ``LANG`` parameter); functions that
compose text look it up with :func:`message`.

Example:
    >>> message("split.exact", "en", diff=3e-7, tol=1e-4)
    'The split is exact: the largest difference, 3.0e-07, is float rounding (below 0.0001).'
    >>> message("split.exact", "ko", diff=3e-7, tol=1e-4)
    '분할은 정확합니다: 가장 큰 차이 3.0e-07은 부동소수점 반올림입니다(0.0001 미만).'
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

from ..tune.plan.stopping import STOP_RULES

LANGUAGES = ("en", "ko")
_current = {"lang": "en"}

_STOP_RULES_KO = {
    "fp32_noise": "Spearman이 FP32의 잡음 안에 있고(FP32와의 차이의 대응 95 % 구간이 0에 닿음) 임베딩 코사인이 하한을 넘습니다",
    "no_gain": "마지막으로 더한 사이트가 FP32와의 차이를 잡음 이상으로 움직이지 못했고(변화의 대응 95 % 구간이 0을 포함) 코사인 하한은 "
               "충족됩니다: 그 사이트를 뺀 레시피를 유지합니다",
    "max_sites": "잡음 규칙이 멈추기 전에 사이트 한도에 닿았습니다",
    "no_candidates": "잡음 규칙이 멈추기 전에 모든 후보 사이트를 시도했습니다",
}

MESSAGES: dict[str, dict[str, str]] = {
    # -- conclusions -----------------------------------------------------------------------
    "conclusion.label": {"en": "What it means:", "ko": "의미:"},
    "sim.sentence": {"en": "This config {rank} {emb}.", "ko": "이 설정은 {rank}, {emb}."},
    "sim.rank_kept": {"en": "keeps the STS-B ranking", "ko": "STS-B 순위를 유지하고"},
    "sim.rank_lost": {"en": "loses {drop:.4f} Spearman{share}", "ko": "Spearman을 {drop:.4f}{share} 잃고"},
    "sim.share": {"en": " ({pct:.1f}% of FP32)", "ko": " (FP32의 {pct:.1f}%)"},
    "sim.emb_close": {"en": "and its embeddings stay close to FP32, so stored FP32 vectors and search results remain valid",
                      "ko": "임베딩도 FP32에 가깝게 유지되므로 저장된 FP32 벡터와 검색 결과가 그대로 유효합니다"},
    "sim.emb_move_rank_kept": {"en": "but its embeddings move (cosine {cosine:.3f}, recall@10 {recall:.2f}): similarity scores rank pairs as "
                                     "before, yet INT8 vectors must not be mixed with stored FP32 vectors",
                               "ko": "임베딩은 움직입니다(cosine {cosine:.3f}, recall@10 {recall:.2f}): 유사도 점수로 매긴 쌍의 순위는 그대로지만 "
                                     "INT8 벡터를 저장된 FP32 벡터와 섞어 쓰면 안 됩니다"},
    "sim.emb_move": {"en": "and its embeddings move (cosine {cosine:.3f} < {good_cosine}, recall@10 {recall:.2f} < {good_recall})",
                     "ko": "임베딩도 움직입니다(cosine {cosine:.3f} < {good_cosine}, recall@10 {recall:.2f} < {good_recall})"},
    "layers.range": {"en": "layers {first}-{last}", "ko": "{first}-{last}층"},
    "layers.one": {"en": "layer {layers}", "ko": "{layers}층"},
    "layers.list": {"en": "layers {layers}", "ko": "{layers}층"},
    "layers.role_of": {"en": "{role} of {layers}", "ko": "{layers}의 {role}"},
    "sqnr.all_fp32": {"en": "Every site is kept in FP32: no quantization noise.", "ko": "모든 사이트가 FP32로 남습니다: 양자화 잡음이 없습니다."},
    "sqnr.summary": {"en": "{below} of {total} quantized sites are below {limit:.0f} dB; the noisiest is {site} ({db:.1f} dB), "
                           "and the {worst} lowest are dominated by {where}.",
                     "ko": "양자화된 사이트 {total}개 중 {below}개가 {limit:.0f} dB 미만입니다. 잡음이 가장 큰 곳은 {site}({db:.1f} dB)이고, "
                           "가장 낮은 {worst}개는 주로 {where}입니다."},
    "sens.none": {"en": "No site was analysed.", "ko": "분석한 사이트가 없습니다."},
    "sens.lost_only": {"en": "loses only {loss:.4f} Spearman", "ko": "Spearman을 {loss:.4f}만 잃고"},
    "sens.above": {"en": "scores {gain:.4f} above FP32 (noise)", "ko": "FP32보다 {gain:.4f} 높게 나오고(잡음)"},
    "sens.no_need": {"en": "The full INT8 model {lost} and no single site recovers more than {recovered:.4f}: none of these sites needs 16 bits.",
                     "ko": "전체 INT8 모델은 {lost}, 어느 사이트 하나도 {recovered:.4f}보다 많이 되찾지 못합니다: 이 사이트들 중 16비트가 필요한 것은 없습니다."},
    "sens.spread": {"en": "The INT8 model loses {loss:.4f} Spearman, but no analysed site recovers more than {recovered:.4f} when kept in FP32: "
                          "the loss is spread over other sites (the plan below searches all of them).",
                    "ko": "INT8 모델은 Spearman을 {loss:.4f} 잃지만, 분석한 어느 사이트도 FP32로 두었을 때 {recovered:.4f}보다 많이 되찾지 못합니다: "
                          "손실은 다른 사이트들에 퍼져 있습니다(아래 계획이 모든 사이트를 탐색합니다)."},
    "sens.alone_worst": {"en": "; quantized alone, {site} costs the most ({delta:+.4f})", "ko": "; 단독으로 양자화하면 {site}의 비용이 가장 큽니다({delta:+.4f})"},
    "sens.alone_none": {"en": "; quantized alone, none of them costs more than 0.001", "ko": "; 단독으로 양자화하면 어느 것도 0.001보다 많이 잃지 않습니다"},
    "sens.keep": {"en": "Keeping {site} in FP32 recovers {recovered:.4f} of the {loss:.4f} Spearman lost ({share}){alone}.",
                  "ko": "{site}를 FP32로 두면 잃은 Spearman {loss:.4f} 중 {recovered:.4f}({share})를 되찾습니다{alone}."},
    "outl.none": {"en": "No sites.", "ko": "사이트가 없습니다."},
    "outl.sentence": {"en": "The most extreme site is {site}: its max |x| is {ratio:,.0f}x its 99th percentile, concentrated in channel {channel} "
                            "({channel_ratio:,.0f}x the median channel); {n} of the {rows} worst sites are {role}{layers}.",
                      "ko": "가장 극단적인 사이트는 {site}입니다: 최대 |x|가 99번째 백분위의 {ratio:,.0f}배이며 채널 {channel}에 몰려 있습니다"
                            "(중앙값 채널의 {channel_ratio:,.0f}배). 가장 나쁜 {rows}개 사이트 중 {n}개가 {role}{layers}입니다."},
    "outl.layers": {"en": " ({layers})", "ko": " ({layers})"},
    "stab.none": {"en": "No thresholds to compare.", "ko": "비교할 임계값이 없습니다."},
    "stab.stable": {"en": "Every threshold moves less than {limit:.0f}% over resamples (worst {site}: {worst:.1f}%): enough samples.",
                    "ko": "모든 임계값이 재표집에서 {limit:.0f}% 미만으로 움직입니다(최악 {site}: {worst:.1f}%): 샘플이 충분합니다."},
    "stab.unstable": {"en": "{n} of {total} thresholds move more than {limit:.0f}% over resamples (worst {site}: {worst:.1f}%): add calibration "
                            "samples, or accept that these sites' ranges depend on which sentences were drawn.",
                      "ko": "임계값 {total}개 중 {n}개가 재표집에서 {limit:.0f}% 넘게 움직입니다(최악 {site}: {worst:.1f}%): 보정 샘플을 늘리거나, "
                            "이 사이트들의 범위가 뽑힌 문장에 따라 달라짐을 감수하세요."},
    "chan.item": {"en": "{channel} ({ratio:.1f}x)", "ko": "{channel} ({ratio:.1f}배)"},
    "chan.outliers": {"en": "{n} channel(s) exceed {factor:g}x the median abs-max: one per-tensor scale must stretch to cover them",
                      "ko": "채널 {n}개가 중앙값 abs-max의 {factor:g}배를 넘습니다: 텐서 단위 스케일 하나가 이들까지 덮도록 늘어나야 합니다"},
    "chan.none": {"en": "no channel exceeds {factor:g}x the median abs-max, so one per-tensor scale fits all channels",
                  "ko": "중앙값 abs-max의 {factor:g}배를 넘는 채널이 없으므로 텐서 단위 스케일 하나로 모든 채널이 맞습니다"},
    "chan.sentence": {"en": "Largest channels (abs-max / median channel): {largest}; {verdict}.",
                      "ko": "가장 큰 채널(abs-max / 중앙값 채널): {largest}; {verdict}."},
    "sweep.none": {"en": "The sweep has no results.", "ko": "탐색 결과가 없습니다."},
    "sweep.only": {"en": "the only config scored on the full split", "ko": "검증 분할 전체로 점수를 낸 유일한 설정입니다"},
    "sweep.noise": {"en": "the scored cells differ by less than the split's noise: any of them would do",
                    "ko": "점수를 낸 칸들의 차이가 분할의 잡음보다 작습니다: 어느 것을 써도 됩니다"},
    "sweep.matters": {"en": "the choice matters: the scored cells span {spread:.4f}", "ko": "선택이 중요합니다: 점수를 낸 칸들의 폭이 {spread:.4f}입니다"},
    "sweep.proxy": {"en": "; the other {n} cells were ranked by the proxy only", "ko": "; 나머지 {n}칸은 대리 지표로만 순위를 매겼습니다"},
    "sweep.sentence": {"en": "Best on validation: {label} ({best:.4f}); {matter} ({n} configs scored, worst {worst:.4f}{ranked}).",
                       "ko": "검증 분할 최고: {label} ({best:.4f}); {matter} (점수를 낸 설정 {n}개, 최저 {worst:.4f}{ranked})."},
    "sweep.tied_many": {"en": "{tied} of the {n} scored cells are tied with the best (paired 95 % interval of the difference contains 0)",
                        "ko": "점수를 낸 칸 {n}개 중 {tied}개가 최고와 동률입니다(차이의 대응 95 % 구간이 0을 포함)"},
    "sweep.tied_none": {"en": "no other scored cell is tied with it (each paired 95 % interval of the difference excludes 0)",
                        "ko": "다른 어떤 칸도 이와 동률이 아닙니다(차이의 대응 95 % 구간이 모두 0을 제외)"},
    "sweep.recommended": {"en": "Best on validation {best:.4f}; recommended: {label}", "ko": "검증 분할 최고 {best:.4f}; 추천: {label}"},
    "sweep.simplest": {"en": ", the simplest of the tied cells ({knobs} knob(s) from the tutorial's config)",
                       "ko": ", 동률인 칸 중 가장 단순한 것(튜토리얼 설정과 다른 설정값 {knobs}개)"},
    "sweep.tail": {"en": "{first}; {matter} ({n} configs scored, worst {worst:.4f}{ranked}).",
                   "ko": "{first}; {matter} (점수를 낸 설정 {n}개, 최저 {worst:.4f}{ranked})."},
    "noise.too_few": {"en": "{diff:+.4f} from {ref} (too few pairs for an interval)", "ko": "{ref}와의 차이 {diff:+.4f}(구간을 내기에는 쌍이 너무 적음)"},
    "noise.within": {"en": "within {ref}'s noise: {interval}", "ko": "{ref}의 잡음 안: {interval}"},
    "noise.worse": {"en": "worse than {ref}: {interval}", "ko": "{ref}보다 나쁨: {interval}"},
    "noise.better": {"en": "better than {ref}: {interval}", "ko": "{ref}보다 좋음: {interval}"},
    "sim.rank_kept_ci": {"en": "keeps the STS-B ranking ({verdict})", "ko": "STS-B 순위를 유지하고({verdict})"},
    "sim.rank_lost_ci": {"en": "loses Spearman ({verdict}{share})", "ko": "Spearman을 잃고({verdict}{share})"},
    "cmp.best_ci": {"en": "On the test split, {name} is the closest to FP32: {best:.4f} vs {fp32:.4f}, {verdict}",
                    "ko": "테스트 분할에서 FP32에 가장 가까운 것은 {name}입니다: {best:.4f} 대 {fp32:.4f}, {verdict}"},
    "cmp.also_within": {"en": "{names} also within FP32's noise", "ko": "{names}도 FP32의 잡음 안"},
    "plan.noise": {"en": "; {verdict}", "ko": "; {verdict}"},
    # the planner's stop rules: English from tune.plan.stopping (the summary's text), Korean here
    **{f"stop.{rule}": {"en": text, "ko": _STOP_RULES_KO[rule]} for rule, text in STOP_RULES.items()},
    "plan.stopped": {"en": "stopped by <code>{rule}</code>: {reason}", "ko": "멈춘 규칙 <code>{rule}</code>: {reason}"},
    "cmp.only_fp32": {"en": "Only the FP32 model was evaluated.", "ko": "FP32 모델만 평가했습니다."},
    "cmp.best": {"en": "On the test split, {name} is the closest to FP32: {best:.4f} vs {fp32:.4f} (drop {drop:.4f})",
                 "ko": "테스트 분할에서 FP32에 가장 가까운 것은 {name}입니다: {best:.4f} 대 {fp32:.4f}(하락 {drop:.4f})"},
    "cmp.over_tutorial": {"en": "{gain:+.4f} over the tutorial config", "ko": "튜토리얼 설정 대비 {gain:+.4f}"},
    "cmp.interchangeable": {"en": "its embeddings stay interchangeable with FP32", "ko": "임베딩은 FP32와 바꿔 써도 됩니다"},
    "cmp.still_move": {"en": "its embeddings still move (cosine {cosine:.3f}, recall@10 {recall:.2f}): re-embed stored vectors with the NPU model",
                       "ko": "임베딩은 여전히 움직입니다(cosine {cosine:.3f}, recall@10 {recall:.2f}): 저장된 벡터를 NPU 모델로 다시 임베딩하세요"},
    "place.sentence": {"en": "The NPU runs {npu} of {total} blocks and {flops:.1f}% of the FLOPs; the CPU keeps {cpu}, which hold {params:.1f}% of "
                             "the parameters (the embedding tables) but almost no compute.",
                       "ko": "NPU가 블록 {total}개 중 {npu}개와 FLOPs의 {flops:.1f}%를 실행합니다. CPU에는 {cpu}가 남으며, 파라미터의 {params:.1f}%"
                             "(임베딩 테이블)를 갖지만 연산은 거의 없습니다."},
    "split.exact": {"en": "The split is exact: the largest difference, {diff:.1e}, is float rounding (below {tol:g}).",
                    "ko": "분할은 정확합니다: 가장 큰 차이 {diff:.1e}은 부동소수점 반올림입니다({tol:g} 미만)."},
    "split.differs": {"en": "The split differs from the original model by up to {diff:.3g} (above {tol:g}): check the CPU part.",
                      "ko": "분할이 원래 모델과 최대 {diff:.3g}만큼 다릅니다({tol:g} 초과): CPU 부분을 확인하세요."},
    "ranges.clip": {"en": "{clipped} of {total} sites clip their largest values", "ko": "사이트 {total}개 중 {clipped}개가 가장 큰 값들을 잘라냅니다"},
    "ranges.widened": {"en": "; {n} get a range over 1.5x their own max from sharing across layers (most: {site}, {ratio:,.1f}x), "
                             "which costs them resolution",
                       "ko": "; {n}개는 층 사이 공유로 자기 최대값의 1.5배가 넘는 범위를 받아(가장 큰 곳: {site}, {ratio:,.1f}배) 해상도를 잃습니다"},
    # -- widget labels (qbcompiler's knob names method / output / mode / percentile / topk_ratio stay as they are) --
    "widget.model": {"en": "model", "ko": "모델"},
    "widget.load": {"en": "Load", "ko": "불러오기"},
    "widget.samples": {"en": "samples", "ko": "샘플 수"},
    "widget.seed": {"en": "seed", "ko": "시드"},
    "widget.strategy": {"en": "strategy", "ko": "전략"},
    "widget.build": {"en": "Build", "ko": "만들기"},
    "widget.progress": {"en": "progress", "ko": "진행"},
    "widget.site": {"en": "site", "ko": "사이트"},
    "widget.simulate": {"en": "Simulate INT8", "ko": "INT8 시뮬레이션"},
    "widget.a16": {"en": "16-bit", "ko": "16비트"},
    "widget.keep_fp32": {"en": "FP32 (diag.)", "ko": "FP32 (진단)"},
    "widget.profile": {"en": "profile", "ko": "프로파일"},
    "widget.tolerance": {"en": "tolerance", "ko": "허용 오차"},
    "widget.min_cosine": {"en": "min cosine", "ko": "최소 코사인"},
    "widget.max_sites": {"en": "max 16-bit", "ko": "16비트 최대"},
    "widget.plan": {"en": "Plan", "ko": "계획"},
    "widget.compile": {"en": "Compile", "ko": "컴파일"},
    "widget.export": {"en": "Export bundle", "ko": "번들 내보내기"},
    "widget.replace": {"en": "replace existing", "ko": "기존 파일 교체"},
    "widget.done": {"en": "done", "ko": "완료"},
    # -- widget readouts ---------------------------------------------------------------------
    "picker.loaded": {"en": "loaded <b>{name}</b>: hidden {hidden}, {layers} layers, pooling {pooling}",
                      "ko": "<b>{name}</b> 불러옴: 은닉 {hidden}, {layers}층, 풀링 {pooling}"},
    "builder.status": {"en": "built {samples:,} samples in {seconds:.1f} s; {split} values outside the calibration range: {outside:.4f}%",
                       "ko": "샘플 {samples:,}개를 {seconds:.1f}초에 만들었습니다. 보정 범위를 벗어난 {split} 값: {outside:.4f}%"},
    "explorer.threshold": {"en": "threshold", "ko": "임계값"},
    "explorer.upper_clip": {"en": "upper clip", "ko": "상한 클립"},
    "explorer.shared": {"en": "applied, shared across layers", "ko": "적용됨, 층 사이 공유"},
    "explorer.own": {"en": "applied, this site only", "ko": "적용됨, 이 사이트만"},
    "explorer.unsigned": {"en": ", unsigned", "ko": ", 부호 없음"},
    "explorer.own_threshold": {"en": "; this layer's own threshold would be {threshold:.4g}", "ko": "; 이 층만의 임계값이라면 {threshold:.4g}"},
    "explorer.range": {"en": "quantization range [{lo:.4g}, {hi:.4g}]; clipped <span class='bertnpu-clipped'>{clipped:.5f}%</span> of {count:,} values",
                       "ko": "양자화 범위 [{lo:.4g}, {hi:.4g}]; 값 {count:,}개 중 <span class='bertnpu-clipped'>{clipped:.5f}%</span> 잘림"},
    "explorer.grid": {"en": "{bits}-bit grid: scale <span class='bertnpu-scale'>{scale:.6g}</span>, zero point "
                            "<span class='bertnpu-zero-point'>{zero_point}</span>, codes {qmin}..{qmax}",
                      "ko": "{bits}비트 격자: 스케일 <span class='bertnpu-scale'>{scale:.6g}</span>, 영점 "
                            "<span class='bertnpu-zero-point'>{zero_point}</span>, 코드 {qmin}..{qmax}"},
    "explorer.tail": {"en": "MaxPercentile clips the top r(1-p) = {topk:g} x (1 - {percentile:g}) = {tail:.3g} of the values ({tail_pct:.4g}%)",
                      "ko": "MaxPercentile은 값의 상위 r(1-p) = {topk:g} x (1 - {percentile:g}) = {tail:.3g}를 자릅니다({tail_pct:.4g}%)"},
    "simulate.idle": {"en": "press Simulate to predict the INT8 accuracy of the config above (select sites to keep in FP32)",
                      "ko": "시뮬레이션을 누르면 위 설정의 INT8 정확도를 예측합니다(FP32로 둘 사이트를 고를 수 있습니다)"},
    "simulate.subset": {"en": "{split} subset: {used:,} of {total:,} pairs (seeded sample, seed {seed})",
                        "ko": "{split} 부분집합: 쌍 {total:,}개 중 {used:,}개(시드 {seed}의 표본)"},
    "simulate.all": {"en": "{split}: all {total:,} pairs", "ko": "{split}: 쌍 {total:,}개 전체"},
    "simulate.a16": {"en": ", {n} site(s) at 16 bits", "ko": ", 16비트 사이트 {n}개"},
    "simulate.kept": {"en": ", {n} site(s) kept in FP32 (diagnostic only, no device counterpart)",
                      "ko": ", FP32로 둔 사이트 {n}개(진단용, 장치에는 없음)"},
    "simulate.profile": {"en": ", profile {profile}", "ko": ", 프로파일 {profile}"},
    "simulate.scores": {"en": "STS-B {subset}: FP32 Spearman <b>{fp32:.4f}</b>, predicted INT8 ({label}) <b class='bertnpu-int8'>{int8:.4f}</b> "
                              "(delta {delta:+.4f} [{lo:+.4f}, {hi:+.4f}], paired 95 % bootstrap interval)",
                        "ko": "STS-B {subset}: FP32 Spearman <b>{fp32:.4f}</b>, 예측 INT8 ({label}) <b class='bertnpu-int8'>{int8:.4f}</b> "
                              "(차이 {delta:+.4f} [{lo:+.4f}, {hi:+.4f}], 대응 95 % 부트스트랩 구간)"},
    "simulate.fidelity": {"en": "embedding cosine(FP32, INT8): mean {mean:.4f}, min {min:.4f} (good: mean &ge; {good_cosine:g}); "
                                "nearest-neighbour recall@10 {recall:.3f} (good: &ge; {good_recall:g})",
                          "ko": "임베딩 cosine(FP32, INT8): 평균 {mean:.4f}, 최소 {min:.4f} (좋음: 평균 &ge; {good_cosine:g}); "
                                "최근접 이웃 recall@10 {recall:.3f} (좋음: &ge; {good_recall:g})"},
    "simulate.sqnr": {"en": "SQNR: mean {mean:.1f} dB over {n} quantized sites, lowest {low:.1f} dB (good: &gt; {good_sqnr:g} dB)",
                      "ko": "SQNR: 양자화된 사이트 {n}개 평균 {mean:.1f} dB, 최저 {low:.1f} dB (좋음: &gt; {good_sqnr:g} dB)"},
    "simulate.sqnr_none": {"en": "SQNR: every site kept in FP32", "ko": "SQNR: 모든 사이트가 FP32"},
    "simulate.timing": {"en": "answered in {seconds:.1f} s on the {subset}; the sweep and <code>bertnpu run</code> score the whole split",
                        "ko": "{subset}에서 {seconds:.1f}초에 답함; 탐색과 <code>bertnpu run</code>은 분할 전체로 점수를 냅니다"},
    "plan.idle": {"en": "press Plan to search the cheapest recipe within the tolerance (Spearman below FP32 on validation) "
                        "whose embeddings keep the minimum mean cosine to FP32 (0: Spearman alone)",
                  "ko": "계획을 누르면 허용 오차(검증 분할에서 FP32 대비 Spearman 하락) 안에서 임베딩이 FP32에 대한 최소 평균 코사인을 지키는 "
                        "가장 싼 레시피를 찾습니다(0: Spearman만)"},
    "plan.running": {"en": "planning under profile <b>{profile}</b>, tolerance {tolerance:g} (progress below; results are cached in {cache}) ...",
                     "ko": "프로파일 <b>{profile}</b>, 허용 오차 {tolerance:g}로 계획하는 중(진행은 아래; 결과는 {cache}에 저장) ..."},
    "plan.within": {"en": "within", "ko": "안에 듭니다"},
    "plan.not_within": {"en": "<b>not</b> within", "ko": "<b>벗어납니다</b>"},
    "plan.cos_reached": {"en": "reached", "ko": "도달"},
    "plan.cos_not_reached": {"en": "<b>not</b> reached within the site limit", "ko": "사이트 상한 안에서 <b>도달하지 못함</b>"},
    "plan.status": {"en": "[{profile}] {n} site(s) at 16 bits ({traffic:.1%} of activation traffic): validation Spearman {val:.4f}, {verdict} "
                          "{tolerance:g} of FP32 {fp32_val:.4f}, validation cosine {cos:.4f} (minimum {min_cos:g} {cos_verdict}); test {test:.4f} "
                          "(FP32 {fp32_test:.4f}, cosine to FP32 {cos_test:.4f}); best INT8-only: test {best:.4f} ({best_recipe})",
                    "ko": "[{profile}] 16비트 사이트 {n}개(활성값 트래픽의 {traffic:.1%}): 검증 Spearman {val:.4f}, FP32 {fp32_val:.4f}의 {tolerance:g} "
                          "{verdict}. 검증 코사인 {cos:.4f}(최소 {min_cos:g} {cos_verdict}); 테스트 {test:.4f}(FP32 {fp32_test:.4f}, FP32 대비 코사인 "
                          "{cos_test:.4f}); 최고 INT8 전용: 테스트 {best:.4f} ({best_recipe})"},
    "plan.not_tried": {"en": "not tried at 16 bits: the {n} LayerNorm outputs (an ARIES user saw a 16-bit override of LayerNormalization leave the "
                             "compiled model byte-identical, so it is no lever)",
                       "ko": "16비트로 시도하지 않음: LayerNorm 출력 {n}개(한 ARIES 사용자가 LayerNormalization의 16비트 지정이 컴파일된 모델을 "
                             "바이트 단위로 바꾸지 않음을 보았으므로 효과가 없음)"},
    "plan.recipe": {"en": "<b>recipe.json</b> (numbers rounded to 4 decimals here; the file keeps them whole)",
                    "ko": "<b>recipe.json</b> (여기서는 숫자를 소수 넷째 자리로 반올림; 파일에는 전체 값)"},
    # -- table headers -----------------------------------------------------------------------
    "column.name": {"en": "name", "ko": "이름"},
    "column.config": {"en": "config", "ko": "설정"},
    "column.site": {"en": "site", "ko": "사이트"},
    "column.block": {"en": "block", "ko": "블록"},
    "column.placement": {"en": "placement", "ko": "배치"},
    "column.ops": {"en": "ops", "ko": "연산 수"},
    "column.flops": {"en": "flops", "ko": "FLOPs"},
    "column.parameters": {"en": "parameters", "ko": "파라미터 수"},
    "column.index": {"en": "index", "ko": "번호"},
    "column.op": {"en": "op", "ko": "연산"},
    "column.module": {"en": "module", "ko": "모듈"},
    "column.shape": {"en": "shape", "ko": "형태"},
    "column.absmax": {"en": "absmax", "ko": "최대 |x|"},
    "column.p99": {"en": "p99", "ko": "99번째 백분위"},
    "column.max_over_p99": {"en": "max_over_p99", "ko": "최대 / p99"},
    "column.worst_channel": {"en": "worst_channel", "ko": "최악 채널"},
    "column.channel_ratio": {"en": "channel_ratio", "ko": "채널 배율"},
    "column.only_delta": {"en": "only_delta", "ko": "단독 변화"},
    "column.all_but_delta": {"en": "all_but_delta", "ko": "제외 변화"},
    "column.recovered": {"en": "recovered", "ko": "되찾음"},
    "unit.FLOP": {"en": "FLOP", "ko": "FLOP"},
    "unit.index": {"en": "index", "ko": "번호"},
    "unit.x median": {"en": "x median", "ko": "중앙값 배"},
    "unit.x": {"en": "x", "ko": "배"},
    # -- index page and footer ----------------------------------------------------------------
    "index.title": {"en": "bertnpu tutorial: {model} on the Mobilint NPU", "ko": "bertnpu 튜토리얼: Mobilint NPU의 {model}"},
    "index.headline": {"en": "On the STS-B test split ({pairs}), FP32 scores Spearman {fp32:.4f}; the planned recipe, predicted for the NPU by "
                             "simulation, scores {planned:.4f} (drop {drop:.4f}).",
                       "ko": "STS-B 테스트 분할({pairs})에서 FP32의 Spearman은 {fp32:.4f}이고, 시뮬레이션으로 NPU 결과를 예측한 계획 레시피는 "
                             "{planned:.4f}입니다(하락 {drop:.4f})."},
    "index.ci": {"en": " (95% interval {lo:.4f} to {hi:.4f})", "ko": " (95% 구간 {lo:.4f} ~ {hi:.4f})"},
    "index.pairs": {"en": "{n:,} pairs", "ko": "쌍 {n:,}개"},
    "index.recipe": {"en": "The recipe: calibration {calibration}; {sites}; {transforms}; device profile {profile}.",
                     "ko": "레시피: 보정 설정 {calibration}; {sites}; {transforms}; 장치 프로파일 {profile}."},
    "index.sites_none": {"en": "every activation at 8 bits", "ko": "모든 활성값 8비트"},
    "index.sites": {"en": "{n} activation site(s) at 16 bits ({sites})", "ko": "16비트 활성값 사이트 {n}개({sites})"},
    "index.transforms_none": {"en": "no equivalent transformation", "ko": "등가 변환 없음"},
    "index.transforms": {"en": "equivalent transformations {names}", "ko": "등가 변환 {names}"},
    "index.no_result": {"en": "No evaluation was found in the work folder: render notebook 4 to get the headline result.",
                        "ko": "작업 폴더에 평가 결과가 없습니다: 핵심 결과를 보려면 노트북 4를 렌더링하세요."},
    "index.pages": {"en": "The pages, in order", "ko": "페이지(순서대로)"},
    "page.01_analyze_model": {"en": "what runs on the CPU and what on the NPU, and a check that the split is exact",
                              "ko": "CPU에서 도는 부분과 NPU에서 도는 부분, 그리고 분할이 정확한지 확인"},
    "page.02_calibration_data": {"en": "the calibration set in qbcompiler's format and which embedding ranges it covers",
                                 "ko": "qbcompiler 형식의 보정 세트와 그것이 덮는 임베딩 범위"},
    "page.03_activation_ranges": {"en": "the activation range of every quantization site, its outliers and how stable its threshold is",
                                  "ko": "모든 양자화 사이트의 활성값 범위, 이상치, 임계값의 안정성"},
    "page.04_tune_quantization": {"en": "the sweep, the planned recipe and its predicted accuracy next to FP32",
                                  "ko": "탐색, 계획한 레시피, 그리고 FP32와 나란히 본 예측 정확도"},
    "page.05_compile_and_verify": {"en": "compiling the recipe with qbcompiler (or the bundle to do it) and checking the NPU",
                                   "ko": "qbcompiler로 레시피를 컴파일하기(또는 그 번들)와 NPU에서 확인하기"},
    "footer.text": {"en": "bertnpu {version} · model {model} (sha256 {model_hash}) · STS-B sha256 {stsb_hash}{pairs} · rendered {date} · language: English",
                    "ko": "bertnpu {version} · 모델 {model} (sha256 {model_hash}) · STS-B sha256 {stsb_hash}{pairs} · 렌더링 {date} · 언어: 한국어"},
    "footer.pairs": {"en": ", first {n:,} pairs of each split", "ko": ", 분할마다 처음 {n:,}쌍"},
    "footer.index": {"en": "All pages", "ko": "전체 페이지"},
    "footer.unknown": {"en": "unknown", "ko": "알 수 없음"},
    # -- figure titles (Korean only where matplotlib has a CJK font: see figure_text) ------------------
    "fig.channel_range": {"en": "Calibration embedding range per channel ({tokens} tokens)", "ko": "채널별 보정 임베딩 범위 (토큰 {tokens}개)"},
    "fig.all_values": {"en": "All calibration embedding values (abs-max {absmax:.2f})", "ko": "모든 보정 임베딩 값 (abs-max {absmax:.2f})"},
    "fig.lengths": {"en": "Sequence lengths (n={n}, median {median:.0f})", "ko": "시퀀스 길이 (n={n}, 중앙값 {median:.0f})"},
    "fig.outside": {"en": "Eval values outside calibration range: {pct:.3f}% overall", "ko": "보정 범위를 벗어난 평가 값: 전체 {pct:.3f}%"},
    "fig.coverage": {"en": "Coverage as the count grows", "ko": "개수가 늘 때의 범위 포함률"},
    "fig.placement": {"en": "Where each block runs (Mobilint: embeddings and mask preparation on the CPU)",
                      "ko": "블록별 실행 위치 (Mobilint: 임베딩과 마스크 준비는 CPU)"},
    "fig.site_ranges": {"en": "Activation ranges of all quantization sites vs the clip thresholds applied",
                        "ko": "모든 양자화 사이트의 활성값 범위와 적용된 클리핑 임계값"},
    "fig.histogram": {"en": "{site}: {bound} {threshold:.4g}{shared}, clips {clipped:.4f}% of {count:,} values",
                      "ko": "{site}: {bound} {threshold:.4g}{shared}, 값 {count:,}개 중 {clipped:.4f}% 잘림"},
    "fig.shared": {"en": " (shared across layers)", "ko": " (층 사이 공유)"},
    "fig.channel_absmax": {"en": "log10 per-channel abs-max of {role}", "ko": "{role}의 채널별 abs-max (log10)"},
    "fig.stability": {"en": "Threshold stability: is the calibration set large enough?", "ko": "임계값 안정성: 보정 세트가 충분히 큰가?"},
    "fig.sweep": {"en": "Simulated INT8 sweep [profile {profile}]: {what}\n{best}", "ko": "시뮬레이션 INT8 탐색 [프로파일 {profile}]: {what}\n{best}"},
    "fig.plan": {"en": "Plan: cheapest recipe within tolerance [profile {profile}]", "ko": "계획: 허용 오차 안에서 가장 싼 레시피 [프로파일 {profile}]"},
    "fig.site_map": {"en": "16-bit sites: red = added by the recipe, blue = the profile's default [{profile}]{note}",
                     "ko": "16비트 사이트: 빨강 = 레시피가 추가, 파랑 = 프로파일 기본값 [{profile}]{note}"},
}


def use_language(lang: str) -> str:
    """Set the language :func:`message` uses when none is given (a notebook calls it with its ``LANG``)."""
    from ..errors import BertnpuError

    if lang not in LANGUAGES:
        raise BertnpuError(f"Unknown page language {lang!r}; use one of {', '.join(LANGUAGES)}.")
    _current["lang"] = lang
    _figure_fonts(lang)
    return lang


def current_language() -> str:
    return _current["lang"]


def message(key: str, lang: Optional[str] = None, **fields) -> str:
    """The catalogue entry ``key`` in ``lang`` (default: :func:`current_language`), formatted with ``fields``."""
    return MESSAGES[key][lang or _current["lang"]].format(**fields)


def label(key: str, lang: Optional[str] = None) -> str:
    """A table header, unit or widget label: its catalogue entry, or ``key`` itself when it has none."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key.split(".", 1)[-1]
    return entry[lang or _current["lang"]]


# Fonts with Hangul that Debian ships (fonts-noto-cjk, fonts-nanum), in order of preference.
KOREAN_FONTS = ("Noto Sans CJK KR", "Noto Sans CJK JP", "NanumGothic")


@lru_cache(maxsize=1)
def korean_font() -> Optional[str]:
    """A font with Hangul matplotlib can use (registered from /usr/share/fonts when the font cache predates
    its install), or None: figure text then stays English rather than drawing empty boxes."""
    import glob

    from matplotlib import font_manager

    def known() -> Optional[str]:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in KOREAN_FONTS if n in names), None)

    if known() is None:
        for path in glob.glob("/usr/share/fonts/**/NotoSansCJK-Regular.tt[cf]", recursive=True) + glob.glob(
                "/usr/share/fonts/**/NanumGothic.ttf", recursive=True):
            font_manager.fontManager.addfont(path)
    return known()


def _figure_fonts(lang: str) -> None:
    """Korean pages draw with DejaVu Sans and fall back to a Hangul font for the glyphs it lacks."""
    import matplotlib

    font = korean_font() if lang == "ko" else None
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", font] if font else matplotlib.rcParamsDefault["font.family"]


def figure_text(key: str, **fields) -> str:
    """A figure's text in the page language, or in English where no Hangul font is installed."""
    lang = current_language()
    return message(key, lang if lang == "en" or korean_font() else "en", **fields)
