"""`python -m patchtst_hpo.candidates budget=2M [data=... any override]`: a budget's candidate architectures.

The table a study searches: every grid point within the budget's tolerance for the composed data dims,
with its exact parameter count, and the extremes each study enqueues first.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from patchtst_hpo.config import compose
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.models.arch_grid import Candidate, budget_candidates, dims_from_cfg, extremes


def format_table(cands: Sequence[Candidate]) -> str:
    head = f"{'name':<22}{'d_model':>8}{'layers':>7}{'heads':>6}{'d_ff':>6}{'params':>15}{'vs target':>10}"
    rows = [
        f"{c.arch.name:<22}{c.arch.d_model:>8}{c.arch.n_layers:>7}{c.arch.n_heads:>6}{c.arch.d_ff:>6}"
        f"{c.params:>15,}{c.deviation:>+10.1%}"
        for c in cands
    ]
    return "\n".join([head, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(args):
        print(__doc__)
        return 0
    try:
        cfg = compose("train", args)
        cands = budget_candidates(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dims = dims_from_cfg(cfg)
    print(
        f"budget {cfg.budget.name}: target {int(cfg.budget.target):,} ± {float(cfg.budget.tolerance):.0%}, "
        f"{len(cands)} candidates for {dims}"
    )
    print(format_table(cands))
    print("extremes (enqueued first): " + ", ".join(c.arch.name for c in extremes(cands)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
