"""``python -m devstack``: the runner's ``inv``, as ``devstack.main`` describes it."""

from devstack.main import program

program.run()
