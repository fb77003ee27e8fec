"""What each trial of a study was (an enqueued extreme, a random start-up trial, model-guided) and whether a
study with so few guided trials is a search or a demo.

A model-based sampler (TPE, CMA-ES, ...) samples at random until `n_startup_trials` trials have finished
(COMPLETE or PRUNED, Optuna's count); only later trials are guided by a model of the results. The sweeper
records the sampler on the study (user attribute `sampler`: its class and n_startup_trials); a study made
before that is "unknown".
"""

from __future__ import annotations

import optuna
import pandas as pd

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
RANDOM_SAMPLERS = ("RandomSampler", "QMCSampler")


def trial_kinds(study: optuna.Study) -> dict[int, str]:
    """Trial number -> extreme | enqueued | startup | guided | random | grid | unknown."""
    spec = study.user_attrs.get("sampler") or {}
    name, startup = str(spec.get("name", "")), spec.get("n_startup_trials")
    trials = study.get_trials(deepcopy=False)
    done = sorted(t.datetime_complete for t in trials if t.state in FINISHED and t.datetime_complete)
    out = {}
    for t in trials:
        enq = t.user_attrs.get("enqueued")
        if enq:
            out[t.number] = "extreme" if enq == "extreme" else "enqueued"
        elif not name:
            out[t.number] = "unknown"
        elif name in RANDOM_SAMPLERS:
            out[t.number] = "random"
        elif name == "GridSampler":
            out[t.number] = "grid"
        elif startup is None or t.datetime_start is None:
            out[t.number] = "guided" if startup is None else "unknown"
        else:
            before = sum(1 for c in done if c <= t.datetime_start)
            out[t.number] = "guided" if before >= int(startup) else "startup"
    return out


def summary(trials: pd.DataFrame, study: str) -> dict:
    """Counts of finished trials by kind, and the study's kind in one sentence (a demo has no guided trial)."""
    t = trials[(trials["study"] == study) & trials["state"].isin(["COMPLETE", "PRUNED"])]
    counts = t["trial_kind"].value_counts().to_dict() if "trial_kind" in t else {}
    n = {k: int(counts.get(k, 0)) for k in ("extreme", "enqueued", "startup", "guided", "random", "grid")}
    unknown = int(counts.get("unknown", 0))
    searched = n["guided"] + n["random"] + n["grid"]
    parts = ", ".join(f"{v} {k}" for k, v in n.items() if v) + (
        f", {unknown} of unknown kind" if unknown else ""
    )
    if unknown and not searched:
        kind = "unknown"
        why = (
            "the study does not record its sampler, so random start-up and guided trials cannot be told apart"
        )
    elif searched:
        kind, why = (
            "search",
            f"{searched} trials were chosen by the sampler beyond the enqueued and start-up ones",
        )
    else:
        kind = "demo"
        why = (
            "no trial was guided by the sampler's model (raise hydra.sweeper.n_trials above the enqueued "
            "extremes plus the sampler's n_startup_trials)"
        )
    sentence = f"{study}: {len(t)} finished trials ({parts or 'none'}): {kind}, {why}"
    if "hp_from" in t and t["hp_from"].notna().any():  # hydra.sweeper.transfer_from
        sentence += f"; its training hyperparameters came from {t['hp_from'].dropna().iloc[0]}"
    return {"study": study, "finished": len(t), **n, "unknown": unknown, "kind": kind, "sentence": sentence}
