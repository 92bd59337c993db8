"""pytest: the pages' examples run as doctests; the build's hooks are not tests (and import mkdocs' world)."""

collect_ignore_glob = ["_hooks/*"]
