"""The loan tape: written from a run, read back from ours or a lender's. (docs/architecture.md section 2)"""
