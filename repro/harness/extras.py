"""Optional features and the extra that installs each (`pip install 'pytest-repro[ec2]'`).

Model: the core install runs every local incident (Docker, QEMU, PostgreSQL). A feature
that needs a library the core does not pull imports it through `need(module, extra)`,
which raises one PrerequisiteError line naming the extra when it is missing:

  ec2    boto3 (botocore): EC2 hosts, AWS Batch, the EC2 reaper and doctor's AWS check
  mongo  pymongo: mongo_index_lock against a real mongod
  xdist  pytest-xdist: `pytest repro/ -n 2`
"""

from __future__ import annotations

import importlib
from types import ModuleType

from repro.harness.errors import PrerequisiteError

EXTRAS = {"boto3": "ec2", "botocore": "ec2", "pymongo": "mongo", "xdist": "xdist"}


def need(module: str) -> ModuleType:
    """`module` imported, or one line naming the extra that installs it."""
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (top, module):
            raise  # the library is there but something it imports is not: its own error
        extra = EXTRAS.get(top, "dev")
        raise PrerequisiteError(f"{top} is not installed (the {extra!r} extra)",
                                f"pip install 'pytest-repro[{extra}]'") from exc


def have(module: str) -> bool:
    """Whether `module` can be imported (for checks that skip a feature quietly)."""
    try:
        need(module)
    except PrerequisiteError:
        return False
    return True
