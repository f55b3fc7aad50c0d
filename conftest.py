"""Root conftest: the repro plugin is registered through the pytest11 entry point
(pyproject.toml); nothing else is needed here. Kept so `pytest` from the project
root finds the rootdir and so tests can add project-wide fixtures later."""
