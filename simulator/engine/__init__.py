"""Running a scenario: tasks on threads or Dask, checkpoints and resume, the run's lock, test seams. (docs/architecture.md section 2)"""
