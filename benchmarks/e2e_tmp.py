import time, functools, sys, os
sys.argv = [sys.argv[0]]
import numpy as np
if os.environ.get("NOHUGE"): np._core.multiarray._set_madvise_hugepage(False)
from simulator import engine, provisions, terms
def timed(mod, name):
    f = getattr(mod, name)
    @functools.wraps(f)
    def g(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); print(f"    [{name} {time.perf_counter()-t:.3f} s]"); return r
    setattr(mod, name, g)
timed(engine.provisions, "ecl_table"); timed(engine.terms, "borrower_starts"); timed(provisions, "first_due"); timed(provisions.risk, "pool_pd_and_fraud")
exec(open("/work/main/benchmarks/end_to_end.py").read())
