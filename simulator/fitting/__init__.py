"""A loan tape to a scenario: calibration, the backtest, the scorecard and take-up refitted. (docs/architecture.md section 2)"""
