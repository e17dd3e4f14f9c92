"""What a run sums up: the results Dataset, its variables and P&L lines, the results file. (docs/architecture.md section 2)"""
