"""The experiment, orchestration only: ``runner.run_experiment`` (a config end to end,
resumable) and ``demo.run_demo`` (the synthetic cohort); the CLI and the Python API call them.
"""
