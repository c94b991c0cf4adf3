"""``python -m fastpool``: the build configuration, then a short speed table."""

from . import bench, show_config

show_config()
print()
bench.main(["--quick"])
